"""Backtest: a rule over recorded ticks sees them as the job's rule engine does: in event-time order with ties in
venue and symbol order, a tick out of order among those sharing its key put back in its place, one further out late;
the same signals however the ticks are cut into chunks or the partitions take turns."""
from __future__ import annotations

import random
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from core.cep.backtest import Backtest, Chunk, Tally
from core.contracts.signal import signal_id
from core.contracts.tick import Tick

T0 = 1_700_000_000_000
UP = ('DEFINE dip AS price("S/USD") < 25\nDEFINE peak AS price("S/USD") > 25\n'
      'PATTERN dip NEXT peak THEN UP')
RULES = ['IF price("A/USD") - price("B/USD") > 0.5 THEN WIDE',
         'IF price("A/USD@v1") > price("A/USD@v2") THEN LEADS',
         'DEFINE up AS price("A/USD") > 100.5\nDEFINE down AS price("B/USD") < 99.5\n'
         'PATTERN up FOLLOWED BY down WITHIN 50ms THEN TURN']


def at(price: float, dt: int, venue: str = "v", symbol: str = "S/USD") -> Tick:
    return Tick(venue, symbol, price, price, None, None, T0 + dt)


def backtest(rule: str, ticks: list[Tick], rule_id: str = "r") -> tuple[list[dict], Backtest]:
    """One partition, one chunk, offsets in list order."""
    run = Backtest(rule_id, rule, [0])
    found = [f for step in run.run({0: [Chunk(0, ticks, list(range(len(ticks))))]}) for f in step]
    return [f.signal for f in found], run


def test_ticks_of_one_millisecond_are_evaluated_in_venue_order_not_offset_order():
    # offset order: b (2.0) then a (1.0); the job evaluates a, then b: the price of any venue ends at 2.0
    signals, _ = backtest('IF price("S/USD") > 1.5 THEN HIGH', [at(2.0, 0, "b"), at(1.0, 0, "a")])
    assert [(s["status"], s["event_time"]) for s in signals] == [("open", T0)]


def test_a_tick_out_of_order_among_ticks_sharing_its_key_goes_back_in_its_place():
    # 10, 30, 20: 20 takes 30's key and goes before it, so `dip NEXT peak` matches 20 then 30 (not 10 then 30)
    signals, run = backtest(UP, [at(10, 10), at(30, 30), at(20, 20)])
    assert [(s["event_time"], s["closed_at"]) for s in signals] == [(T0 + 20, T0 + 30)]
    assert run.engine.late_count == 0


def test_a_tick_behind_an_earlier_key_is_late_and_not_evaluated():
    # 15 comes after 30 took the key from 20: behind the newest event time the engine took (20), so late
    signals, run = backtest(UP, [at(10, 10), at(20, 20), at(30, 30), at(15, 15)])
    assert run.engine.late_count == 1 and run.engine.stats()["r"]["evaluations"] == 3
    assert [s["event_time"] for s in signals] == [T0 + 20]


def test_signals_carry_the_rule_id_and_the_tick_that_gave_them():
    run = Backtest("mine", 'IF price("S/USD") > 1.5 THEN HIGH', [3])
    found = [f for step in run.run({3: [Chunk(3, [at(1.0, 0), at(2.0, 5), at(1.0, 9)], [40, 41, 42])]}) for f in step]
    assert [(f.signal["status"], f.partition, f.offset) for f in found] == [("open", 3, 41), ("closed", 3, 42)]
    assert found[0].signal["id"] == signal_id("rule", ("mine", "HIGH"), T0 + 5)


def test_the_ticks_the_merge_holds_at_the_end_are_evaluated():
    run = Backtest("r", 'IF price("S/USD") > 1.5 THEN HIGH', [0])
    assert run.feed(Chunk(0, [at(2.0, 0)], [0])) == []  # its key is the partition's watermark: held
    assert [f.signal["status"] for f in run.finish()] == ["open"]


def market(seed: int, count: int, disorder_ms: int) -> list[Tick]:
    rng = random.Random(seed)
    ticks, ts, prices = [], 0, {"A/USD": 100.0, "B/USD": 100.0}
    for _ in range(count):
        ts += rng.randrange(0, 3)
        symbol = rng.choice(("A/USD", "B/USD"))
        prices[symbol] += rng.choice((-0.3, 0.3))
        ticks.append(at(prices[symbol], ts - rng.randrange(0, disorder_ms + 1), rng.choice(("v1", "v2")), symbol))
    return ticks


