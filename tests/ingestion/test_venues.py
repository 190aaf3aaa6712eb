"""Targeted cases per venue: symbol mapping, sizes, sequences, and each kind of bad frame with its reason."""
from __future__ import annotations

import orjson
import pytest

from core.books.checksums import kraken_checksum_of, okx_checksum_of
from core.contracts.tick import Tick, tick_from_dict
from ingestion.venues import VENUES, get_venue
from ingestion.venues.binance import split_symbol

NOW = 1_700_000_000_000


def book_ticker(symbol="BTCUSDT", bid="100.5", ask="100.6", **extra) -> str:
    data = {"u": 42, "s": symbol, "b": bid, "B": "1.5", "a": ask, "A": "2.5", **extra}
    return orjson.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": data}).decode()


def coinbase_ticker(**fields) -> str:
    frame = {"type": "ticker", "sequence": 7, "product_id": "ETH-USD", "best_bid": "2000.1", "best_ask": "2000.2",
             "best_bid_size": "0.5", "best_ask_size": "0.25", "time": "2023-11-14T22:13:20.123456Z", **fields}
    return orjson.dumps({k: v for k, v in frame.items() if v is not None}).decode()


def kraken_v2_ticker(**fields) -> str:
    item = {"symbol": "BTC/USD", "bid": 30000.1, "bid_qty": 1.25, "ask": 30000.2, "ask_qty": 0.5, **fields}
    return orjson.dumps({"channel": "ticker", "type": "update", "data": [item]}).decode()


def okx_ticker(**fields) -> str:
    item = {"instType": "SPOT", "instId": "BTC-USDT", "last": "30000.1", "bidPx": "30000.1", "bidSz": "1.25",
            "askPx": "30000.2", "askSz": "0.5", "ts": str(NOW - 5), **fields}
    return orjson.dumps({"arg": {"channel": "tickers", "instId": item["instId"]}, "data": [item]}).decode()


# --- Binance -------------------------------------------------------------------------------------

def test_binance_book_ticker_maps_symbol_sizes_sequence_and_uses_received_time_without_E():
    parsed = get_venue("binance").parse(book_ticker(), NOW)
    assert parsed.ticks == [Tick("binance", "BTC/USDT", 100.5, 100.6, 1.5, 2.5, NOW)]
    assert parsed.sequence == ("BTC/USDT", 42)
    assert parsed.deadletter is None and parsed.ignored is None


def test_binance_uses_event_time_when_present_and_accepts_raw_streams():
    frame = orjson.dumps({"e": "bookTicker", "E": NOW - 5, "u": 1, "s": "ETHBTC", "b": "0.05", "B": "1",
                          "a": "0.051", "A": "2"})
    assert get_venue("binance").parse(frame, NOW).ticks[0].ts == NOW - 5


def test_binance_agg_trade_taker_side_from_maker_flag():
    frame = orjson.dumps({"stream": "ethusdt@aggTrade", "data": {"e": "aggTrade", "E": NOW, "s": "ETHUSDT", "a": 9,
                                                                 "p": "2000", "q": "0.1", "T": NOW - 1, "m": True}})
    (trade,) = get_venue("binance").parse(frame, NOW).trades
    assert (trade.symbol, trade.price, trade.size, trade.side, trade.ts, trade.trade_id) == \
        ("ETH/USDT", 2000.0, 0.1, "sell", NOW - 1, "9")


def test_binance_us_is_the_same_format_under_its_own_name():
    venue = get_venue("binance_us")
    assert venue.parse(book_ticker(), NOW).ticks[0].venue == "binance_us"
    assert venue.stream_url(["BTC/USDT"]).startswith("wss://stream.binance.us:9443/stream?streams=btcusdt@bookTicker")


@pytest.mark.parametrize("native,normal", [("BTCUSDT", "BTC/USDT"), ("NKNUSDT", "NKN/USDT"), ("OMGBUSD", "OMG/BUSD"),
                                           ("RUNEEUR", "RUNE/EUR"), ("LRCBTC", "LRC/BTC"), ("USDTTRY", "USDT/TRY"),
                                           ("BTCUSD", "BTC/USD"), ("USDT", None), ("BTCXYZ", None)])
def test_binance_quote_suffix_table(native, normal):
    assert split_symbol(native) == normal


def gemini_full_book(symbol="BTCUSD") -> str:
    return orjson.dumps({"type": "l2_updates", "symbol": symbol, "changes": [["buy", "30000.1", "1.5"],
                                                                             ["sell", "30000.2", "0.5"]],
                         "trades": [], "auction_events": []}).decode()


