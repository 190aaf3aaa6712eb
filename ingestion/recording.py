"""The exchange-recordings line format (cryptofeed's raw-data collector), read and written.

    <url> <-> <epoch>            a connection was opened at <epoch>
    <url> <- <epoch>: <json>     a frame the client SENT
    <epoch>: <json>              a frame the client RECEIVED at <epoch>

<epoch> is seconds since 1970 (float). One file can hold several connections; the venue of a received
frame is the one of the latest connection line. A line that fits none of the three forms is reported
as a BadLine (with its number) rather than skipped, so a replay can dead-letter it.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Host fragment -> venue; checked in order, so binance.us is tested before the generic binance host.
VENUE_HOSTS = (
    ("stream.binance.us", "binance_us"),
    ("binance.us", "binance_us"),
    ("stream.binance.com", "binance"),
    ("ws-feed.pro.coinbase.com", "coinbase"),
    ("ws-feed.exchange.coinbase.com", "coinbase"),
    ("ws-feed.coinbase.com", "coinbase"),
    ("ws.kraken.com", "kraken"),
    ("ws.okx.com", "okx"),
    ("api.gemini.com", "gemini"),
)


def venue_for_url(url: str) -> str | None:
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    for fragment, venue in VENUE_HOSTS:
        if host == fragment or host.endswith("." + fragment):
            return venue
    return None


@dataclass(frozen=True, slots=True)
class Connection:
    line: int
    url: str
    epoch: float

    @property
    def venue(self) -> str | None:
        return venue_for_url(self.url)


@dataclass(frozen=True, slots=True)
class Sent:
    line: int
    url: str
    epoch: float
    data: str


@dataclass(frozen=True, slots=True)
class Received:
    line: int
    epoch: float
    data: str
    connection: Connection | None  # None when the file starts without a connection line

    @property
    def received_ms(self) -> int:
        return round(self.epoch * 1000)


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str
    text: str


Entry = Connection | Sent | Received | BadLine


def _epoch(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def parse_line(number: int, text: str, connection: Connection | None) -> Entry | None:
    """One line of a recording; None for a blank line."""
    if not text.strip():
        return None
    head, _, rest = text.partition(" ")
    if head.endswith(":"):
        epoch = _epoch(head[:-1])
        if epoch is not None:
            return Received(number, epoch, rest, connection)
    arrow, _, tail = rest.partition(" ")
    if arrow == "<->" and (epoch := _epoch(tail.strip())) is not None:
        return Connection(number, head, epoch)
    if arrow == "<-":
        stamp, sep, data = tail.partition(": ")
        if sep and (epoch := _epoch(stamp)) is not None:
            return Sent(number, head, epoch, data)
    return BadLine(number, "not a recording line: expected '<url> <-> <epoch>', '<url> <- <epoch>: <frame>' "
                           "or '<epoch>: <frame>'", text)


def read_lines(lines: IO[str]) -> Iterator[Entry]:
    connection = None
    for number, raw in enumerate(lines, start=1):
        entry = parse_line(number, raw.rstrip("\r\n"), connection)
        if isinstance(entry, Connection):
            connection = entry
        if entry is not None:
            yield entry


def read_recording(path: str | Path) -> Iterator[Entry]:
    with open(path, encoding="utf-8", errors="replace") as lines:
        yield from read_lines(lines)


def looks_like_recording(first_line: str) -> bool:
    return isinstance(parse_line(1, first_line.rstrip("\r\n"), None), (Connection, Sent, Received))


def _one_line(frame: str | bytes) -> str:
    """A frame on one line: JSON allows no raw newline inside strings, so they can only be whitespace."""
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    return text.replace("\r", " ").replace("\n", " ")


class RecordingWriter:
    """Appends to a recording in the same format, so live sessions can be replayed later."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")

    def connection(self, url: str, epoch: float) -> None:
        self._file.write(f"{url} <-> {float(epoch)!r}\n")

    def sent(self, url: str, epoch: float, frame: str | bytes) -> None:
        self._file.write(f"{url} <- {float(epoch)!r}: {_one_line(frame)}\n")

    def received(self, epoch: float, frame: str | bytes) -> None:
        self._file.write(f"{float(epoch)!r}: {_one_line(frame)}\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
