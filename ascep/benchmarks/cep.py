"""Rule engine throughput: ticks per second on one core with N active rules over M symbols; and a backtest's.

The rules are a realistic mix from the built-in templates (cross-symbol conditions, trailing-window
conditions, and pattern sequences). With `--partitioned none` each reads one or two symbols, so a tick
evaluates only the few rules that read its symbol, as in the job. With `disjoint`, every rule is a
partitioned template covering its own share of the market (`B7/*`: the symbols of one base asset), so
together they cover every symbol once; with `whole`, every rule covers the whole market, and each tick
is evaluated by all of them. The engine's snapshot (what the job writes to state after each batch) is
timed after each batch of `--batch` ticks: the entries the batch changed, taken and pickled as the job
writes them to Flink state; and whole after the run, when every key has its state.
The backtest figure is `ascep rules backtest`'s path: the same ticks written to a local Parquet lake
first, then read back in the job's order and run through the first rule, timed from the read to the
last signal.
"""
from __future__ import annotations

import argparse
import gc
import random
import shutil
import tempfile
import time
import uuid

from ascep import compiled
from core.contracts.tick import Tick


def at_least(low: int):
    """An argparse type: an int of `low` or more (--symbols 0 failed deep inside as 'integer modulo by zero')."""
    def count(text: str) -> int:  # argparse names it: "invalid count value: 'x'"
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value
    return count


def add_arguments(parser) -> None:
    parser.add_argument("--rules", type=at_least(1), default=50)
    parser.add_argument("--symbols", type=at_least(2), default=100, help="at least 2 (a named rule reads two)")
    parser.add_argument("--ticks", type=at_least(1), default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitioned", choices=("none", "disjoint", "whole"), default="none",
                        help="rules over named symbols, or partitioned templates over shares of the market or all")
    parser.add_argument("--batch", type=at_least(1), default=1_000,
                        help="ticks per batch: after each, the changed state is taken and pickled, as the job does")
    parser.add_argument("--engine", choices=("installed", "interpreted"), default="installed",
                        help="the rule engine as installed (compiled by mypyc where it could be), or its source")


def make_rules(count: int, symbols: list[str], rng: random.Random) -> dict[str, str]:
    rules = {}
    for i in range(count):
        a, b = rng.sample(symbols, 2)
        kind = i % 5
        rules[f"rule{i}"] = (f'IF price("{a}") - price("{b}") > 0.5 THEN SPREAD_{i}' if kind == 0
                             else template_mix(kind, a))
    return rules


def make_partitioned_rules(count: int, bases: int, whole: bool) -> dict[str, str]:
    return {f"rule{i}": template_mix(i % 5, () if whole else f"B{i % bases}/*") for i in range(count)}


def template_mix(kind: int, covers: str | tuple) -> str:
    """One of five templates over what `covers` says (one symbol, a cover, or every symbol)."""
    from core.cep import templates

    if kind == 0:
        return templates.volatility_burst(covers, ratio=3.0, short="10s", long="1m")
    if kind == 1:
        return templates.price_spike(covers, pct=2.0, window="10s")
    if kind == 2:
        return templates.spread_widening(covers, bps=30.0)
    if kind == 3:
        return templates.breakout(covers, window="1m", zscore=3.5)
    return templates.trend_reversal(covers, up_pct=1.0, down_pct=1.0, window="10s", within="30s")


def make_ticks(count: int, symbols: list[str], rng: random.Random) -> list[Tick]:
    venues = ("binance", "kraken", "coinbase")
    prices = {s: 100.0 for s in symbols}
    ticks, ts = [], 1_700_000_000_000
    for i in range(count):
        symbol = symbols[rng.randrange(len(symbols))]
        price = prices[symbol] = max(1.0, prices[symbol] * (1.0 + rng.gauss(0.0, 0.0008)))
        half = price * 0.0001
        ts += rng.randrange(0, 3)
        ticks.append(Tick(venues[i % 3], symbol, price - half, price + half, 1.0, 1.0, ts))
    return ticks


