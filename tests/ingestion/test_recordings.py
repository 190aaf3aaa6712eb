"""Every real recorded frame of Binance, Binance.US, Coinbase, Gemini, Kraken and OKX ends somewhere, with stated
counts.

The expected numbers were counted once with a plain json loop independent of the parsers (bookTicker
streams, Coinbase ticker/match/last_match types, Kraken v1 ticker arrays and the trades inside trade
arrays; frames over 64 KiB counted as oversized) and are written here, not computed.

The book numbers were counted the same way: plain dicts of price text -> size text, deltas applied (Kraken v1
book-1000 and OKX books truncated to the depth after each frame, their checksums recomputed with zlib in the
loop), and a tick counted when the top 10 levels of a book with both sides, not crossed, changed.
"""
from __future__ import annotations

from collections import Counter

import orjson
import pytest

from core.contracts.tick import tick_from_dict
from ingestion.recording import BadLine, Connection, Received, RecordingWriter, Sent, read_recording, venue_for_url
from ingestion.venues import get_venue
from ingestion.venues.base import BOOK_UNCHANGED

DEPTH = "book: diffs waiting for a REST snapshot"  # no REST snapshot in a recording: nothing to build a book from
KLINE = "kline: candles are not used"
KRAKEN_ACKS = {"system status": 1, "subscription ack": 10}

