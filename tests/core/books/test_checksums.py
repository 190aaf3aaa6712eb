"""The venues' book checksums: their documented examples, and every checksum in the recorded sessions.

The recorded books are rebuilt here with OrderBook alone (no venue parser), so a fault in a parser and
a fault in the checksum cannot hide each other; OKX's future and swap books count too.
"""
from __future__ import annotations

from zlib import crc32

import orjson
import pytest

from core.books.book import OrderBook
from core.books.checksums import kraken_checksum, kraken_checksum_of, okx_checksum, okx_checksum_of
from ingestion.recording import Received, read_recording

# Kraken's WebSocket book-checksum guide: ten asks from 0.05005 and ten bids from 0.05000, each 0.00000500.
DOC_ASKS = [(f"0.0{5005 + 5 * i}", "0.00000500") for i in range(10)]
DOC_BIDS = [(price, "0.00000500") for price in ("0.05000", "0.04995", "0.04990", "0.04980", "0.04975", "0.04970",
                                                 "0.04965", "0.04960", "0.04955", "0.04950")]


def test_kraken_documented_example():
    assert DOC_ASKS[-1][0] == "0.05050"
    assert kraken_checksum_of(DOC_BIDS, DOC_ASKS) == 974947235


def test_kraken_digits_drop_the_point_and_leading_zeros_and_only_ten_levels_count():
    # The guide's level: price "45285.2" -> "452852", qty "0.00100000" -> "100000".
    assert kraken_checksum_of([], [("45285.2", "0.00100000")]) == crc32(b"452852100000")
    deeper = DOC_ASKS + [("0.06000", "1.00000000")]
    assert kraken_checksum_of(DOC_BIDS + [("0.01000", "3.0")], deeper) == 974947235
    # Asks come first: the same levels with the sides swapped give another checksum.
    assert kraken_checksum_of(DOC_ASKS, DOC_BIDS) != 974947235


def test_okx_documented_example_where_the_bids_run_out_first():
    # OKX's guide: "3366.1:7:3366.8:9:3368:8:3372:8".
    bids, asks = [("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
    assert okx_checksum_of(bids, asks) == 831078360
    assert okx_checksum_of(bids, asks) == crc32(b"3366.1:7:3366.8:9:3368:8:3372:8")


def test_okx_interleaves_25_levels_and_reports_a_signed_integer():
    bids = [(f"{100 - i}.5", str(i + 1)) for i in range(30)]
    asks = [(f"{101 + i}.5", str(i + 2)) for i in range(30)]
    text = ":".join(f"{b[0]}:{b[1]}:{a[0]}:{a[1]}" for b, a in zip(bids[:25], asks[:25]))
    unsigned = crc32(text.encode())
    assert okx_checksum_of(bids, asks) == (unsigned - 2**32 if unsigned >= 2**31 else unsigned)
    assert all(-(2**31) <= okx_checksum_of(bids[:n], asks) < 2**31 for n in range(30))
    assert okx_checksum_of(bids[:3], asks[:1]) % 2**32 == crc32(b"100.5:1:101.5:2:99.5:2:98.5:3")


def kraken_recorded(recordings):
    """(checksum sent, checksum of the book built so far) for every Kraken v1 update in KRAKEN.ws.50.0."""
    books: dict[str, OrderBook] = {}
    for entry in read_recording(recordings / "KRAKEN.ws.50.0"):
        message = orjson.loads(entry.data) if isinstance(entry, Received) else None
        if not isinstance(message, list):
            continue
        pair, parts = message[-1], message[1:-2]
        if "as" in parts[0]:
            books[pair] = OrderBook(int(message[-2].removeprefix("book-")))
            books[pair].snapshot([level[:2] for level in parts[0]["bs"]], [level[:2] for level in parts[0]["as"]])
            continue
        for part in parts:
            for price, size, *_ in part.get("a", []):
                books[pair].set_ask(price, size)
            for price, size, *_ in part.get("b", []):
                books[pair].set_bid(price, size)
        yield int(parts[-1]["c"]), kraken_checksum(books[pair])


def okx_recorded(recordings):
    books: dict[str, OrderBook] = {}
    for entry in read_recording(recordings / "OKX.ws.1.0"):
        message = orjson.loads(entry.data) if isinstance(entry, Received) else {}
        if message.get("arg", {}).get("channel") != "books" or "data" not in message:
            continue
        instrument, data = message["arg"]["instId"], message["data"][0]
        if message["action"] == "snapshot":
            books[instrument] = OrderBook(400)
        book = books[instrument]
        for price, size, *_ in data["bids"]:
            book.set_bid(price, size)
        for price, size, *_ in data["asks"]:
            book.set_ask(price, size)
        yield data["checksum"], okx_checksum(book)


@pytest.mark.parametrize("recorded,count", [(kraken_recorded, 4269), (okx_recorded, 290)])
def test_every_recorded_checksum_matches_the_book_built_from_the_frames(recordings, recorded, count):
    pairs = list(recorded(recordings))
    assert len(pairs) == count
    assert [sent for sent, computed in pairs if sent != computed] == []


def test_a_changed_size_in_the_top_levels_changes_both_checksums():
    book = OrderBook()
    book.snapshot(DOC_BIDS, DOC_ASKS)
    before = kraken_checksum(book), okx_checksum(book)
    book.set_bid("0.04950", "0.00000501")
    assert kraken_checksum(book) != before[0] and okx_checksum(book) != before[1]
