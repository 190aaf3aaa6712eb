"""Replay a file into Kafka: JSONL of normalized ticks and trades, or an exchange recording parsed by its venue's
parser.

The core (`replay_items`) turns a file into timed items with no I/O beyond reading it; the shell
(`replay`) paces them and hands them to the shared producer. Nothing in the file is dropped silently:
every line ends as ticks/trades, an ignore with its reason, or a dead letter naming file:line.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, TextIO

from core.clock import now_ms
from core.contracts.tick import InvalidTick, Tick, decode_json, tick_from_dict
from core.contracts.trade import Trade, trade_from_dict
from core.progress import ProgressLine
from ingestion.producer import TickProducer
from ingestion.recording import BadLine, Connection, Received, looks_like_recording, read_lines
from ingestion.venues import VENUES, get_venue
from ingestion.venues.base import VenueParser

JSONL_VENUE = "replay"  # the dead-letter venue of a bad JSONL line: it came from a file, not a connection


class DeadLetter(NamedTuple):
    venue: str
    reason: str
    frame: str
    source: str  # file:line
    received_ms: int | None  # when the venue sent it; None for file lines (replay time is used)


@dataclass(slots=True)
class Item:
    """What one line of the file became, at its time (tick or receive time, epoch ms)."""

    time_ms: int | None
    offset: int  # bytes of the file read so far, for the progress percentage
    ticks: list[Tick] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    ignored: str | None = None
    deadletter: DeadLetter | None = None


def file_format(path: Path) -> str:
    """"recording" or "jsonl", from the first non-blank line."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip():
                return "recording" if looks_like_recording(line) else "jsonl"
    return "jsonl"


class _CountingLines:
    """Iterates the lines of a text file and remembers how many bytes were read so far."""

    def __init__(self, binary) -> None:
        self._binary = binary
        self.offset = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self._binary:
            self.offset += len(raw)
            yield raw.decode("utf-8", "replace")


def jsonl_items(path: Path, lines: _CountingLines) -> Iterator[Item]:
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            yield Item(None, lines.offset, ignored="blank line")
            continue
        try:
            line_item = jsonl_item(decode_json(text), lines.offset)
        except InvalidTick as exc:
            yield Item(None, lines.offset, deadletter=DeadLetter(JSONL_VENUE, str(exc), text, f"{path}:{number}", None))
        else:
            yield line_item


def jsonl_item(obj: object, offset: int) -> Item:
    """A line with a `price` is a trade, as the `trades` topic holds it; any other a tick (docs/ticks.md)."""
    if isinstance(obj, dict) and "price" in obj:
        trade = trade_from_dict(obj)
        return Item(trade.ts, offset, trades=[trade])
    tick = tick_from_dict(obj)
    return Item(tick.ts, offset, ticks=[tick])


def recording_items(path: Path, lines: _CountingLines) -> Iterator[Item]:
    parsers: dict[str, VenueParser] = {}  # one per venue
    parser_of: dict[Connection, VenueParser] = {}  # so a received frame does not look its venue up again
    for entry in read_lines(lines):
        if isinstance(entry, Connection):
            venue = entry.venue
            if venue is None:
                raise ValueError(f"{path}:{entry.line}: no parser for the venue of {entry.url} "
                                 f"(known venues: {', '.join(sorted(VENUES))})")
            if venue not in parsers:
                parsers[venue] = get_venue(venue, any_symbol=True)
            parser_of[entry] = parsers[venue]
        elif isinstance(entry, Received):
            if entry.connection is None:
                yield Item(entry.received_ms, lines.offset, deadletter=DeadLetter(
                    JSONL_VENUE, "received frame before any connection line: venue unknown", entry.data,
                    f"{path}:{entry.line}", entry.received_ms))
                continue
            parser = parser_of[entry.connection]
            venue = parser.name
            parsed = parser.parse(entry.data, entry.received_ms)
            deadletter = None if parsed.deadletter is None else DeadLetter(
                venue, parsed.deadletter, entry.data, f"{path}:{entry.line}", entry.received_ms)
            yield Item(entry.received_ms, lines.offset, parsed.ticks, parsed.trades, parsed.ignored, deadletter)
        elif isinstance(entry, BadLine):
            yield Item(None, lines.offset, deadletter=DeadLetter(JSONL_VENUE, entry.reason, entry.text,
                                                                 f"{path}:{entry.line}", None))
        # Sent frames are our own subscribe requests: nothing to publish.


