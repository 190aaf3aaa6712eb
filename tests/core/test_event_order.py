"""Event-time order across partitions: the same ticks (and trades) give the same order, whatever the partition
count, batch boundaries, interleaving of partitions, or snapshot and restore in between."""
from __future__ import annotations

import random
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.event_order import NO_WATERMARK, EventTimeMerge, Item, stamp_keys, watermark_of

VENUES = ("binance", "kraken", "okx")
SYMBOLS = ("BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "SOL/BTC")


def market(rng: random.Random, count: int, disorder_ms: int) -> list[Tick]:
    """Ticks in production order: time moves on by 0-2 ms, and each tick may be up to disorder_ms early."""
    ticks, ts = [], 1_000
    for _ in range(count):
        ts += rng.randrange(0, 3)
        venue, symbol = rng.choice(VENUES), rng.choice(SYMBOLS)
        ticks.append(Tick(venue, symbol, 1.0, 1.1, None, None, ts - rng.randrange(0, disorder_ms + 1)))
    return ticks


def with_trades(rng: random.Random, ticks: list[Tick]) -> list[Item]:
    """The ticks and, after about every third, a trade at the same time or a little later, as a venue sends them."""
    out: list[Item] = []
    for tick in ticks:
        out.append(tick)
        if rng.random() < 0.3:
            out.append(Trade(tick.venue, rng.choice(SYMBOLS), 1.05, 1.0, None, tick.ts + rng.randrange(0, 2)))
    return out


def read(items: list[Item], partitions: int, rng: random.Random, bound_ms: int, idle_after_ms: int,
         restore_every: int = 0) -> tuple[list[Item], int]:
    """Split by symbol into partitions of `ticks` and of `trades` (sources 0..p-1 and p..2p-1, as the job's host
    merges them), read them in random batches and random turns, merge; then end the input with one later item
    per partition. Returns what the merge released, in order, and late items."""
    sources = 2 * partitions
    logs: list[list[Item]] = [[] for _ in range(sources)]
    for item in items:
        topic = partitions if isinstance(item, Trade) else 0
        logs[topic + zlib.crc32(item.symbol.encode()) % partitions].append(item)
    end = max(item.ts for item in items) + bound_ms + 1
    for p, log in enumerate(logs):
        log.append(Tick("end", f"END{p}/X", 1.0, 1.1, None, None, end) if p < partitions
                   else Trade("end", f"END{p}/X", 1.0, 1.0, None, end))
    positions, newest = [0] * sources, [NO_WATERMARK] * sources
    merge = EventTimeMerge(sources, idle_after_ms)
    store: dict = {}  # what a host keeps in keyed state: the held batches, written once, forgotten once
    out: list[Item] = []
    turns = 0
    while any(positions[p] < len(logs[p]) for p in range(sources)):
        p = rng.randrange(sources)
        if positions[p] >= len(logs[p]):
            continue
        batch = logs[p][positions[p]:positions[p] + rng.randrange(1, 40)]
        positions[p] += len(batch)
        keys, newest[p] = stamp_keys(batch, newest[p], bound_ms)
        out.extend(merge.add(p, keys, batch, [None] * len(batch), watermark_of(newest[p], bound_ms))[0])
        stored, done = merge.take_changes()
        store.update(stored)
        for batch in done:
            del store[batch]
        turns += 1
        if restore_every and turns % restore_every == 0:
            merge = EventTimeMerge.restore(merge.header(), list(store.items()))
    # a batch wholly released is forgotten: what is left still holds end ticks, which wait for a later one
    # (a batch partly released is kept whole; its released ticks are those below the released frontier)
    assert all({tick.venue for key, tick, _ in entries if key >= merge.released} == {"end"}
               for entries in store.values()), store
    return [t for t in out if t.venue != "end"], merge.late_count


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), partitions=st.integers(2, 5), disorder=st.integers(0, 5))
def test_any_partition_count_and_interleaving_gives_the_one_partition_order(seed, partitions, disorder):
    rng = random.Random(seed)
    ticks = market(rng, 400, disorder)
    bound = disorder  # within the bound, every tick keeps its true place
    one, late_one = read(ticks, 1, rng, bound, idle_after_ms=10**9)
    many, late_many = read(ticks, partitions, rng, bound, idle_after_ms=10**9, restore_every=rng.randrange(0, 5))
    assert late_one == late_many == 0
    assert many == one
    assert one == sorted(ticks, key=lambda t: (t.ts, t.venue, t.symbol))  # stable: equal keys keep offset order


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), partitions=st.integers(2, 4))
def test_trades_take_their_event_time_place_among_the_ticks_first_at_the_same_millisecond(seed, partitions):
    rng = random.Random(seed)
    items = with_trades(rng, market(rng, 300, disorder_ms=0))
    one, _ = read(items, 1, rng, bound_ms=1, idle_after_ms=0)  # a trade may be 1 ms behind the one before
    many, late = read(items, partitions, rng, bound_ms=1, idle_after_ms=0, restore_every=rng.randrange(0, 5))
    assert late == 0 and many == one
    assert one == sorted(items, key=lambda i: (i.ts, isinstance(i, Tick), i.venue, i.symbol))


