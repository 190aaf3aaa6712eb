"""The order books venue parsers keep from snapshots and deltas, shared by every venue that sends a book.

A frame that breaks a book (a bad level, a checksum mismatch, a break in the venue's sequence chain) discards
it at once: the frame is dead-lettered with the reason and Parsed.resync set, so the shared connector reopens
the connection and every subscription starts again from a snapshot. Until then no tick comes from that book.
Coinbase, Gemini and Binance send [price, size] levels (load_levels, apply_changes); Kraken and OKX also send a
checksum of the book (VerifiedBooks).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from core.books.book import DEFAULT_MAX_LEVELS, OrderBook, TextLevel
from core.contracts.tick import InvalidTick
from ingestion.venues.base import BOOK_UNCHANGED, BadFrame, Parsed, VenueParser

BOOK_INCOMPLETE = "book: a side is empty, crossed or truncated, no tick until it is whole"
UPDATE_BEFORE_SNAPSHOT = "book: update before its snapshot"
CHANGE_SIDES = {"buy": OrderBook.set_bid, "sell": OrderBook.set_ask}  # Coinbase's and Gemini's change sides


def _levels(value: Any, field: str) -> list:
    if not isinstance(value, list):
        raise BadFrame(f"field {field!r} must be a list of [price, size] levels, got {type(value).__name__}")
    return value


def _set(setter, book: OrderBook, price: Any, size: Any, where: str) -> None:
    if type(price) is not str or type(size) is not str:
        raise BadFrame(f"{where}: price and size must be strings, got {str(price)[:20]!r}, {str(size)[:20]!r}")
    try:
        setter(book, price, size)
    except ValueError as exc:
        raise BadFrame(f"{where}: {exc}") from None


def text_levels(levels: Any, field: str) -> list[TextLevel]:
    """[price, size, ...] levels (Kraken v1's time and "r" flag, OKX's order counts may follow) as the venue's
    (price, size) text; BadFrame names the level."""
    out = []
    for index, level in enumerate(_levels(levels, field)):
        if not isinstance(level, list) or len(level) < 2:
            raise BadFrame(f"field '{field}[{index}]' must be a [price, size] level")
        price, size = level[0], level[1]
        if type(price) is not str or type(size) is not str:
            raise BadFrame(f"field '{field}[{index}]': price and size must be strings, got {str(price)[:20]!r}, "
                           f"{str(size)[:20]!r}")
        out.append((price, size))
    return out


def load_levels(book: OrderBook, bids: Any, asks: Any, names: tuple[str, str] = ("bids", "asks")) -> None:
    """Apply [price, size] levels of both sides; size "0" deletes the level."""
    for field, levels, setter in ((names[0], bids, OrderBook.set_bid), (names[1], asks, OrderBook.set_ask)):
        for index, (price, size) in enumerate(text_levels(levels, field)):
            _set(setter, book, price, size, f"field '{field}[{index}]'")


def apply_changes(book: OrderBook, changes: Any) -> None:
    """Apply [side, price, size] changes, side "buy" (bid) or "sell" (ask)."""
    for index, change in enumerate(_levels(changes, "changes")):
        if not isinstance(change, list) or len(change) != 3:
            raise BadFrame(f"field 'changes[{index}]' must be a [side, price, size] change")
        setter = CHANGE_SIDES.get(change[0]) if isinstance(change[0], str) else None
        if setter is None:
            raise BadFrame(f"field 'changes[{index}]' side must be 'buy' or 'sell', got {str(change[0])[:20]!r}")
        _set(setter, book, change[1], change[2], f"field 'changes[{index}]'")


BOOK_ERRORS = (BadFrame, InvalidTick, KeyError)  # what a bad book frame raises (KeyError: a missing field)


def discard(venue: VenueParser, books: dict[str, OrderBook], symbol: str, what: str, error: Exception) -> Parsed:
    """The frame that broke `symbol`'s book (some of it may be applied, or the book missed it): dead-lettered,
    the book dropped, and a resync asked for so that every book starts again from a snapshot."""
    detail = f"missing field {error.args[0]!r}" if isinstance(error, KeyError) else str(error)
    return dropped(venue, books, symbol, f"book: bad {what}: {detail}")


def dropped(venue: VenueParser, books: dict[str, OrderBook], symbol: str, reason: str) -> Parsed:
    books.pop(symbol, None)
    venue.forget_book(symbol)
    return Parsed(deadletter=reason, resync=reason)


def emit(venue: VenueParser, symbol: str, book: OrderBook, ts: int) -> Parsed:
    """The book's tick, or the frame ignored saying why there is none: the book cannot vouch for its top
    levels yet (OrderBook.complete), or they did not change."""
    if not book.complete(venue.book_levels):
        return Parsed(ignored=BOOK_INCOMPLETE)
    tick = venue.book_tick(symbol, book, ts)
    return Parsed(ticks=[tick]) if tick is not None else Parsed(ignored=BOOK_UNCHANGED)



class VerifiedBooks:
    """One venue's books by symbol, with counts a test or an operator can read."""

    def __init__(self, venue: VenueParser, checksum: Callable[[OrderBook], int], checksum_name: str) -> None:
        self.venue = venue
        self.checksum = checksum
        self.checksum_name = checksum_name
        self.books: dict[str, OrderBook] = {}
        self.built = 0  # books started from a snapshot
        self.verified = 0  # checksums that matched
        self.discarded = 0  # books thrown away, each with a resync

    def snapshot(self, symbol: str, bids: Iterable[TextLevel], asks: Iterable[TextLevel],
                 max_levels: int = DEFAULT_MAX_LEVELS) -> OrderBook:
        book = OrderBook(max_levels)
        book.snapshot(bids, asks)
        self.books[symbol] = book
        self.venue.forget_book(symbol)
        self.built += 1
        return book

    def get(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            raise BadFrame(f"book update for {symbol} before its snapshot")
        return book

    def checked(self, symbol: str, book: OrderBook, expected: int | None, ts: int) -> Parsed:
        """The book's tick after a frame, once its checksum matches `expected` (None: the frame has none)."""
        if expected is not None:
            actual = self.checksum(book)
            if actual != expected:
                return self.discard(symbol, f"checksum mismatch on the {symbol} book: {self.venue.name} sent "
                                            f"{self.checksum_name} {expected}, the book gives {actual}")
            self.verified += 1
        return emit(self.venue, symbol, book, ts)

    def discard(self, symbol: str, reason: str) -> Parsed:
        self.discarded += 1
        return dropped(self.venue, self.books, symbol, reason)