def in_chunks(partition: int, ticks: list[Tick], offsets: list[int], rng: random.Random) -> list[Chunk]:
    cuts = sorted(rng.sample(range(1, len(ticks)), min(5, len(ticks) - 1))) if len(ticks) > 1 else []
    bounds = [0, *cuts, len(ticks)]
    return [Chunk(partition, ticks[a:b], offsets[a:b]) for a, b in zip(bounds, bounds[1:])]


def split(ticks: list[Tick], partitions: int) -> dict[int, tuple[list[Tick], list[int]]]:
    """By symbol, as producers partition `ticks`; offsets count per partition."""
    out: dict[int, tuple[list[Tick], list[int]]] = {p: ([], []) for p in range(partitions)}
    for tick in ticks:
        log, offsets = out[zlib.crc32(tick.symbol.encode()) % partitions]
        offsets.append(len(log))
        log.append(tick)
    return out


def signals_of(run: Backtest, steps) -> list[tuple]:
    return [(f.signal["id"], f.signal["status"], f.signal["updated_at"]) for step in steps for f in step] \
        + [("late", run.engine.late_count)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), rule=st.sampled_from(RULES), partitions=st.integers(1, 3),
       disorder=st.integers(0, 6))
def test_chunks_and_turns_do_not_change_the_signals(seed, rule, partitions, disorder):
    rng = random.Random(seed)
    logs = split(market(seed, 300, disorder), partitions)
    whole = Backtest("r", rule, logs)
    expected = signals_of(whole, whole.run({p: [Chunk(p, *log)] for p, log in logs.items()}))
    chunked = Backtest("r", rule, logs)
    chunks = [chunk for p, log in logs.items() for chunk in in_chunks(p, *log, rng)]
    turns = []  # a random interleaving that keeps each partition's chunks in order
    while chunks:
        heads = {c.partition: c for c in reversed(chunks)}
        chosen = heads[rng.choice(sorted(heads))]
        chunks.remove(chosen)
        turns.append(chunked.feed(chosen))
    assert signals_of(chunked, [*turns, chunked.finish()]) == expected


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), rule=st.sampled_from(RULES), partitions=st.integers(2, 3))
def test_within_the_bound_the_partition_count_does_not_change_the_signals(seed, rule, partitions):
    ticks = market(seed, 300, disorder_ms=4)
    one = Backtest("r", rule, [0], bound_ms=4)
    expected = signals_of(one, one.run({0: [Chunk(0, ticks, list(range(len(ticks))))]}))
    logs = split(ticks, partitions)
    several = Backtest("r", rule, logs, bound_ms=4)
    assert signals_of(several, several.run({p: [Chunk(p, *log)] for p, log in logs.items()})) == expected


def test_the_tally_counts_each_signal_once_by_name_and_by_the_symbols_it_names():
    tally = Tally()
    events = {"up": [at(1, 0, symbol="A/USD").to_json_dict()], "down": [at(1, 1, symbol="B/USD").to_json_dict()]}
    for state in ({"id": "1", "type": "rule", "name": "HIGH", "status": "open"},
                  {"id": "1", "type": "rule", "name": "HIGH", "status": "closed"},
                  {"id": "2", "type": "rule", "name": "TURN", "status": "closed", "events": events},
                  {"id": "3", "type": "rule", "name": "TURN", "status": "closed", "events": events}):
        tally.add(state)
    assert (tally.signals, tally.states) == (3, 4)
    assert tally.by_name == {"HIGH": 1, "TURN": 2} and tally.by_symbol == {"A/USD": 2, "B/USD": 2}


def test_a_partitioned_rule_is_tallied_by_key():
    from core.cep.backtest import Tally

    tally = Tally()
    for ident, key in (("a", "BTC/USDT"), ("a", "BTC/USDT"), ("b", "ETH/USDT@kraken")):
        tally.add({"id": ident, "type": "rule", "name": "SPIKE", "legs": [], "key": key})
    assert tally.by_symbol == {"BTC/USDT": 1, "ETH/USDT@kraken": 1} and tally.states == 3