# file: (venue, received frames, ticks, trades, {ignore reason: frames}, {dead-letter reason: frames})
EXPECTED = {
    "BINANCE.ws.1.0": ("binance", 265, 84, 2, {DEPTH: 177, KLINE: 2}, {}),
    "BINANCE_US.ws.1.0": ("binance_us", 480, 128, 11, {DEPTH: 336, KLINE: 5}, {}),
    # 107 ticker ticks and 6648 book ticks; the other 3081 l2updates changed nothing in the top 10 levels.
    "COINBASE.ws.28.0": ("coinbase", 9946, 107 + 6648, 107, {"subscription ack": 3, BOOK_UNCHANGED: 3081}, {}),
    # 10 full books (each with the symbol's 50 latest trades) and 645 deltas; 16 trade events.
    "GEMINI.ws.1.0": ("gemini", 678, 613, 10 * 50 + 16, {"heartbeat": 7, BOOK_UNCHANGED: 42}, {}),
    "KRAKEN.ws.48.0": ("kraken", 49, 0, 10, {**KRAKEN_ACKS, "heartbeat": 30}, {}),
    "KRAKEN.ws.49.0": ("kraken", 60, 18, 0, {**KRAKEN_ACKS, "heartbeat": 31}, {}),
    # Book ticks: 10 snapshots and 4269 updates, of which 927 changed nothing in the top 10 levels.
    "KRAKEN.ws.50.0": ("kraken", 4321, 3352, 0, {**KRAKEN_ACKS, "heartbeat": 31, BOOK_UNCHANGED: 927}, {}),
    # BTC-USDT: 25 tickers + 94 book ticks (98 book frames, 4 unchanged), 69 trades. The future and the
    # swap are no spot pairs: 2+4+99 and 1+1+93 ticker, trade and book frames.
    "OKX.ws.1.0": ("okx", 410, 119, 69, {"subscription ack": 18, BOOK_UNCHANGED: 4},
                   {"unknown symbol 'BTC-USD-220527'": 105, "unknown symbol 'UNI-USD-SWAP'": 95}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_received_frame_is_accounted_for(recordings, name):
    venue_name, frames, tick_count, trade_count, ignored, dead = EXPECTED[name]
    entries = list(read_recording(recordings / name))
    assert not [e for e in entries if isinstance(e, BadLine)]
    (connection,) = [e for e in entries if isinstance(e, Connection)]
    assert connection.venue == venue_name
    venue = get_venue(venue_name, any_symbol=True)
    ticks, trades, ignores, deadletters, sequences, data_frames = [], [], Counter(), Counter(), {}, 0
    received = [e for e in entries if isinstance(e, Received)]
    for entry in received:
        parsed = venue.parse(entry.data, entry.received_ms)
        outcomes = [bool(parsed.ticks or parsed.trades), parsed.ignored is not None, parsed.deadletter is not None]
        assert outcomes.count(True) == 1, (entry.line, parsed)
        data_frames += outcomes[0]
        ticks += parsed.ticks
        trades += parsed.trades
        ignores[parsed.ignored] += parsed.ignored is not None
        deadletters[parsed.deadletter] += parsed.deadletter is not None
        if parsed.sequence:
            stream, number = parsed.sequence
            assert number >= sequences.get(stream, number), f"sequence went back at line {entry.line}"
            sequences[stream] = number
    assert len(received) == frames
    assert (len(ticks), len(trades)) == (tick_count, trade_count)
    assert +ignores == ignored and +deadletters == dead
    assert data_frames + sum(ignored.values()) + sum(dead.values()) == frames
    for tick in ticks:
        assert tick.venue == venue_name
        assert tick_from_dict(orjson.loads(orjson.dumps(tick.to_json_dict()))) == tick
    for trade in trades:
        assert trade.price > 0 and trade.size >= 0 and trade.side in ("buy", "sell")


# --- Order books (Coinbase level2, Gemini l2, Binance depth) -------------------------------------------------

# file: (books built, book ticks, resyncs), counted independently (see the docstring). A book counts as built
# when its symbol emits book ticks; Binance's diffs wait for a REST snapshot no recording holds.
BOOKS = {
    "BINANCE.ws.1.0": (0, 0, 0),
    "BINANCE_US.ws.1.0": (0, 0, 0),
    "COINBASE.ws.28.0": (10, 6648, 0),
    "GEMINI.ws.1.0": (10, 613, 0),
}
GEMINI_SYMBOLS = {"ALCX/USD", "ANKR/USD", "BAT/BTC", "BTC/GBP", "ETH/EUR", "FIL/USD", "GRT/USD", "LINK/ETH",
                  "LTC/ETH", "ZEC/LTC"}


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_books_built_from_recordings_never_cross_and_start_at_the_quote(recordings, name):
    entries = list(read_recording(recordings / name))
    venue = get_venue(entries[0].venue, any_symbol=True)
    book_ticks, resyncs = [], 0
    for entry in entries:
        if isinstance(entry, Received):
            parsed = venue.parse(entry.data, entry.received_ms)
            book_ticks += [tick for tick in parsed.ticks if tick.bids is not None]
            resyncs += parsed.resync is not None
    assert (len({tick.symbol for tick in book_ticks}), len(book_ticks), resyncs) == BOOKS[name]
    for tick in book_ticks:
        assert tick.bid < tick.ask, tick
        assert tick.bids[0] == (tick.bid, tick.bid_size) and tick.asks[0] == (tick.ask, tick.ask_size), tick
        assert 1 <= len(tick.bids) <= venue.book_levels and 1 <= len(tick.asks) <= venue.book_levels
        assert [p for p, _ in tick.bids] == sorted({p for p, _ in tick.bids}, reverse=True)
        assert [p for p, _ in tick.asks] == sorted({p for p, _ in tick.asks})
    if name == "GEMINI.ws.1.0":
        assert {tick.symbol for tick in book_ticks} == GEMINI_SYMBOLS


def test_gemini_url_is_gemini():
    assert venue_for_url("wss://api.gemini.com/v2/marketdata/") == "gemini"


# --- end of order books ----------------------------------------------------------------------------------------


def test_recorded_symbols_are_normalized(recordings):
    symbols = {name: set() for name in ("BINANCE.ws.1.0", "COINBASE.ws.28.0", "KRAKEN.ws.49.0")}
    for name, found in symbols.items():
        entries = list(read_recording(recordings / name))
        venue = get_venue(entries[0].venue, any_symbol=True)
        for entry in entries:
            if isinstance(entry, Received):
                found.update(t.symbol for t in venue.parse(entry.data, entry.received_ms).ticks)
    assert symbols["BINANCE.ws.1.0"] == {"NKN/USDT", "BLZ/ETH", "LRC/BTC"}  # RUNEEUR only sent depth frames
    assert symbols["COINBASE.ws.28.0"] == {"BAND/BTC", "BAND/GBP", "CRV/EUR", "DASH/BTC", "NMR/EUR", "NU/GBP",
                                           "SKL/BTC", "SKL/GBP", "SKL/USD", "YFI/BTC"}
    assert symbols["KRAKEN.ws.49.0"] == {"ADA/BTC", "BTC/CHF", "ETH/CHF", "GRT/ETH", "KSM/BTC", "OCEAN/BTC",
                                         "OMG/USD", "SC/EUR", "WAVES/EUR", "XMR/USD"}  # BTC/CHF came as XBT/CHF


@pytest.mark.parametrize("url,venue", [
    ("wss://stream.binance.com:9443/stream?streams=btcusdt@bookTicker", "binance"),
    ("wss://stream.binance.us:9443/stream?streams=btcusdt@bookTicker", "binance_us"),
    ("wss://ws-feed.pro.coinbase.com", "coinbase"),
    ("wss://ws-feed.exchange.coinbase.com", "coinbase"),
    ("wss://ws.kraken.com", "kraken"),
    ("wss://ws.kraken.com/v2", "kraken"),
    ("wss://ws.okx.com:8443/ws/v5/public", "okx"),
    ("wss://evil.example/ws.kraken.com", None),
])
def test_venue_from_url(url, venue):
    assert venue_for_url(url) == venue


def test_writer_output_reads_back_the_same(tmp_path):
    path = tmp_path / "session.ws"
    url = "wss://ws.kraken.com/v2"
    with RecordingWriter(path) as writer:
        writer.connection(url, 1700000000.25)
        writer.sent(url, 1700000000.5, '{"method":"subscribe"}')
        writer.received(1700000001.125, b'{"channel":"heartbeat"}')
        writer.received(1700000002.0, '{"a":\n 1}')  # pretty-printed JSON stays one line
        writer.connection("wss://ws-feed.exchange.coinbase.com", 1700000003.0)
        writer.received(1700000004.0, '{"type":"heartbeat"}')
    entries = list(read_recording(path))
    first, second = entries[0], entries[4]
    assert entries == [
        Connection(1, url, 1700000000.25),
        Sent(2, url, 1700000000.5, '{"method":"subscribe"}'),
        Received(3, 1700000001.125, '{"channel":"heartbeat"}', first),
        Received(4, 1700000002.0, '{"a":  1}', first),
        Connection(5, "wss://ws-feed.exchange.coinbase.com", 1700000003.0),
        Received(6, 1700000004.0, '{"type":"heartbeat"}', second),
    ]
    assert [e.connection.venue for e in entries if isinstance(e, Received)] == ["kraken", "kraken", "coinbase"]
    assert entries[2].received_ms == 1700000001125


def test_lines_that_fit_no_form_are_reported_with_their_number(tmp_path):
    path = tmp_path / "broken.ws"
    path.write_text("wss://ws.kraken.com <-> 1700000000.0\n\ngarbage line\nnan: {}\nwss://ws.kraken.com <- x: {}\n")
    bad = [e for e in read_recording(path) if isinstance(e, BadLine)]
    assert [(b.line, b.text) for b in bad] == [(3, "garbage line"), (4, "nan: {}"), (5, "wss://ws.kraken.com <- x: {}")]
    assert bad[0].reason.startswith("not a recording line")



# --- verified books (Kraken, OKX) ------------------------------------------------------------------
# file: (venue, books built from snapshots, checksums that matched, resyncs). Kraken's v1 snapshots carry
# no checksum (4269 updates); OKX's snapshot does (1 + 97 updates of BTC-USDT, the one spot instrument).
VERIFIED_BOOKS = {"KRAKEN.ws.50.0": ("kraken", 10, 4269, 0), "OKX.ws.1.0": ("okx", 1, 98, 0)}


def received_frames(recordings, name: str) -> list[tuple[str, int]]:
    return [(e.data, e.received_ms) for e in read_recording(recordings / name) if isinstance(e, Received)]


def parse_all(venue, frames: list[tuple[str, int]]) -> list:
    return [venue.parse(frame, received_ms) for frame, received_ms in frames]


@pytest.mark.parametrize("name", sorted(VERIFIED_BOOKS))
def test_recorded_books_pass_every_checksum(recordings, name):
    venue_name, built, verified, resyncs = VERIFIED_BOOKS[name]
    venue = get_venue(venue_name, any_symbol=True)
    parsed = parse_all(venue, received_frames(recordings, name))
    assert sum(p.resync is not None for p in parsed) == resyncs
    assert (venue.books.built, venue.books.verified, venue.books.discarded) == (built, verified, resyncs)
    assert all(book.complete(venue.book_levels) for book in venue.books.books.values())
    book_ticks = [t for p in parsed for t in p.ticks if t.bids is not None]
    assert book_ticks and all(len(t.bids) == len(t.asks) == venue.book_levels for t in book_ticks)


def update_levels(message) -> list:
    """The levels an update frame changes (the lists inside the decoded frame), [] for any other frame."""
    if isinstance(message, list) and len(message) >= 4 and str(message[-2]).startswith("book-") \
            and not any(key in message[1] for key in ("as", "bs")):
        return [level for part in message[1:-2] for key in ("a", "b") for level in part.get(key, [])]
    if isinstance(message, dict) and message.get("action") == "update":
        return message["data"][0]["bids"] + message["data"][0]["asks"]
    return []


def in_top(frame: str, parsed) -> int | None:
    """Which level of an update lands in the top levels its tick carries (so the checksum covers it), if any."""
    if not parsed.ticks or parsed.ticks[0].bids is None:
        return None
    tick = parsed.ticks[0]
    top = {price for price, _ in tick.bids + tick.asks}
    return next((i for i, level in enumerate(update_levels(orjson.loads(frame))) if float(level[0]) in top), None)


def corrupted(frame: str, which: int) -> str:
    """The frame with the size of one level changed in its last digit."""
    message = orjson.loads(frame)
    level = update_levels(message)[which]
    level[1] = level[1][:-1] + str((int(level[1][-1]) + 1) % 10)
    return orjson.dumps(message).decode()


@pytest.mark.parametrize("name", sorted(VERIFIED_BOOKS))
def test_a_corrupted_level_fails_the_checksum_and_the_book_is_rebuilt_from_the_next_snapshot(recordings, name):
    venue_name, built, verified, _ = VERIFIED_BOOKS[name]
    frames = received_frames(recordings, name)
    clean = get_venue(venue_name, any_symbol=True)
    outcomes = parse_all(clean, frames)
    index, which = next((i, which) for i, (frame, _) in enumerate(frames)
                        if (which := in_top(frame, outcomes[i])) is not None)
    symbol = outcomes[index].ticks[0].symbol
    venue = get_venue(venue_name, any_symbol=True)
    parse_all(venue, frames[:index])
    failed = venue.parse(corrupted(frames[index][0], which), frames[index][1])
    assert failed.deadletter.startswith(f"checksum mismatch on the {symbol} book") and not failed.ticks
    assert failed.resync == failed.deadletter and symbol not in venue.books.books
    # Until the connector's new connection brings snapshots, the discarded book takes no update.
    later = parse_all(venue, frames[index + 1:])
    assert f"book update for {symbol} before its snapshot" in {p.deadletter for p in later}
    assert not any(t.symbol == symbol and t.bids is not None for p in later for t in p.ticks)
    # The new connection replays from the snapshots: every checksum passes again, the books end as the clean run's.
    again = parse_all(venue, frames)
    assert not [p for p in again if p.resync is not None]
    assert (venue.books.discarded, venue.books.built) == (1, 2 * built)
    assert venue.books.verified >= verified
    assert {s: b.text(1000) for s, b in venue.books.books.items()} == {
        s: b.text(1000) for s, b in clean.books.books.items()}