def test_binance_default_symbols_hold_triangles_and_others_are_unknown():
    venue = get_venue("binance")
    assert len(venue.symbols) >= 10 and {"BTC/USDT", "ETH/USDT", "ETH/BTC"} <= set(venue.symbols)
    assert venue.parse(book_ticker("NKNUSDT"), NOW).deadletter == "unknown symbol 'NKNUSDT'"
    assert get_venue("binance", any_symbol=True).parse(book_ticker("NKNUSDT"), NOW).ticks[0].symbol == "NKN/USDT"
    unknown = get_venue("binance", any_symbol=True).parse(book_ticker("FOOXYZ"), NOW)
    assert unknown.deadletter == "unknown symbol 'FOOXYZ'"


def test_binance_ignores_unsynced_depth_and_kline_with_reasons_and_acks():
    venue = get_venue("binance")
    depth = {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": NOW, "s": "BTCUSDT", "U": 1, "u": 2,
                                                       "b": [], "a": []}}
    kline = {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "s": "BTCUSDT", "k": {}}}
    assert venue.parse(orjson.dumps(depth), NOW).ignored == "book: diffs waiting for a REST snapshot"
    assert venue.parse(orjson.dumps(kline), NOW).ignored == "kline: candles are not used"
    assert venue.parse(b'{"result":null,"id":1}', NOW).ignored == "subscription ack"
    assert venue.parse(b'{"error":{"code":2,"msg":"Invalid request"},"id":1}', NOW).deadletter.startswith("venue error")


@pytest.mark.parametrize("frame,reason", [
    (b"not json", "not JSON"),
    (b"[1,2]", "a Binance frame must be a JSON object, got list"),
    (book_ticker().replace('"b":"100.5",', ""), "missing field 'b'"),
    (book_ticker(bid="0"), "field 'bid' must be > 0, got 0.0"),
    (book_ticker(bid="-1"), "field 'bid' must be > 0, got -1.0"),
    (book_ticker(bid="NaN"), "field 'bid' is not finite: nan"),
    (book_ticker(ask="inf"), "field 'ask' is not finite: inf"),
    (book_ticker(bid="abc"), "field 'bid' is not numeric: 'abc'"),
    (book_ticker(bid="101", ask="100"), "crossed quote: bid 101.0 > ask 100.0"),
    (book_ticker(E=1_700_000_000), "field 'ts' is not epoch milliseconds: 1700000000"),
    (book_ticker("DOGEBTC"), "unknown symbol 'DOGEBTC'"),
    (orjson.dumps({"stream": "x", "data": {"e": "24hrTicker"}}), "unexpected event type '24hrTicker'"),
])
def test_binance_bad_frames_are_dead_lettered_with_reason(frame, reason):
    parsed = get_venue("binance").parse(frame, NOW)
    assert parsed.deadletter is not None and parsed.deadletter.startswith(reason), parsed
    assert not parsed.ticks and not parsed.trades


def test_binance_null_size_is_an_unknown_size_not_an_error():
    assert get_venue("binance").parse(book_ticker(B=None), NOW).ticks[0].bid_size is None


def test_oversized_frames_are_dead_lettered_before_decoding():
    venue = get_venue("binance", max_frame_bytes=200)
    frame = book_ticker(pad="x" * 300)
    assert venue.parse(frame, NOW).deadletter == f"oversized frame: {len(frame)} bytes > 200"
    assert venue.parse(frame.encode(), NOW).deadletter.startswith("oversized frame")
    multibyte = book_ticker(pad="é" * 50)  # fits in 200 characters, not in 200 bytes
    assert len(multibyte) <= 200 < len(multibyte.encode())
    assert venue.parse(multibyte, NOW).deadletter.startswith("oversized frame")


# --- Coinbase ------------------------------------------------------------------------------------

def test_coinbase_ticker_sizes_time_and_sequence():
    parsed = get_venue("coinbase").parse(coinbase_ticker(), NOW)
    assert parsed.ticks == [Tick("coinbase", "ETH/USD", 2000.1, 2000.2, 0.5, 0.25, 1_700_000_000_123)]
    assert parsed.sequence == ("ETH/USD", 7)


def test_coinbase_ticker_without_sizes_has_none():
    tick = get_venue("coinbase").parse(coinbase_ticker(best_bid_size=None, best_ask_size=None), NOW).ticks[0]
    assert tick.bid_size is None and tick.ask_size is None