def test_sources_not_waited_for_hold_nobody_back_and_count_again_at_once():
    tick = Tick("kraken", "BTC/USD", 1.0, 1.1, None, None, 100)
    merge = EventTimeMerge(2, idle_after_ms=0)  # source 0 a partition of ticks, 1 the same of trades
    merge.waits_for = 1  # no rule reads trades
    assert merge.add(0, [100, 101], [tick, tick._replace(ts=101)], [1, 1], 101) == ([tick], [1])
    merge.waits_for = 2  # one does now: the trades' watermark (nothing promised yet) holds the ticks back
    assert merge.add(0, [102], [tick._replace(ts=102)], [1], 102) == ([], [])
    later = Trade("kraken", "BTC/USD", 1.05, 2.0, None, 101)
    released, _ = merge.add(1, [101], [later], [0], 102)  # and a producer's promise of 102
    assert released == [later, tick._replace(ts=101)]  # at the same millisecond the trade goes first
    restored = EventTimeMerge.restore(merge.header(), merge.take_changes()[0].items(), sources=3)
    assert restored.sources == restored.waits_for == 3 and restored.watermarks == [102, 102, NO_WATERMARK]
    assert restored.add(0, [], [], [], 103) == restored.add(1, [], [], [], 103) == ([], [])  # the third: nothing yet
    assert restored.add(2, [], [], [], 103)[0] == [tick._replace(ts=102)]


def test_beyond_the_bound_a_tick_keeps_its_place_in_its_own_partition_and_is_never_late():
    rng = random.Random(3)
    ticks = market(rng, 300, disorder_ms=20)
    one, late = read(ticks, 1, rng, bound_ms=0, idle_after_ms=10**9)
    assert late == 0 and sorted(one, key=id) == sorted(ticks, key=id)  # all of them, each once


def test_an_idle_partition_stops_holding_the_others_back_after_idle_after_ms_of_event_time():
    merge = EventTimeMerge(2, idle_after_ms=1_000)
    tick = Tick("kraken", "BTC/USD", 1.0, 1.1, None, None, 5_000)
    assert merge.add(0, [5_000], [tick], [None], 5_000) == ([], [])  # partition 1 has promised nothing yet
    later = tick._replace(ts=6_001)
    released, _ = merge.add(0, [6_001], [later], [None], 6_001)
    assert [t.ts for t in released] == [5_000]  # 6,001 - 1,000 passed it
    back = tick._replace(venue="okx", ts=4_000)
    assert merge.add(1, [4_000], [back], ["x"], 4_000) == ([back], ["x"]) and merge.late_count == 1  # late, not lost


def test_ticks_wait_only_for_the_next_later_tick_of_every_active_partition():
    merge = EventTimeMerge(1, idle_after_ms=5_000)
    a, b = (Tick("binance", s, 1.0, 1.1, None, None, 100) for s in ("ETH/USDT", "BTC/USDT"))
    assert merge.add(0, [100], [a], [1], 100) == ([], [])  # another tick at 100 may still come
    assert merge.add(0, [100, 101], [b, a._replace(ts=101)], [2, 3], 101) == ([b, a], [2, 1])
