"""Turns a batch of raw Kafka records into detector outputs: the job's per-batch core, without I/O.

The job reads a partition in batches (one Flink element per batch, not per tick: PyFlink's
per-record cost would otherwise cap throughput). Within a batch, ticks are applied in offset
order, so the outputs depend only on the records, never on where batch boundaries fall. Trades,
read beside the ticks for the rules, are checked here the same way (check_trades).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from core.contracts.signal import Signal
from core.contracts.tick import InvalidTick, Tick, check_not_ahead, decode_tick, watermark_in
from core.contracts.times import iso_ms
from core.contracts.trade import Trade, decode_trade

Record = tuple[int, bytes | None, int | None]  # offset, value, the record's timestamp or None
R = TypeVar("R", Tick, Trade)


@dataclass
class DeadLetter:
    reason: str
    value: bytes | None
    partition: int
    offset: int


def group_by(ticks: list[Tick], key_for: Callable[[Tick], str]) -> dict[str, list[Tick]]:
    """Split a batch by a detector's key, keeping tick order within each key."""
    groups: dict[str, list[Tick]] = {}
    for tick in ticks:
        key = key_for(tick)
        group = groups.get(key)
        if group is None:
            groups[key] = [tick]
        else:
            group.append(tick)
    return groups


@dataclass
class Checked(Generic[R]):
    """A batch's records sorted out: the valid ones in offset order, dead letters, producers' promises."""

    valid: list[R] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    # producers' watermark records: (how many valid records came before it, its promised event time)
    watermarks: list[tuple[int, int]] = field(default_factory=list)

    def refuse(self, error: InvalidTick, value: bytes | None, written_ms: int, skew_ms: int, partition: int,
               offset: int) -> None:
        """A record that is no valid tick or trade: a producer's watermark record, kept in order unless it is
        dated too far ahead of when it was written (it would hold every later record back until that date),
        or a dead letter with `error`."""
        promised = watermark_in(value)
        if promised is None:
            self.deadletters.append(DeadLetter(str(error), value, partition, offset))
        elif promised - written_ms > skew_ms:
            self.deadletters.append(DeadLetter(
                f"watermark record {iso_ms(promised)} is {promised - written_ms} ms after the record was written "
                f"({iso_ms(written_ms)}): more than the {skew_ms} ms allowed (job.max_future_skew_ms)",
                value, partition, offset))
        else:
            self.watermarks.append((len(self.valid), promised))


@dataclass
class BatchOutcome(Checked[Tick]):
    signals: list[Signal] = field(default_factory=list)
    latest: dict[str, Tick] = field(default_factory=dict)  # newest tick per venue:symbol in this batch
    touched: set[str] = field(default_factory=set)  # symbols whose detector state changed


def check_trades(records: Iterable[Record], partition: int, now_ms: int, max_future_skew_ms: int) -> Checked[Trade]:
    """A batch of `trades` records, decided as ticks are: a trade dated too far ahead of its record is
    dead-lettered (it would carry its partition's order keys past every later trade), and so is a record
    that is neither a trade nor a producer's watermark record."""
    out: Checked[Trade] = Checked()
    for offset, value, written_ms in records:
        written = now_ms if written_ms is None else written_ms
        try:
            out.valid.append(check_not_ahead(decode_trade(value), written, max_future_skew_ms))
        except InvalidTick as exc:
            out.refuse(exc, value, written, max_future_skew_ms, partition, offset)
    return out


class TickBatchProcessor:
    def __init__(self, detector: CrossExchangeDetector, max_future_skew_ms: int) -> None:
        self.detector = detector
        self.max_future_skew_ms = max_future_skew_ms

    def process(self, records: Iterable[Record], partition: int,
                state_of: Callable[[str], SymbolState], now_ms: int) -> BatchOutcome:
        """`records` are (offset, value, the record's timestamp or None). A tick dated further ahead of its
        record's timestamp than the skew allows is dead-lettered before any state sees it; the record's
        timestamp, kept in the log, makes that decision the same on every replay. A record without one is
        compared with `now_ms`."""
        out = BatchOutcome()
        on_tick = self.detector.on_tick
        skew = self.max_future_skew_ms
        for offset, value, written_ms in records:
            written = now_ms if written_ms is None else written_ms
            try:
                tick = check_not_ahead(decode_tick(value), written, skew)
            except InvalidTick as exc:
                out.refuse(exc, value, written, skew, partition, offset)
                continue
            out.valid.append(tick)
            out.latest[tick.key] = tick
            out.touched.add(tick.symbol)
            signals = on_tick(state_of(tick.symbol), tick, now_ms)
            if signals:
                out.signals.extend(signals)
        return out
