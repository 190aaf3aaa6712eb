"""A rule over recorded ticks, fed to the engine as the job feeds it, so a backtest gives the job's signal ids.

The job does not evaluate rules in offset order. Each partition's ticks get order keys (core/event_order.py: a
tick's event time, raised to what its partition had already promised), the partitions are merged in
(key, event time, venue, symbol, offset) order, and the engine's own watermark stage (one source, no bound) drops
as late every tick behind the newest event time it has taken. So the ticks of one millisecond are evaluated in
venue and symbol order, a tick out of order among ticks that share its key is put back in its place, and one
further out is late: counted, not evaluated. Backtest runs those same pieces, stamp_keys, EventTimeMerge and
RuleEngine, over the ticks of a time range, each partition's in offset order (lake/backtest.py reads them).

What the lake does not keep cannot be replayed (docs/rules.md, "Backtests"): producers' watermark records, which
raise the keys of the ticks after them, and the wall clock, by which the job's engine takes its source as idle.
"""
from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from core.contracts.signal import Signal, places
from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.event_order import NO_WATERMARK, EventTimeMerge, stamp_keys, watermark_of
from core.settings import RuleSettings

from .engine import END_OF_TIME, RuleEngine
from .rules import Rule

SOURCE = "ticks"  # the engine's one source in the job (core/detection.py): every tick comes through it


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive ticks of one partition, in offset order, with their offsets."""

    partition: int
    ticks: list[Tick]
    offsets: list[int]


class Found(NamedTuple):
    """A signal state and the tick whose evaluation gave it (the tick's partition and offset)."""

    signal: Signal
    partition: int
    offset: int


class Backtest:
    """One rule over the ticks of `partitions`; `bound_ms` is the job's job.out_of_orderness_ms, `limits` its
    settings.rules (a rule at its caps drops partial matches in a backtest as in the job)."""

    def __init__(self, rule_id: str, rule: Rule | dict | str, partitions: Iterable[int], bound_ms: int = 0,
                 limits: RuleSettings | None = None) -> None:
        self.engine = RuleEngine(limits=limits)
        self.engine.apply(rule_id, rule)
        self.rule_id = rule_id
        self.bound_ms = bound_ms
        self.sources = {partition: source for source, partition in enumerate(sorted(set(partitions)))}
        self.merge = EventTimeMerge(len(self.sources), idle_after_ms=0)
        self.newest = dict.fromkeys(self.sources, NO_WATERMARK)
        self.ticks = 0

    def feed(self, chunk: Chunk) -> list[Found]:
        """The chunk comes after every earlier chunk of its partition; returns what the ticks it released gave."""
        keys, newest = stamp_keys(chunk.ticks, self.newest[chunk.partition], self.bound_ms)
        self.newest[chunk.partition] = newest
        self.ticks += len(chunk.ticks)
        lineage = [(chunk.partition, offset) for offset in chunk.offsets]
        return self._evaluate(*self.merge.add(self.sources[chunk.partition], keys, chunk.ticks, lineage,
                                              watermark_of(newest, self.bound_ms)))

    def finish(self) -> list[Found]:
        """The end of the input: what the merge holds goes on, as the producers' closing watermark records make it
        go on in the job, and partial matches time out."""
        out = []
        for source in self.sources.values():
            out += self._evaluate(*self.merge.add(source, [], [], [], END_OF_TIME))
        held = self.engine.finish()
        assert not held, "the engine held ticks: with one source and no bound every tick passes straight through"
        return out

    def run(self, streams: Mapping[int, Iterable[Chunk]]) -> Iterator[list[Found]]:
        """Feeds every partition's chunks, then finishes; yields what each step found. The partition furthest
        behind in event time goes next: any order gives the same signals (the merge's point), this one keeps the
        fewest ticks waiting in the merge."""
        heap = [(NO_WATERMARK, partition, iter(chunks)) for partition, chunks in streams.items()]
        heapq.heapify(heap)
        while heap:
            _, partition, chunks = heap[0]
            chunk = next(chunks, None)
            if chunk is None:
                heapq.heappop(heap)
                continue
            found = self.feed(chunk)
            heapq.heapreplace(heap, (self.newest[partition], partition, chunks))
            yield found
        yield self.finish()

    @property
    def position(self) -> int:
        """The event time every partition has been read up to."""
        return min(self.newest.values(), default=NO_WATERMARK)

    def _evaluate(self, ticks: list[Tick | Trade], lineage: list[tuple[int, int]]) -> list[Found]:
        on_ordered = self.engine.on_ordered  # as the job's rule host: the merge has ordered them
        out = []
        for tick, (partition, offset) in zip(ticks, lineage):
            for signal in on_ordered(tick, tick.ts, source=SOURCE):  # processing time from the tick: the same every run
                out.append(Found(signal, partition, offset))
        return out


class Tally:
    """Signals by name and by symbol (a partitioned rule's by its key), each counted once whatever states it went
    through (open, closed)."""

    def __init__(self) -> None:
        self.states = 0
        self.by_name: Counter[str] = Counter()
        self.by_symbol: Counter[str] = Counter()
        self._seen: set[str] = set()

    @property
    def signals(self) -> int:
        return len(self._seen)

    def add(self, signal: Signal) -> None:
        self.states += 1
        if signal["id"] in self._seen:
            return
        self._seen.add(signal["id"])
        self.by_name[signal.get("name") or signal["type"]] += 1
        self.by_symbol.update((signal["key"],) if "key" in signal else places(signal)[0])  # a partitioned rule's key