def test_coinbase_match_taker_side_is_opposite_of_maker_side():
    frame = orjson.dumps({"type": "match", "trade_id": 5, "side": "sell", "size": "0.5", "price": "2000",
                          "product_id": "ETH-USD", "sequence": 8, "time": "2023-11-14T22:13:20Z"})
    (trade,) = get_venue("coinbase").parse(frame, NOW).trades
    assert (trade.side, trade.ts, trade.trade_id) == ("buy", 1_700_000_000_000, "5")


@pytest.mark.parametrize("kind,reason", [
    ("subscriptions", "subscription ack"),
    ("heartbeat", "heartbeat"),
])
def test_coinbase_ignored_types(kind, reason):
    parsed = get_venue("coinbase").parse(orjson.dumps({"type": kind}), NOW)
    assert (parsed.ignored, parsed.deadletter, parsed.ticks, parsed.trades) == (reason, None, [], [])


@pytest.mark.parametrize("frame,reason", [
    (coinbase_ticker(best_bid=None), "missing field 'best_bid'"),
    (coinbase_ticker(best_ask="0"), "field 'ask' must be > 0"),
    (coinbase_ticker(best_bid="3000"), "crossed quote"),
    (coinbase_ticker(time="yesterday"), "field 'time' is not an ISO-8601 time: 'yesterday'"),
    (coinbase_ticker(product_id="DOGE-EUR"), "unknown symbol 'DOGE-EUR'"),
    (coinbase_ticker(best_bid_size="-1"), "field 'bid_size' must be >= 0"),
    (orjson.dumps({"type": "error", "message": "Failed to subscribe", "reason": "bad product"}), "venue error"),
    (orjson.dumps({"type": "status"}), "unexpected message type 'status'"),
    (orjson.dumps({"product_id": "ETH-USD"}), "missing field 'type'"),
])
def test_coinbase_bad_frames(frame, reason):
    assert get_venue("coinbase").parse(frame, NOW).deadletter.startswith(reason)


# --- Kraken --------------------------------------------------------------------------------------

def test_kraken_v2_ticker_with_and_without_timestamp():
    venue = get_venue("kraken")
    assert venue.parse(kraken_v2_ticker(), NOW).ticks == [Tick("kraken", "BTC/USD", 30000.1, 30000.2, 1.25, 0.5, NOW)]
    stamped = venue.parse(kraken_v2_ticker(timestamp="2023-11-14T22:13:20.500Z"), NOW)
    assert stamped.ticks[0].ts == 1_700_000_000_500


def test_kraken_v1_ticker_and_trade_arrays_map_xbt_and_xdg():
    venue = get_venue("kraken", ["BTC/USD", "DOGE/USD"])
    ticker = [340, {"a": ["30000.2", 1, "1.5"], "b": ["30000.1", 2, "2.5"], "c": ["30000.1", "0.1"]},
              "ticker", "XBT/USD"]
    assert venue.parse(orjson.dumps(ticker), NOW).ticks == [Tick("kraken", "BTC/USD", 30000.1, 30000.2, 2.5, 1.5, NOW)]
    trade = [1, [["0.08", "100", "1700000000.250000", "b", "l", ""], ["0.07", "5", "1700000001.0", "s", "m", ""]],
             "trade", "XDG/USD"]
    trades = venue.parse(orjson.dumps(trade), NOW).trades
    assert [(t.symbol, t.price, t.side, t.ts) for t in trades] == [("DOGE/USD", 0.08, "buy", 1_700_000_000_250),
                                                                   ("DOGE/USD", 0.07, "sell", 1_700_000_001_000)]


@pytest.mark.parametrize("frame,reason", [
    ({"event": "heartbeat"}, "heartbeat"),
    ({"event": "systemStatus", "status": "online"}, "system status"),
    ({"event": "subscriptionStatus", "status": "subscribed"}, "subscription ack"),
    ({"channel": "heartbeat"}, "heartbeat"),
    ({"channel": "status", "data": []}, "system status"),
    ({"method": "subscribe", "success": True, "result": {}}, "subscribe ack"),
])
def test_kraken_ignores_heartbeat_status_and_acks(frame, reason):
    parsed = get_venue("kraken").parse(orjson.dumps(frame), NOW)
    assert (parsed.ignored, parsed.deadletter, parsed.ticks, parsed.trades) == (reason, None, [], [])


