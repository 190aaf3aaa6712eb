"""The rule engine compiled by mypyc (setup.py) against the same modules interpreted, in two processes.

The compiled modules are the ones the job and the benchmarks run; the pure ones are what the Managed Flink zip
carries. Both must give the same signals and the same state, to the bit: a checkpoint written by one is
restored by the other, and a backtest must give a live run's signal ids.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES

from ascep import compiled

# Runs a market of every kind of rule and prints where the engine came from and a digest of all it gave.
RUN = r"""
import hashlib, json, pickle, random, sys
from ascep import compiled
if sys.argv[1] == "pure":
    compiled.import_from_source()
import core.cep.engine as engine_module
from ascep.benchmarks.cep import make_partitioned_rules, make_rules, make_ticks
from core.cep.engine import RuleEngine
from core.contracts.trade import Trade

rng = random.Random(11)
symbols = [f"B{i // 20}/Q{i % 20}" for i in range(200)]
engine = RuleEngine()
rules = {**make_partitioned_rules(10, 10, False), **{f"w{k}": v for k, v in make_partitioned_rules(5, 1, True).items()},
         **{f"n{k}": v for k, v in make_rules(10, symbols, rng).items()},
         "vol": 'PARTITION BY symbol FOR "B1/*" IF volume(10s) > 3 * vwap(10s) / vwap(10s) THEN HEAVY',
         "seq": 'DEFINE a AS event.kind == "trade" DEFINE b AS event.price > 100 '
                'PATTERN a FOLLOWED BY b WITHIN 5s THEN TRADE_THEN_HIGH'}
for rule_id, text in rules.items():
    engine.apply(rule_id, text)

def steady(entries):  # the entries without the times evaluations took, which differ from run to run
    meta = entries["meta"]
    stats = {rule: {k: v for k, v in s.items() if k != "time_ns"} for rule, s in meta["stats"].items()}
    return sorted({**entries, "meta": {**meta, "stats": stats}}.items())

digest, signals = hashlib.sha256(), 0
ticks = make_ticks(30_000, symbols, rng)
for start in range(0, len(ticks), 1_000):
    for i, tick in enumerate(ticks[start:start + 1_000]):
        out = engine.on_tick(tick, tick.ts)
        if i % 7 == 0:
            out += engine.on_trade(Trade(tick.venue, tick.symbol, tick.bid, 1.0 + i % 3, "buy", tick.ts), tick.ts)
        signals += len(out)
        digest.update(pickle.dumps(out, protocol=5))
    entries, removed = engine.take_changes()
    digest.update(pickle.dumps((steady(entries), sorted(removed)), protocol=5))
snapshot = engine.snapshot()
restored = RuleEngine.restore(snapshot).snapshot()
digest.update(pickle.dumps((steady(snapshot), steady(restored)), protocol=5))
stats = {rule: {k: v for k, v in s.items() if k != "time_ns"} for rule, s in sorted(engine.stats().items())}
digest.update(json.dumps(stats, sort_keys=True).encode())
print(json.dumps({"engine": engine_module.__file__, "signals": signals, "digest": digest.hexdigest()}))
"""


def run(mode: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same set orders of names in both
    done = subprocess.run([sys.executable, "-c", RUN, mode], capture_output=True, text=True,
                          env=env, cwd=compiled.ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_rule_engine_is_compiled_here():
    assert compiled.state() == "compiled", [str(compiled.extension_of(s)) for s in compiled.COMPILED]
    assert not compiled.stale()


def test_compiled_and_interpreted_engines_give_the_same_signals_and_state():
    native, pure = run("compiled"), run("pure")
    assert native["engine"].endswith(EXTENSION_SUFFIXES[0]) and pure["engine"].endswith(".py")
    assert native["signals"] > 50  # the market fires enough rules for the comparison to mean something
    assert native == {**pure, "engine": native["engine"]}
