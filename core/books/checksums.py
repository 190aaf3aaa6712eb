"""The venues' CRC32 checksums of a book's top levels, over the venue's own text of price and size.

A checksum proves that the book kept from a snapshot and its deltas is the venue's book; one that
disagrees means a delta was lost or misapplied, and the book must be rebuilt from a new snapshot.
Both are computed over the text the venue sent (OrderBook.text), never over floats, which would
lose the trailing zeros Kraken counts and the exact digits OKX joins.
"""
from __future__ import annotations

from itertools import chain, zip_longest
from zlib import crc32

from core.books.book import OrderBook, TextLevel

KRAKEN_LEVELS = 10
OKX_LEVELS = 25


def kraken_checksum_of(bids: list[TextLevel], asks: list[TextLevel]) -> int:
    """Kraken's (v1 and v2): the top 10 asks (lowest first) then the top 10 bids (highest first), each price
    and size with its '.' removed and leading zeros stripped, concatenated; the unsigned CRC32 of that."""
    digits = "".join([price.replace(".", "").lstrip("0") + size.replace(".", "").lstrip("0")  # inline: per frame
                      for price, size in chain(asks[:KRAKEN_LEVELS], bids[:KRAKEN_LEVELS])])
    return crc32(digits.encode("ascii"))


def okx_checksum_of(bids: list[TextLevel], asks: list[TextLevel]) -> int:
    """OKX's: the top 25 levels interleaved as "bidPx:bidSz:askPx:askSz:..." (once one side runs out the other
    goes on alone); the CRC32 of that as a signed 32-bit integer, as OKX sends it."""
    parts: list[str] = []
    for bid, ask in zip_longest(bids[:OKX_LEVELS], asks[:OKX_LEVELS]):
        if bid is not None:
            parts += bid
        if ask is not None:
            parts += ask
    value = crc32(":".join(parts).encode("ascii"))
    return value - (1 << 32) if value >= 1 << 31 else value


def kraken_checksum(book: OrderBook) -> int:
    return kraken_checksum_of(*book.text(KRAKEN_LEVELS))


def okx_checksum(book: OrderBook) -> int:
    return okx_checksum_of(*book.text(OKX_LEVELS))