@pytest.mark.parametrize("frame,reason", [
    (kraken_v2_ticker(bid="x"), "field 'bid' is not numeric"),
    (kraken_v2_ticker().replace("30000.2", "NaN"), "not JSON"),  # bare NaN is not JSON
    (kraken_v2_ticker(symbol="XBT/EUR"), "unknown symbol 'XBT/EUR'"),
    (orjson.dumps({"channel": "ticker", "data": []}), "field 'data' must be a non-empty list"),
    (orjson.dumps({"channel": "ohlc", "data": [{}]}), "unexpected channel 'ohlc'"),
    (orjson.dumps([1, {"a": ["1", 1, "1"]}, "ticker", "XBT/USD"]), "missing field 'b'"),
    (orjson.dumps([1, "ticker"]), "a Kraken v1 array frame has at least 4 elements"),
    (orjson.dumps({"event": "subscriptionStatus", "status": "error", "errorMessage": "Currency pair not supported"}),
     "venue error: Currency pair not supported"),
    (orjson.dumps({"method": "subscribe", "success": False, "error": "bad symbol"}), "venue error: bad symbol"),
])
def test_kraken_bad_frames(frame, reason):
    assert get_venue("kraken").parse(frame, NOW).deadletter.startswith(reason)


def test_every_tick_a_parser_emits_passes_the_shared_contract():
    emitted = {}
    for name in VENUES:
        venue = get_venue(name, any_symbol=True)
        ticks = [tick for frame in (book_ticker(), coinbase_ticker(), kraken_v2_ticker(), okx_ticker(),
                                    gemini_full_book())
                 for tick in venue.parse(frame, NOW).ticks]
        for tick in ticks:
            assert tick_from_dict(orjson.loads(orjson.dumps(tick.to_json_dict()))) == tick
        emitted[name] = len(ticks)
    assert emitted == {name: 1 for name in VENUES}  # each parser reads its own format's frame, and only that one


def test_unknown_venue_names_the_known_ones():
    known = "binance, binance_us, coinbase, gemini, kraken, okx"
    with pytest.raises(ValueError, match=f"unknown venue 'ftx'; known venues: {known}$"):
        get_venue("ftx")


def test_live_subscriptions():
    assert get_venue("binance").subscribe_messages(["BTC/USDT"]) == []
    assert get_venue("coinbase").subscribe_messages(["BTC/USDT"])[0]["product_ids"] == ["BTC-USDT"]
    assert get_venue("kraken").subscribe_messages(["BTC/USD"])[0]["params"]["symbol"] == ["BTC/USD"]
    assert get_venue("gemini").subscribe_messages(["BTC/USD", "ETH/BTC"]) == [
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHBTC"]}]}]
    assert get_venue("binance").stream_url(["BTC/USDT"]) == ("wss://stream.binance.com:9443/stream?streams="
                                                             "btcusdt@bookTicker/btcusdt@aggTrade/btcusdt@depth20@100ms")


# --- Kraken v2 book and OKX (verified books) ------------------------------------------------------
# Kraken's documented checksum example (974947235): ten asks and ten bids of 0.00000500 around 0.05.
KRAKEN_DOC_ASKS = ["0.05005", "0.05010", "0.05015", "0.05020", "0.05025", "0.05030", "0.05035", "0.05040",
                   "0.05045", "0.05050"]
KRAKEN_DOC_BIDS = ["0.05000", "0.04995", "0.04990", "0.04980", "0.04975", "0.04970", "0.04965", "0.04960",
                   "0.04955", "0.04950"]


def kraken_v2_book(kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], checksum: int,
                   **fields) -> str:
    """Written as text, not dumped: Kraken's numbers carry trailing zeros that a float would lose."""
    def levels(side):
        return ",".join(f'{{"price":{price},"qty":{qty}}}' for price, qty in side)
    extra = "".join(f',"{key}":"{value}"' for key, value in fields.items())
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":[{levels(bids)}],'
            f'"asks":[{levels(asks)}],"checksum":{checksum}{extra}}}]}}')