def replay_items(path: str | Path) -> Iterator[Item]:
    path = Path(path)
    with open(path, "rb") as binary:
        lines = _CountingLines(binary)
        items = recording_items if file_format(path) == "recording" else jsonl_items
        yield from items(path, lines)


def retimed(items: Iterable[Item], start_ms: int, speed: float) -> Iterator[Item]:
    """The items with their ticks and trades dated as the replay sends them: the first item's time becomes
    `start_ms` and every later time keeps its distance from it, divided by the speed the pacing uses. An old
    recording so looks live (prices, analytics gaps) instead of years old."""
    if speed <= 0:
        raise ValueError(f"retiming needs a speed > 0, got {speed}")
    def moved(ts: int, first: int) -> int:
        return start_ms + round((ts - first) / speed)

    first: int | None = None
    for item in items:
        if first is None:
            first = item.time_ms
        if first is not None and (item.ticks or item.trades):
            item.ticks = [tick._replace(ts=moved(tick.ts, first)) for tick in item.ticks]
            item.trades = [replace(trade, ts=moved(trade.ts, first)) for trade in item.trades]
        yield item


@dataclass
class Summary:
    lines: int = 0  # lines of the file that became items (blank recording lines and sent frames excluded)
    ticks: int = 0
    trades: int = 0
    ignored: int = 0
    deadletters: int = 0
    seconds: float = 0.0
    undelivered: int = 0  # still buffered when the final flush gave up (broker away)

    def line(self, path: Path) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        return (f"replayed {path}: {self.ticks} ticks, {self.trades} trades, {self.ignored} ignored, "
                f"{self.deadletters} deadletters in {self.seconds:.2f} s ({rate:,.0f} lines/s)")


class Pacer:
    """Sleeps so that item times advance `speed` times faster than wall time; speed None = no pacing."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._start: tuple[int, float] | None = None

    def wait(self, time_ms: int | None) -> None:
        if self.speed is None or time_ms is None:
            return
        if self._start is None:
            self._start = (time_ms, time.monotonic())
            return
        first_ms, first_wall = self._start
        delay = first_wall + (time_ms - first_ms) / 1000 / self.speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def replay(path: str | Path, producer: TickProducer, speed: float | None = 1.0, stream: TextIO = sys.stderr,
           retime: bool = False) -> Summary:
    """With `retime`, ticks and trades are dated from now on (see retimed); that needs pacing: unpaced, a
    file's later ticks would be dated ahead of the clock, and the job dead-letters ticks too far ahead."""
    path = Path(path)
    if retime and speed is None:
        raise ValueError("retiming needs a paced replay (a speed): unpaced, later ticks would be dated in the future")
    summary, pacer = Summary(), Pacer(speed)
    progress, size = ProgressLine("lines", stream), max(os.path.getsize(path), 1)
    start = time.monotonic()
    items = replay_items(path)
    if retime and speed is not None:
        items = retimed(items, now_ms(), speed)
    for item in items:
        pacer.wait(item.time_ms)
        for tick in item.ticks:
            producer.tick(tick)
        for trade in item.trades:
            producer.trade(trade)
        dead = item.deadletter
        if dead is not None:
            received_ms = dead.received_ms if dead.received_ms is not None else now_ms()
            producer.deadletter(dead.venue, dead.reason, dead.frame, received_ms, dead.source)
            summary.deadletters += 1
        summary.lines += 1
        summary.ignored += item.ignored is not None
        summary.ticks += len(item.ticks)
        summary.trades += len(item.trades)
        progress.update(summary.lines, item.offset / size)
    summary.undelivered = producer.flush()
    progress.done()
    summary.seconds = time.monotonic() - start
    return summary
