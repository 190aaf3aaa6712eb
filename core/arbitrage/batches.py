"""Turns a batch of raw Kafka records into detector outputs: the job's per-batch core, without I/O.

The job reads a partition in batches (one Flink element per batch, not per tick: PyFlink's
per-record cost would otherwise cap throughput). Within a batch, ticks are applied in offset
order, so the outputs depend only on the records, never on where batch boundaries fall.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from core.contracts.signal import Signal
from core.contracts.tick import InvalidTick, Tick, check_not_ahead, decode_tick, iso_ms, watermark_in


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
class BatchOutcome:
    signals: list[Signal] = field(default_factory=list)
    latest: dict[str, Tick] = field(default_factory=dict)  # newest tick per venue:symbol in this batch
    deadletters: list[DeadLetter] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # symbols whose detector state changed
    valid: list[Tick] = field(default_factory=list)  # in offset order, for the detectors downstream
    # producers' watermark records: (how many valid ticks came before it, its promised event time)
    watermarks: list[tuple[int, int]] = field(default_factory=list)


class TickBatchProcessor:
    def __init__(self, detector: CrossExchangeDetector, max_future_skew_ms: int) -> None:
        self.detector = detector
        self.max_future_skew_ms = max_future_skew_ms

    def process(self, records: Iterable[tuple[int, bytes | None, int | None]], partition: int,
                state_of: Callable[[str], SymbolState], now_ms: int) -> BatchOutcome:
        """`records` are (offset, value, the record's timestamp or None). A tick dated further ahead of its
        record's timestamp than the skew allows is dead-lettered before any state sees it; the record's
        timestamp, kept in the log, makes that decision the same on every replay. A record without one is
        compared with `now_ms`."""
        out = BatchOutcome()
        on_tick = self.detector.on_tick
        skew = self.max_future_skew_ms
        for offset, value, written_ms in records:
            try:
                tick = check_not_ahead(decode_tick(value), now_ms if written_ms is None else written_ms, skew)
            except InvalidTick as exc:
                promised = watermark_in(value)
                reference = now_ms if written_ms is None else written_ms
                if promised is None:
                    out.deadletters.append(DeadLetter(str(exc), value, partition, offset))
                elif promised - reference > skew:  # it would hold every later tick back until that date
                    out.deadletters.append(DeadLetter(
                        f"watermark record {iso_ms(promised)} is {promised - reference} ms after the record was "
                        f"written ({iso_ms(reference)}): more than the {skew} ms allowed (job.max_future_skew_ms)",
                        value, partition, offset))
                else:
                    out.watermarks.append((len(out.valid), promised))
                continue
            out.valid.append(tick)
            out.latest[tick.key] = tick
            out.touched.add(tick.symbol)
            signals = on_tick(state_of(tick.symbol), tick, now_ms)
            if signals:
                out.signals.extend(signals)
        return out