def test_kraken_v2_book_snapshot_and_update_are_checked_on_the_numbers_text():
    venue = get_venue("kraken")
    bids = [(price, "0.00000500") for price in KRAKEN_DOC_BIDS]
    asks = [(price, "0.00000500") for price in KRAKEN_DOC_ASKS]
    snapshot = venue.parse(kraken_v2_book("snapshot", bids, asks, 974947235), NOW)
    (tick,) = snapshot.ticks
    assert (tick.bid, tick.ask, tick.bid_size, tick.ts) == (0.05, 0.05005, 0.000005, NOW)
    assert len(tick.bids) == len(tick.asks) == 10 and tick.asks[-1] == (0.0505, 0.000005)
    # The update removes the best ask: the checksum is now over 0.05010..0.05050 and the bids.
    expected = kraken_checksum_of(bids, asks[1:])
    update = venue.parse(kraken_v2_book("update", [], [("0.05005", "0.00000000")], expected,
                                        timestamp="2023-11-14T22:13:20.500Z"), NOW)
    assert update.ticks[0].ask == 0.0501 and update.ticks[0].ts == NOW + 500
    assert venue.books.verified == 2


def test_kraken_v2_book_checksum_mismatch_discards_the_book_and_resyncs():
    venue = get_venue("kraken")
    bids = [(price, "0.00000500") for price in KRAKEN_DOC_BIDS]
    asks = [(price, "0.00000500") for price in KRAKEN_DOC_ASKS]
    bad = venue.parse(kraken_v2_book("snapshot", bids, asks, 974947236), NOW)
    assert bad.deadletter == bad.resync == ("checksum mismatch on the BTC/USD book: kraken sent checksum 974947236, "
                                            "the book gives 974947235")
    after = venue.parse(kraken_v2_book("update", [], [("0.05005", "0.00000000")], 1), NOW)
    assert after.deadletter == "book update for BTC/USD before its snapshot" and after.resync is None


def test_kraken_subscribes_ticker_trade_and_book_at_its_depth():
    assert [m["params"]["channel"] for m in get_venue("kraken").subscribe_messages(["BTC/USD"])] == [
        "ticker", "trade", "book"]
    assert get_venue("kraken", book_depth=100).subscribe_messages(["BTC/USD"])[2]["params"]["depth"] == 100
    with pytest.raises(ValueError, match="book_depth must be one of"):
        get_venue("kraken", book_depth=30)


def test_kraken_parses_snapshots_past_64_kib_and_keeps_the_limit_configurable():
    asks = [[f"{30000 + i}.10000", "1.00000000", "1618678123.481570"] for i in range(1000)]
    bids = [[f"{29999 - i}.10000", "1.00000000", "1618678123.481570"] for i in range(1000)]
    snapshot = orjson.dumps([1, {"as": asks, "bs": bids}, "book-1000", "XBT/USD"])
    assert len(snapshot) > 64 * 1024
    assert get_venue("kraken").parse(snapshot, NOW).ticks
    assert get_venue("kraken", max_frame_bytes=64 * 1024).parse(snapshot, NOW).deadletter.startswith("oversized")


def okx_book(action: str, bids, asks, checksum: int, **fields) -> str:
    item = {"asks": [[p, s, "0", "1"] for p, s in asks], "bids": [[p, s, "0", "1"] for p, s in bids],
            "ts": str(NOW), "checksum": checksum, **fields}
    return orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [item]}).decode()


def test_okx_ticker_trade_and_symbols():
    venue = get_venue("okx")
    assert venue.parse(okx_ticker(), NOW).ticks == [Tick("okx", "BTC/USDT", 30000.1, 30000.2, 1.25, 0.5, NOW - 5)]
    trade = orjson.dumps({"arg": {"channel": "trades", "instId": "ETH-BTC"}, "data": [
        {"instId": "ETH-BTC", "tradeId": "7", "px": "0.05", "sz": "2", "side": "sell", "ts": str(NOW)}]})
    (parsed,) = venue.parse(trade, NOW).trades
    assert (parsed.symbol, parsed.price, parsed.size, parsed.side, parsed.ts, parsed.trade_id) == (
        "ETH/BTC", 0.05, 2.0, "sell", NOW, "7")
    assert get_venue("okx", any_symbol=True).parse(okx_ticker(instId="BTC-USD-SWAP"), NOW).deadletter == (
        "unknown symbol 'BTC-USD-SWAP'")
    (subscribe,) = venue.subscribe_messages(["BTC/USDT"])
    assert subscribe == {"op": "subscribe", "args": [{"channel": c, "instId": "BTC-USDT"}
                                                     for c in ("tickers", "trades", "books")]}


