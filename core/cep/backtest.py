"""A rule over recorded ticks, fed to the engine as the job feeds it, so a backtest gives the job's signal ids.

The job does not evaluate rules in offset order. Each partition's ticks get order keys (core/event_order.py: a
tick's event time, raised to what its partition had already promised), the partitions are merged in
(key, event time, venue, symbol, offset) order, and the engine's own watermark stage (one source, no bound) drops
as late every tick behind the newest event time it has taken. So the ticks of one millisecond are evaluated in
venue and symbol order, a tick out of order among ticks that share its key is put back in its place, and one
further out is late: counted, not evaluated. Backtest runs those same pieces, stamp_keys, EventTimeMerge and
RuleEngine, over the ticks of a time range, each partition's in offset order (lake/backtest.py reads them), and
over its trades when the rule reads trades: the job merges those too, as sources after the ticks'.

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
    """Consecutive ticks (or trades) of one partition, in offset order, with their offsets."""

    partition: int
    ticks: list[Tick] | list[Trade]
    offsets: list[int]
    trades: bool = False  # of the `trades` topic


class Found(NamedTuple):
    """A signal state and the tick (or trade) whose evaluation gave it: its partition and offset."""

    signal: Signal
    partition: int
    offset: int


class Backtest:
    """One rule over the ticks of `partitions`, and their trades when the rule reads trades; `bound_ms` is the
    job's job.out_of_orderness_ms, `limits` its settings.rules (a rule at its caps drops partial matches in a
    backtest as in the job). The merge's sources are numbered as the job's: ticks 0..n-1, trades n..2n-1."""

    def __init__(self, rule_id: str, rule: Rule | dict | str, partitions: Iterable[int], bound_ms: int = 0,
                 limits: RuleSettings | None = None) -> None:
        self.engine = RuleEngine(limits=limits)
        self.engine.apply(rule_id, rule)
        self.rule_id = rule_id
        self.bound_ms = bound_ms
        self.reads_trades = self.engine.reads_trades()  # else, as in the job, trades are not merged at all
        ordered = sorted(set(partitions))
        kinds = (False, True) if self.reads_trades else (False,)
        self.sources = {(trades, partition): n + (len(ordered) if trades else 0)
                        for trades in kinds for n, partition in enumerate(ordered)}
        self.merge = EventTimeMerge(len(self.sources), idle_after_ms=0)
        self.newest = dict.fromkeys(self.sources, NO_WATERMARK)
        self.ticks = self.trades = 0

    def feed(self, chunk: Chunk) -> list[Found]:
        """The chunk comes after every earlier chunk of its partition and topic; returns what the ticks (or trades)
        it released gave. A chunk of trades the rule does not read gives nothing."""
        stream = (chunk.trades, chunk.partition)
        if stream not in self.sources:
            return []
        keys, newest = stamp_keys(chunk.ticks, self.newest[stream], self.bound_ms)
        self.newest[stream] = newest
        if chunk.trades:
            self.trades += len(chunk.ticks)
        else:
            self.ticks += len(chunk.ticks)
        lineage = [(chunk.partition, offset) for offset in chunk.offsets]
        return self._evaluate(*self.merge.add(self.sources[stream], keys, chunk.ticks, lineage,
                                              watermark_of(newest, self.bound_ms)))

    def close(self, trades: bool, partition: int) -> list[Found]:
        """That stream has ended: it holds the others back no more, as the producers' closing watermark records
        make it in the job. Nothing of it can come late after that, so closing early changes no signal."""
        stream = (trades, partition)
        if stream not in self.sources:
            return []
        return self._evaluate(*self.merge.add(self.sources[stream], [], [], [], END_OF_TIME))

    def finish(self) -> list[Found]:
        """The end of the input: what the merge holds goes on, and partial matches time out."""
        out = []
        for trades, partition in self.sources:
            out += self.close(trades, partition)
        held = self.engine.finish()
        assert not held, "the engine held ticks: with one source and no bound every tick passes straight through"
        return out

    def run(self, streams: Mapping[int, Iterable[Chunk]],
            trades: Mapping[int, Iterable[Chunk]] | None = None) -> Iterator[list[Found]]:
        """Feeds every partition's chunks of ticks (and of `trades`), each closed as it ends, then finishes;
        yields what each step found. The stream furthest behind in event time goes next: any order gives the
        same signals (the merge's point), this one keeps the fewest ticks waiting in the merge."""
        given = [(False, partition, chunks) for partition, chunks in streams.items()]
        given += [(True, partition, chunks) for partition, chunks in (trades or {}).items() if self.reads_trades]
        absent = set(self.sources) - {(kind, partition) for kind, partition, _ in given}
        yield [found for stream in sorted(absent) for found in self.close(*stream)]
        heap = [(NO_WATERMARK, kind, partition, iter(chunks)) for kind, partition, chunks in given]
        heapq.heapify(heap)
        while heap:
            _, kind, partition, chunks = heap[0]
            chunk = next(chunks, None)
            if chunk is None:
                heapq.heappop(heap)
                yield self.close(kind, partition)
                continue
            found = self.feed(chunk)
            heapq.heapreplace(heap, (self.newest[(kind, partition)], kind, partition, chunks))
            yield found
        yield self.finish()

    @property
    def position(self) -> int:
        """The event time every partition's ticks have been read up to."""
        return min((newest for (trades, _), newest in self.newest.items() if not trades), default=NO_WATERMARK)

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
