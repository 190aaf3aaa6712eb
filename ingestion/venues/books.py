"""The order books a venue parser keeps from snapshots and deltas, each checked against the venue's checksum.

A book that fails its checksum (or the venue's sequence chain) is discarded at once: its frame is
dead-lettered with the reason and Parsed.resync set, so the shared connector reopens the connection
and every subscription starts again from a snapshot. Until then no tick comes from that book.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from core.books.book import DEFAULT_MAX_LEVELS, OrderBook, TextLevel
from ingestion.venues.base import BOOK_UNCHANGED, BadFrame, Parsed, VenueParser, ignored


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
        tick = self.venue.book_tick(symbol, book, ts)
        return Parsed(ticks=[tick]) if tick is not None else ignored(BOOK_UNCHANGED)

    def discard(self, symbol: str, reason: str) -> Parsed:
        self.books.pop(symbol, None)
        self.venue.forget_book(symbol)
        self.discarded += 1
        return Parsed(deadletter=reason, resync=reason)


def text_levels(levels: Any, side: str) -> list[TextLevel]:
    """[price, size, ...] entries (Kraken v1's time and "r" flag, OKX's order counts follow) as (price, size) text."""
    if not isinstance(levels, list):
        raise BadFrame(f"field {side!r} must be a list of levels")
    out = []
    for level in levels:
        price, size = level[0], level[1]
        if not isinstance(price, str) or not isinstance(size, str):
            raise BadFrame(f"a level of {side} must carry price and size as strings")
        out.append((price, size))
    return out