def test_okx_book_checksum_and_sequence_chain():
    venue = get_venue("okx")
    bids, asks = [("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]  # OKX's documented example
    snapshot = venue.parse(okx_book("snapshot", bids, asks, 831078360, seqId=10, prevSeqId=-1), NOW)
    assert snapshot.ticks[0].bids == ((3366.1, 7.0),) and snapshot.ticks[0].asks[-1] == (3372.0, 8.0)
    moved = okx_checksum_of([("3366.1", "7")], [("3366.8", "9"), ("3372", "8")])
    update = venue.parse(okx_book("update", [], [("3368", "0")], moved, seqId=12, prevSeqId=10), NOW)
    assert update.ticks[0].asks == ((3366.8, 9.0), (3372.0, 8.0))
    # OKX sending 0 is no checksum: the chain still holds it to account.
    assert venue.parse(okx_book("update", [("3366.1", "8")], [], 0, seqId=13, prevSeqId=12), NOW).ticks
    gap = venue.parse(okx_book("update", [("3366.1", "9")], [], 0, seqId=20, prevSeqId=15), NOW)
    assert gap.deadletter == gap.resync == "sequence gap on the BTC/USDT book: the update follows seqId 15, " \
                                           "the book's last was 13"
    assert venue.books.verified == 2 and venue.books.discarded == 1
    # A fresh snapshot starts a new chain.
    assert venue.parse(okx_book("snapshot", bids, asks, 831078360, seqId=30, prevSeqId=-1), NOW).ticks
    mismatch = venue.parse(okx_book("update", [("3366.1", "6")], [], 831078360, seqId=31, prevSeqId=30), NOW)
    assert mismatch.deadletter.startswith("checksum mismatch on the BTC/USDT book: okx sent checksum 831078360")


@pytest.mark.parametrize("frame,outcome", [
    ("pong", ("ignored", "pong")),
    (orjson.dumps({"event": "subscribe", "arg": {"channel": "tickers", "instId": "BTC-USDT"}}),
     ("ignored", "subscription ack")),
    (orjson.dumps({"event": "channel-conn-count", "channel": "books", "connCount": "1"}),
     ("ignored", "connection count notice")),
    (orjson.dumps({"event": "error", "code": "60012", "msg": "Invalid request"}),
     ("deadletter", "venue error 60012: Invalid request")),
    (orjson.dumps({"event": "login"}), ("deadletter", "unexpected event 'login'")),
    (orjson.dumps({"arg": {"channel": "candle1m", "instId": "BTC-USDT"}, "data": [[]]}),
     ("deadletter", "unexpected channel 'candle1m'")),
    (okx_ticker(bidPx=""), ("deadletter", "field 'bid' is not numeric: ''")),
    (okx_book("update", [], [("1", "1")], 5), ("deadletter", "book update for BTC/USDT before its snapshot")),
    (okx_book("partial", [], [], 5), ("deadletter", "a books frame has action snapshot or update, got 'partial'")),
])
def test_okx_acks_errors_and_bad_frames(frame, outcome):
    parsed = get_venue("okx").parse(frame, NOW)
    assert (outcome[0], getattr(parsed, outcome[0])) == outcome and not parsed.ticks and not parsed.trades


def test_ingest_and_record_take_the_frame_limit_or_leave_the_venues_own():
    import argparse

    from ascep.commands.ingest import add_venue_options, venue_from_args

    parser = argparse.ArgumentParser()
    add_venue_options(parser)

    def limit(venue_name, argv):
        return venue_from_args(argparse.Namespace(**vars(parser.parse_args(argv)), venue=venue_name)).max_frame_bytes
    assert (limit("okx", []), limit("kraken", []), limit("binance", [])) == (2**20, 2**20, 2**16)
    assert limit("kraken", ["--max-frame-bytes", "65536"]) == 65536


def test_kraken_v2_book_frame_of_two_symbols_checks_each():
    venue = get_venue("kraken", ["BTC/USD", "ETH/USD"])
    bids = [(price, "0.00000500") for price in KRAKEN_DOC_BIDS]
    asks = [(price, "0.00000500") for price in KRAKEN_DOC_ASKS]
    entry = '{"symbol":"%s","bids":[%s],"asks":[%s],"checksum":%d}'
    levels = [",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side) for side in (bids, asks)]
    frame = ('{"channel":"book","type":"snapshot","data":[' + entry % ("BTC/USD", *levels, 974947235) + ","
             + entry % ("ETH/USD", *levels, 974947235) + "]}")
    assert [t.symbol for t in venue.parse(frame, NOW).ticks] == ["BTC/USD", "ETH/USD"]
    bad = frame.replace("974947235}]}", "1}]}")
    assert venue.parse(bad, NOW).resync.startswith("checksum mismatch on the ETH/USD book")