def run(args) -> dict:
    import pickle

    if args.engine == "interpreted":
        compiled.import_from_source()

    from core.cep.engine import RuleEngine

    rng = random.Random(args.seed)
    quotes = 20  # the symbols are B<base>/Q<quote>: 20 quote assets per base
    symbols = [f"B{i // quotes}/Q{i % quotes}" for i in range(args.symbols)]
    bases = -(-args.symbols // quotes)
    rules = (make_rules(args.rules, symbols, rng) if args.partitioned == "none"
             else make_partitioned_rules(args.rules, bases, args.partitioned == "whole"))
    engine = RuleEngine()
    for rule_id, text in rules.items():
        engine.apply(rule_id, text)
    ticks = make_ticks(args.ticks, symbols, rng)
    gc.freeze()  # the bench's own ticks, all held at once (the job holds a batch), are not for the collector to scan
    on_tick = engine.on_tick
    signals, state_s, state_bytes = 0, 0.0, 0
    batches = range(0, len(ticks), args.batch)
    started_cpu, started = time.process_time(), time.perf_counter()
    for start in batches:
        for tick in ticks[start:start + args.batch]:
            signals += len(on_tick(tick, tick.ts))
        taken = time.perf_counter()
        state_bytes += len(pickle.dumps(engine.take_changes(), protocol=pickle.HIGHEST_PROTOCOL))
        state_s += time.perf_counter() - taken
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    stats = engine.stats().values()
    evaluations = sum(s["evaluations"] for s in stats)
    snapshots = []
    for _ in range(3):
        started = time.perf_counter()
        size = len(pickle.dumps(engine.snapshot(), protocol=pickle.HIGHEST_PROTOCOL))
        snapshots.append(time.perf_counter() - started)
    return {
        "engine": "interpreted" if args.engine == "interpreted" else compiled.state(),  # compiled: by mypyc
        "rules": args.rules,
        "partitioned": args.partitioned,
        "keys": sum(s.get("keys", 0) for s in stats),
        "symbols": args.symbols,
        "ticks": len(ticks),
        "ticks_per_cpu_second": len(ticks) / cpu,  # the state writes included
        "ticks_per_wall_second": len(ticks) / wall,
        "ticks_per_second_without_state": len(ticks) / (wall - state_s),
        "state_per_batch_ms": state_s / len(batches) * 1000,
        "state_per_batch_bytes": state_bytes // len(batches),
        "rule_evaluations_per_tick": evaluations / len(ticks),
        "mean_evaluation_us": sum(s["time_ns"] for s in stats) / max(evaluations, 1) / 1000,
        "signals": signals,
        "errors": sum(s["errors"] for s in stats),
        "whole_snapshot_ms": min(snapshots) * 1000,  # for comparison: what a batch would cost written whole
        "whole_snapshot_bytes": size,
        **backtest_rate(ticks, *next(iter(rules.items()))),
    }


def backtest_rate(ticks: list[Tick], rule_id: str, rule: str) -> dict[str, float]:
    """Ticks per CPU and per wall second of a backtest of `rule` over a local lake holding `ticks` (writing the lake
    is not timed)."""
    from core.cep.backtest import Backtest
    from lake.backtest import tick_streams
    from lake.storage import open_lake
    from lake.writer import LakeWriter

    scratch = tempfile.mkdtemp(prefix="ascep-backtest-bench-")
    try:
        lake = open_lake(scratch)
        writer = LakeWriter(lake, topic_id=str(uuid.uuid4()), roll_seconds=1e9, roll_event_span_ms=10**12)
        for offset, tick in enumerate(ticks):
            writer.add_ticks(0, offset, (tick,))
        writer.close()
        started_cpu, started = time.process_time(), time.perf_counter()
        [(_, streams)] = tick_streams(lake, ticks[0].ts, ticks[-1].ts + 1)
        backtest = Backtest(rule_id, rule, streams)
        for _ in backtest.run(streams):
            pass
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        if backtest.ticks != len(ticks):
            raise RuntimeError(f"the backtest read {backtest.ticks} ticks of the {len(ticks)} written")
        return {"backtest_ticks_per_cpu_second": backtest.ticks / cpu,
                "backtest_ticks_per_wall_second": backtest.ticks / wall}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
