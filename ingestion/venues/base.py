"""The one interface a venue implements, VenueParser: parse a frame into ticks and trades.

Everything else (connecting, subscribing, retries, watchdog, Kafka production) is shared code that
only needs the data a venue declares here. Every frame ends in exactly one of three places: ticks
and/or trades, an ignore with a documented reason (subscription acks, heartbeats, channels we do
not use), or a dead letter with the reason. Nothing is dropped without a trace.

VenueParser also holds what every venue shares: the size limit, JSON decoding, symbol tables, and
turning whatever a venue raises for a bad frame into Parsed(deadletter=reason), so no frame can
ever raise out of `parse` and stop a connector.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from core.books.book import OrderBook
from core.contracts.tick import InvalidTick, Levels, Tick, epoch_ms, parse_symbol
from core.contracts.trade import Trade


@dataclass(slots=True)
class Parsed:
    """What one frame became. Exactly one of: some ticks/trades, `ignored`, or `deadletter`."""

    ticks: list[Tick] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    ignored: str | None = None  # documented reason, e.g. "subscription ack"
    deadletter: str | None = None  # reason the frame is bad
    sequence: tuple[str, int] | None = None  # (stream, sequence number) where the venue gives one
    # Why the parser discarded an order book it can no longer trust (a checksum mismatch, a sequence gap):
    # the connection is then opened afresh, so every subscription starts again from a snapshot.
    resync: str | None = None
    # The symbol whose book waits for a REST snapshot (Binance's depth diffs): the connector fetches
    # `snapshot_url(symbol)` and hands the answer to `rest_snapshot`. A replay cannot, so its diffs keep waiting.
    snapshot: str | None = None


DEFAULT_MAX_FRAME_BYTES = 64 * 1024
DEFAULT_BOOK_LEVELS = 10  # levels of each side a tick carries from a venue's book (docs/ticks.md)
BOOK_UNCHANGED = "book: the change is below the top levels ticks carry"


class BadFrame(ValueError):
    """A frame the venue parser rejects; the message is the dead-letter reason."""


def ignored(reason: str) -> Parsed:
    return Parsed(ignored=reason)


def iso_ms(text: Any, field: str) -> int:
    """Epoch ms of an ISO-8601 time such as Coinbase's "2021-04-17T16:43:30.244075Z" (UTC when no zone)."""
    if not isinstance(text, str):
        raise BadFrame(f"field {field!r} must be an ISO-8601 time string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFrame(f"field {field!r} is not an ISO-8601 time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return epoch_ms(round(moment.timestamp() * 1000), field)


class VenueParser:
    """Base of the venue classes: `symbols=None` accepts every symbol the venue's naming rules can map.

    With a symbol list (normalized "BASE/QUOTE"), a frame for any other symbol is dead-lettered as
    "unknown symbol": a connector only ever publishes what it was configured for.
    """

    name: str

    def __init__(self, symbols: Iterable[str] | None, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        if book_levels < 1:
            raise ValueError(f"book_levels must be at least 1, got {book_levels}")
        self.symbols = None if symbols is None else [parse_symbol(s) for s in symbols]
        self.max_frame_bytes = max_frame_bytes
        self.book_levels = book_levels
        self._emitted_tops: dict[str, tuple[Levels, Levels]] = {}
        self._by_native: dict[str, str] = {}
        for symbol in self.symbols or ():
            for native in self.native_names(symbol):
                self._by_native[native] = symbol

    # --- what a venue provides -------------------------------------------------------------
    def native_names(self, symbol: str) -> Iterable[str]:
        """Every name the venue uses on the wire for a normalized symbol."""
        raise NotImplementedError

    def normalize_native(self, native: str) -> str | None:
        """The normalized symbol for a wire name by the venue's naming rules, or None if they cannot tell."""
        raise NotImplementedError

    def stream_url(self, symbols: list[str]) -> str:
        """The WebSocket URL to connect to for these (normalized) symbols."""
        raise NotImplementedError

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        """What to send once connected, in order."""
        raise NotImplementedError

    def snapshot_url(self, symbol: str) -> str:
        """Where the REST snapshot of `symbol`'s book is, for a venue whose frames ask for one (Parsed.snapshot)."""
        raise NotImplementedError

    def rest_snapshot(self, symbol: str, snapshot: Any, ts: int) -> Parsed:
        """Start `symbol`'s book from the decoded REST snapshot fetched at `ts`, as `parse_message` would a frame."""
        raise NotImplementedError

    def parse_message(self, message: Any, received_ms: int) -> Parsed:
        """One decoded frame -> ticks/trades, an ignore with its reason, or a dead letter. Raising
        BadFrame, InvalidTick or a lookup/type error is the same as a dead letter naming it."""
        raise NotImplementedError

    def decode(self, frame: str | bytes) -> Any:
        """The frame's JSON; a venue whose checksums need numbers' exact text decodes those frames otherwise."""
        return orjson.loads(frame)

    # --- shared ----------------------------------------------------------------------------
    def symbol(self, native: Any) -> str:
        symbol = self._by_native.get(native) if isinstance(native, str) else None
        if symbol is not None:
            return symbol
        if not isinstance(native, str):
            raise BadFrame(f"symbol must be a string, got {type(native).__name__}")
        if self.symbols is None:
            symbol = self.normalize_native(native)
            if symbol is not None:
                return symbol
        raise BadFrame(f"unknown symbol {native[:40]!r}")

    def book_tick(self, symbol: str, book: OrderBook, ts: int) -> Tick | None:
        """The tick of `symbol`'s book with its top `book_levels` levels, or None when those are what the last
        one carried (a change deeper in the book). Only for a book that can vouch for them: books.emit checks
        OrderBook.complete first, to say so when it cannot."""
        bids, asks = book.top(self.book_levels)
        if self._emitted_tops.get(symbol) == (bids, asks):
            return None
        self._emitted_tops[symbol] = (bids, asks)
        return Tick(self.name, symbol, bids[0][0], asks[0][0], bids[0][1], asks[0][1], epoch_ms(ts), bids, asks)

    def forget_book(self, symbol: str) -> None:
        """After a book is discarded, its next tick is emitted whatever it holds."""
        self._emitted_tops.pop(symbol, None)

    def parse(self, frame: str | bytes, received_ms: int) -> Parsed:
        size = len(frame)
        if isinstance(frame, str) and size * 4 > self.max_frame_bytes:
            size = len(frame.encode("utf-8", "replace"))  # only long text can exceed the byte limit
        if size > self.max_frame_bytes:
            return Parsed(deadletter=f"oversized frame: {size} bytes > {self.max_frame_bytes}")
        try:
            message = self.decode(frame)
        except ValueError as exc:  # orjson's and json's decode errors, and bad UTF-8, are ValueErrors
            return Parsed(deadletter=f"not JSON: {exc}")
        try:
            return self.parse_message(message, received_ms)
        except (BadFrame, InvalidTick) as exc:
            return Parsed(deadletter=str(exc))
        except KeyError as exc:
            return Parsed(deadletter=f"missing field {exc.args[0]!r}")
        except (TypeError, IndexError, AttributeError, ValueError, OverflowError) as exc:
            return Parsed(deadletter=f"malformed frame: {type(exc).__name__}: {exc}")


def split_by_quote(native: str, quotes: Iterable[str]) -> str | None:
    """A venue name with no separator ("LINKETH") as BASE/QUOTE by the first of `quotes` (longest first, so
    "USDT" wins over "USD") that ends it; None when none does."""
    native = native.upper()
    for quote in quotes:
        if native.endswith(quote) and len(native) > len(quote):
            base = native[: -len(quote)]
            return f"{base}/{quote}" if base.isalnum() else None
    return None


def expect_dict(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadFrame(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
