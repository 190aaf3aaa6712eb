"""Event-time order across a topic's partitions, decided by the data alone.

Triangular, direct and rule detection combine ticks from several partitions. Processed in the order
their batches happened to arrive, the same input would give different signals with another partition
count, parallelism or restore. So every reader stamps its partition's ticks, and each detecting
operator merges the partitions by those stamps, as Flink's own operators do with per-input watermarks:

- A tick's order key is its event time, raised to the watermark its partition had already promised.
  The watermark is the partition's newest event time minus the out-of-orderness bound, so a tick
  up to `bound` ms out of order keeps its true place, and one further out keeps its place in its own
  partition (stamp_keys). Nothing from a partition ever sorts below its promise.
- The merge releases the ticks below the frontier, in (key, event time, venue, symbol) order: a tick
  raised to its partition's watermark goes after the ticks it was out of order with, but among those
  raised alike, in event-time order. Ticks equal in all four come from one partition, in offset order.
- Trades (read for the rules from `trades`, partitioned like `ticks`) are merged the same way, each
  partition of `trades` a source of its own; at the same key and event time trades go first, so a
  tick's rules see every trade of its millisecond.
- The frontier is the lowest partition watermark. A partition its producers do not write to is not
  idle by the wall clock: the producers write watermark records (ingestion/producer.py) into every
  partition they leave quiet, so its watermark moves by event time kept in the log, and a replay
  and a restore decide alike. For producers that write none, `idle_after_ms` (off by default) lets
  a partition whose watermark trails the newest by that much stop holding the others back; that
  depends on the order batches arrive in, so it gives up the guarantee (docs/scaling.md).
- A tick below what was already released (only an idle partition's) is processed at once, out of
  order, and counted as late: never dropped.

The latency this adds: a tick waits until every active partition has promised past it: until the next
later tick on each, or the producers' watermark records after 100 ms of quiet (docs/scaling.md). A
host merges trades only while a rule reads them (`waits_for`): otherwise nobody needs to wait for them.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from core.contracts.tick import Tick, Timed
from core.contracts.trade import Trade

Item = Tick | Trade

NO_WATERMARK = -(2**63)



def stamp_keys(ticks: Sequence[Timed], newest: int, bound_ms: int,
               promises: Iterable[tuple[int, int]] = ()) -> tuple[list[int], int]:
    """Order keys of a partition's ticks (or trades) in offset order, and its newest event time after them.
    `newest` is what came before (NO_WATERMARK at the start); the watermark is newest - bound_ms.
    `promises` are the producers' watermark records among the ticks: (ticks before it, its event time);
    a promise counts as a tick at its time plus the bound, so the watermark reaches the promise itself."""
    keys = []
    pending = sorted(promises, reverse=True)
    for index, tick in enumerate(ticks):
        while pending and pending[-1][0] <= index:
            newest = max(newest, pending.pop()[1] + bound_ms)
        ts = tick.ts
        promised = newest - bound_ms
        keys.append(ts if ts >= promised else promised)
        if ts > newest:
            newest = ts
    for _, ts in pending:
        newest = max(newest, ts + bound_ms)
    return keys, newest


def watermark_of(newest: int, bound_ms: int) -> int:
    return NO_WATERMARK if newest == NO_WATERMARK else newest - bound_ms


class EventTimeMerge:
    """Merges `sources` partitions (numbered 0..sources-1) into one event-time order; see the module.

    The frontier waits for the first `waits_for` sources (all, unless the host says otherwise before a
    batch); the others' watermarks are kept, so that they count again at once when the host wants them to.
    What it holds is kept batch by batch, so a host writes each batch's held ticks to its state once
    (take_changes) instead of every held tick after every batch."""

    __slots__ = ("sources", "idle_after_ms", "waits_for", "watermarks", "released", "held", "late_count", "_seq",
                 "_unreleased", "_stored", "_done")

    def __init__(self, sources: int, idle_after_ms: int) -> None:
        if sources < 1 or idle_after_ms < 0:
            raise ValueError("sources must be >= 1 and idle_after_ms >= 0")
        self.sources = sources
        self.idle_after_ms = idle_after_ms
        self.waits_for = sources
        self.watermarks = [NO_WATERMARK] * sources
        self.released = NO_WATERMARK  # everything with a key below this has been handed on
        # sorted (key, ts, is a tick, venue, symbol, seq, item, payload, batch): seq keeps a batch's offset order
        self.held: list[tuple[int, int, bool, str, str, int, Item, Any, int]] = []
        self.late_count = 0
        self._seq = 0
        self._unreleased: dict[int, int] = {}  # batch (its first seq) -> its ticks still held
        self._stored: dict[int, list[tuple[int, Item, Any]]] = {}  # batches held since take_changes()
        self._done: list[int] = []  # batches fully released since take_changes()

    def frontier(self) -> int:
        """Keys below this are safe to release: no active partition waited for can still send one."""
        waited = self.watermarks[:self.waits_for]
        lowest = min(waited)
        if not self.idle_after_ms:
            return lowest
        newest = max(waited)
        if newest == NO_WATERMARK:
            return NO_WATERMARK
        return max(lowest, newest - self.idle_after_ms)

    def add(self, source: int, keys: list[int], ticks: Sequence[Item], payloads: list[Any],
            watermark: int) -> tuple[list[Item], list[Any]]:
        """Take one batch of `source` (its ticks or trades in offset order, their keys and payloads) and its
        watermark after it; return what may now be processed, as items and their payloads: late ones first,
        then the released ones in order."""
        out_ticks: list[Item] = []
        out_payloads: list[Any] = []
        held = self.held
        released = self.released
        batch = self._seq
        entries = list(zip(keys, [t.ts for t in ticks], [type(t) is Tick for t in ticks], [t.venue for t in ticks],
                           [t.symbol for t in ticks], range(batch, batch + len(ticks)), ticks, payloads,
                           [batch] * len(ticks)))
        self._seq += len(ticks)
        if keys and min(keys) < released:  # only an idle partition's: processed at once, and counted
            kept = []
            for entry in entries:
                if entry[0] < released:
                    self.late_count += 1
                    out_ticks.append(entry[6])
                    out_payloads.append(entry[7])
                else:
                    kept.append(entry)
            entries = kept
        held.extend(entries)
        if watermark > self.watermarks[source]:
            self.watermarks[source] = watermark
        held.sort()  # the held run is sorted and the batch mostly is: timsort merges the runs
        frontier = self.frontier()
        if frontier > released:
            self.released = frontier
            cut = bisect_left(held, (frontier,)) if held else 0
            if cut:
                ready = held[:cut]
                del held[:cut]
                out_ticks.extend([entry[6] for entry in ready])
                out_payloads.extend([entry[7] for entry in ready])
                self._release(ready, batch)
        still = [(entry[0], entry[6], entry[7]) for entry in entries if entry[0] >= self.released]
        if still:
            self._unreleased[batch] = len(still)
            self._stored[batch] = still
        return out_ticks, out_payloads

    def _release(self, ready: list, batch: int) -> None:
        """Count down the older batches whose ticks were released; the new one is not counted yet."""
        unreleased = self._unreleased
        for old, count in Counter(entry[8] for entry in ready if entry[8] != batch).items():
            left = unreleased[old] - count
            if left:
                unreleased[old] = left
            else:
                del unreleased[old]
                if self._stored.pop(old, None) is None:
                    self._done.append(old)

    def take_changes(self) -> tuple[dict[int, list[tuple[int, Item, Any]]], list[int]]:
        """Batches to store (their held items as (key, item, payload)), and stored batches to forget."""
        stored, done = self._stored, self._done
        self._stored, self._done = {}, []
        return stored, done

    def header(self) -> tuple:
        """Everything but the held batches, which take_changes() hands out one by one."""
        return self.sources, self.idle_after_ms, list(self.watermarks), self.released, self.late_count, self._seq

    @classmethod
    def restore(cls, header: tuple, batches: Iterable[tuple[int, list[tuple[int, Item, Any]]]],
                sources: int | None = None) -> EventTimeMerge:
        """From header() and the batches stored and not forgotten; their items already released (key below
        the released frontier: a partly released batch is stored whole) are left out. `sources`: how many the
        host merges now, if not as many as the checkpoint's (trades merged since, or no longer)."""
        saved_sources, idle_after_ms, watermarks, released, late_count, seq = header
        merge = cls(saved_sources if sources is None else sources, idle_after_ms)
        kept = min(len(watermarks), merge.sources)
        merge.watermarks[:kept] = watermarks[:kept]
        merge.released, merge.late_count, merge._seq = released, late_count, seq
        for batch, entries in sorted(batches, key=lambda item: item[0]):
            held = [(key, tick.ts, type(tick) is Tick, tick.venue, tick.symbol, batch + i, tick, payload, batch)
                    for i, (key, tick, payload) in enumerate(entries) if key >= released]
            if held:
                merge.held.extend(held)
                merge._unreleased[batch] = len(held)
        merge.held.sort()
        return merge
