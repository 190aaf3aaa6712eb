"""Rule engine throughput: ticks per second on one core with N active rules over M symbols.

The rules are a realistic mix from the built-in templates (cross-symbol conditions, trailing-window
conditions, and pattern sequences), each reading one or two of the symbols, so a tick evaluates
only the few rules that read its symbol, as in the job.
"""
from __future__ import annotations

import random
import time

from core.contracts.tick import Tick


def add_arguments(parser) -> None:
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)


def make_rules(count: int, symbols: list[str], rng: random.Random) -> dict[str, str]:
    from core.cep import templates

    rules = {}
    for i in range(count):
        a, b = rng.sample(symbols, 2)
        kind = i % 5
        if kind == 0:
            text = f'IF price("{a}") - price("{b}") > 0.5 THEN SPREAD_{i}'
        elif kind == 1:
            text = templates.price_spike(a, pct=2.0, window="10s")
        elif kind == 2:
            text = templates.spread_widening(a, bps=30.0)
        elif kind == 3:
            text = templates.breakout(a, window="1m", zscore=3.5)
        else:
            text = templates.trend_reversal(a, up_pct=1.0, down_pct=1.0, window="10s", within="30s")
        rules[f"rule{i}"] = text
    return rules


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
    from core.cep.engine import RuleEngine

    rng = random.Random(args.seed)
    symbols = [f"S{i}/USD" for i in range(args.symbols)]
    engine = RuleEngine()
    for rule_id, text in make_rules(args.rules, symbols, rng).items():
        engine.apply(rule_id, text)
    ticks = make_ticks(args.ticks, symbols, rng)
    on_tick = engine.on_tick
    signals = 0
    started_cpu, started = time.process_time(), time.perf_counter()
    for tick in ticks:
        signals += len(on_tick(tick, tick.ts))
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    stats = engine.stats().values()
    evaluations = sum(s["evaluations"] for s in stats)
    return {
        "rules": args.rules,
        "symbols": args.symbols,
        "ticks": len(ticks),
        "ticks_per_cpu_second": len(ticks) / cpu,
        "ticks_per_wall_second": len(ticks) / wall,
        "rule_evaluations_per_tick": evaluations / len(ticks),
        "mean_evaluation_us": sum(s["time_ns"] for s in stats) / max(evaluations, 1) / 1000,
        "signals": signals,
        "errors": sum(s["errors"] for s in stats),
    }
