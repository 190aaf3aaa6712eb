"""Order books per venue: Coinbase level2, Gemini l2 and Binance depth (partial frames and U/u diffs)."""
from __future__ import annotations

import orjson
import pytest

from core.contracts.tick import Tick, tick_from_dict
from ingestion.venues import get_venue
from ingestion.venues.base import BOOK_UNCHANGED
from ingestion.venues.binance import DIFF_STALE, DIFFS_WAITING
from ingestion.venues.books import BOOK_INCOMPLETE, UPDATE_BEFORE_SNAPSHOT
from ingestion.venues.gemini import split_symbol

NOW = 1_700_000_000_000
TIME = "2023-11-14T22:13:20.123Z"  # NOW + 123 ms


def frame(obj) -> bytes:
    return orjson.dumps(obj)


def only_tick(parsed) -> Tick:
    assert (parsed.ignored, parsed.deadletter, parsed.resync) == (None, None, None), parsed
    (tick,) = parsed.ticks
    assert tick_from_dict(orjson.loads(orjson.dumps(tick.to_json_dict()))) == tick  # the shared contract holds
    return tick


# --- Coinbase level2 ------------------------------------------------------------------------------------------

def coinbase_snapshot(**fields):
    return frame({"type": "snapshot", "product_id": "ETH-USD", "bids": [["2000.1", "1.5"], ["1999", "2"]],
                  "asks": [["2000.3", "0.5"], ["2001", "4"]], **fields})


def l2update(*changes, time=TIME):
    return frame({"type": "l2update", "product_id": "ETH-USD", "changes": [list(c) for c in changes], "time": time})


def test_coinbase_snapshot_then_updates_make_book_ticks():
    venue = get_venue("coinbase", book_levels=2)
    tick = only_tick(venue.parse(coinbase_snapshot(), NOW))
    assert tick == Tick("coinbase", "ETH/USD", 2000.1, 2000.3, 1.5, 0.5, NOW,
                        ((2000.1, 1.5), (1999.0, 2.0)), ((2000.3, 0.5), (2001.0, 4.0)))
    tick = only_tick(venue.parse(l2update(("buy", "2000.2", "3"), ("sell", "2000.3", "0")), NOW))
    assert (tick.bids, tick.asks, tick.ts) == (((2000.2, 3.0), (2000.1, 1.5)), ((2001.0, 4.0),), NOW + 123)
    assert venue.parse(l2update(("buy", "1990", "7")), NOW).ignored == BOOK_UNCHANGED  # below the 2 levels


def test_coinbase_snapshot_with_its_own_time():
    tick = only_tick(get_venue("coinbase").parse(coinbase_snapshot(time=TIME), NOW))
    assert tick.ts == NOW + 123


def test_coinbase_update_before_its_snapshot_is_ignored():
    venue = get_venue("coinbase")
    assert venue.parse(l2update(("buy", "2000.2", "3")), NOW).ignored == UPDATE_BEFORE_SNAPSHOT


def test_coinbase_a_one_sided_book_waits():
    venue = get_venue("coinbase")
    assert venue.parse(coinbase_snapshot(asks=[]), NOW).ignored == BOOK_INCOMPLETE
    assert only_tick(venue.parse(l2update(("sell", "2002", "1")), NOW)).asks == ((2002.0, 1.0),)


@pytest.mark.parametrize("bad,reason", [
    (l2update(("hold", "2000", "1")), "book: bad l2update: field 'changes[0]' side must be 'buy' or 'sell'"),
    (l2update(("buy", "abc", "1")), "book: bad l2update: field 'changes[0]': could not convert string"),
    (l2update(("buy", "2000", "-1")), "book: bad l2update: field 'changes[0]': bad book level"),
    (l2update(("buy", 2000, "1")), "book: bad l2update: field 'changes[0]': price and size must be strings"),
    (l2update(("buy", "2000")), "book: bad l2update: field 'changes[0]' must be a [side, price, size] change"),
    (l2update(("buy", "2000", "1"), time="yesterday"), "book: bad l2update: field 'time' is not an ISO-8601"),
    (frame({"type": "l2update", "product_id": "ETH-USD", "time": TIME}), "book: bad l2update: missing field "),
])
def test_coinbase_a_bad_update_discards_the_book_and_asks_for_a_resync(bad, reason):
    venue = get_venue("coinbase")
    only_tick(venue.parse(coinbase_snapshot(), NOW))
    parsed = venue.parse(bad, NOW)
    assert parsed.deadletter.startswith(reason) and parsed.resync == parsed.deadletter and not parsed.ticks
    assert venue.parse(l2update(("buy", "2000.2", "3")), NOW).ignored == UPDATE_BEFORE_SNAPSHOT
    assert only_tick(venue.parse(coinbase_snapshot(), NOW)).bid == 2000.1  # a fresh snapshot emits again


def test_coinbase_a_bad_snapshot_asks_for_a_resync():
    parsed = get_venue("coinbase").parse(coinbase_snapshot(bids=[["2000", "x"]]), NOW)
    assert parsed.deadletter.startswith("book: bad snapshot: field 'bids[0]'") and parsed.resync


# --- Gemini l2 --------------------------------------------------------------------------------------------------

def gemini_book(*changes, symbol="BTCUSD", trades=None):
    message = {"type": "l2_updates", "symbol": symbol, "changes": [list(c) for c in changes]}
    if trades is not None:
        message.update(trades=trades, auction_events=[])
    return frame(message)


FULL = (("buy", "30000.1", "1.5"), ("buy", "29999", "2"), ("sell", "30000.5", "0.5"), ("sell", "30002", "1"))
TRADE = {"type": "trade", "symbol": "BTCUSD", "event_id": 77, "timestamp": NOW - 5, "price": "30000.3",
         "quantity": "0.25", "side": "sell"}


def test_gemini_full_book_with_its_trades_then_deltas():
    venue = get_venue("gemini")
    first = venue.parse(gemini_book(*FULL, trades=[TRADE]), NOW)
    assert (first.ignored, first.deadletter) == (None, None)
    assert first.ticks == [Tick(
        "gemini", "BTC/USD", 30000.1, 30000.5, 1.5, 0.5, NOW, ((30000.1, 1.5), (29999.0, 2.0)),
        ((30000.5, 0.5), (30002.0, 1.0)))]
    (trade,) = first.trades
    assert (trade.symbol, trade.price, trade.size, trade.side, trade.ts, trade.trade_id) == \
        ("BTC/USD", 30000.3, 0.25, "sell", NOW - 5, "77")
    tick = only_tick(venue.parse(gemini_book(("sell", "30000.5", "0"), ("buy", "30000.2", "1")), NOW + 1))
    assert (tick.bid, tick.ask, tick.ts) == (30000.2, 30002.0, NOW + 1)


def test_gemini_delta_before_the_full_book_is_ignored_and_a_new_full_book_replaces_the_old():
    venue = get_venue("gemini")
    assert venue.parse(gemini_book(("buy", "30000.1", "1")), NOW).ignored == UPDATE_BEFORE_SNAPSHOT
    only_tick(venue.parse(gemini_book(*FULL, trades=[]), NOW))
    # After a reconnect Gemini sends the whole book again: levels missing from it are gone.
    tick = only_tick(venue.parse(gemini_book(("buy", "29000", "1"), ("sell", "31000", "1"), trades=[]), NOW))
    assert (tick.bids, tick.asks) == (((29000.0, 1.0),), ((31000.0, 1.0),))


def test_gemini_trades_heartbeats_and_errors():
    venue = get_venue("gemini")
    (trade,) = venue.parse(frame(TRADE), NOW).trades
    assert (trade.venue, trade.side) == ("gemini", "sell")
    assert venue.parse(b'{"type":"heartbeat","timestamp":1700000000000}', NOW).ignored == "heartbeat"
    assert venue.parse(b'{"type":"auction_open","symbol":"BTCUSD"}', NOW).ignored.startswith("auction")
    assert venue.parse(b'{"type":"nonsense"}', NOW).deadletter == "unexpected message type 'nonsense'"
    assert venue.parse(b'{"result":"error","reason":"InvalidJson","message":"bad"}', NOW).deadletter == \
        "venue error: InvalidJson bad"
    assert venue.parse(gemini_book(*FULL, symbol="DOGEBTC", trades=[]), NOW).deadletter == "unknown symbol 'DOGEBTC'"


def test_gemini_a_bad_delta_discards_the_book_and_asks_for_a_resync():
    venue = get_venue("gemini")
    only_tick(venue.parse(gemini_book(*FULL, trades=[]), NOW))
    parsed = venue.parse(gemini_book(("buy", "30000.1", "NaN?")), NOW)
    assert parsed.deadletter.startswith("book: bad l2_updates: field 'changes[0]'") and parsed.resync
    assert venue.parse(gemini_book(("buy", "30000.1", "1")), NOW).ignored == UPDATE_BEFORE_SNAPSHOT


@pytest.mark.parametrize("native,symbol", [("BTCUSD", "BTC/USD"), ("LINKETH", "LINK/ETH"), ("ZECLTC", "ZEC/LTC"),
                                           ("BTCGUSD", "BTC/GUSD"), ("ETHUSDT", "ETH/USDT"), ("BTCXYZ", None),
                                           ("USD", None)])
def test_gemini_symbols_split_at_a_known_quote(native, symbol):
    assert split_symbol(native) == symbol


# --- Binance partial depth and diffs ----------------------------------------------------------------------------

def depth20(bids, asks, stream="btcusdt@depth20@100ms"):
    return frame({"stream": stream, "data": {"lastUpdateId": 160, "bids": bids, "asks": asks}})


def depth_update(first_id, last_id, bids=(), asks=()):
    return frame({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": NOW + last_id, "s": "BTCUSDT", "U": first_id, "u": last_id,
        "b": [list(b) for b in bids], "a": [list(a) for a in asks]}})


def test_binance_partial_depth_replaces_the_book_each_frame():
    venue = get_venue("binance")
    tick = only_tick(venue.parse(depth20([["100.1", "2"], ["100", "1"]], [["100.2", "3"]]), NOW))
    assert tick == Tick("binance", "BTC/USDT", 100.1, 100.2, 2.0, 3.0, NOW, ((100.1, 2.0), (100.0, 1.0)),
                        ((100.2, 3.0),))
    assert venue.parse(depth20([["100.1", "2"], ["100", "1"]], [["100.2", "3"]]), NOW).ignored == BOOK_UNCHANGED
    tick = only_tick(venue.parse(depth20([["100", "1"]], [["100.2", "3"]]), NOW))
    assert tick.bids == ((100.0, 1.0),)  # the 100.1 level is gone: the frame is the whole top


def test_binance_partial_depth_needs_its_stream_name_and_good_levels():
    venue = get_venue("binance")
    unnamed = frame({"lastUpdateId": 1, "bids": [], "asks": []})
    assert venue.parse(unnamed, NOW).deadletter.startswith("a partial-depth frame needs its combined-stream name")
    assert venue.parse(depth20([], [], stream="foousdt@depth20@100ms"), NOW).deadletter == "unknown symbol 'FOOUSDT'"
    parsed = venue.parse(depth20([["100", "1", "x"], ["a", "1"]], [["101", "1"]]), NOW)
    assert parsed.deadletter.startswith("field 'bids[1]': could not convert") and parsed.resync is None
    only_tick(venue.parse(depth20([["100", "1"]], [["101", "1"]]), NOW))  # the next frame stands alone


def test_binance_diffs_wait_for_a_rest_snapshot_then_follow_the_u_rules():
    venue = get_venue("binance")
    assert venue.parse(depth_update(98, 100, bids=[("99", "1")]), NOW).ignored == DIFFS_WAITING  # stale
    assert venue.parse(depth_update(101, 103, asks=[("101", "0")]), NOW).ignored == DIFFS_WAITING
    snapshot = {"lastUpdateId": 102, "bids": [["100", "1"]], "asks": [["101", "2"], ["102", "1"]]}
    tick = only_tick(venue.rest_snapshot("BTC/USDT", snapshot, NOW))
    assert (tick.bids, tick.asks) == (((100.0, 1.0),), ((102.0, 1.0),))  # 99 was before the snapshot, 101 deleted
    tick = only_tick(venue.parse(depth_update(104, 105, bids=[("100.5", "3")]), NOW))
    assert (tick.bid, tick.ts) == (100.5, NOW + 105)
    assert venue.parse(depth_update(100, 104, bids=[("1", "1")]), NOW).ignored == DIFF_STALE
    gap = venue.parse(depth_update(107, 108), NOW)
    assert gap.deadletter == "book: bad depthUpdate: diff U=107 u=108 after update id 105 breaks U == previous u + 1"
    assert gap.resync == gap.deadletter and not gap.ticks
    assert venue.parse(depth_update(109, 110), NOW).ignored == DIFFS_WAITING  # back to waiting


def test_binance_a_snapshot_the_diffs_do_not_join_asks_for_a_resync():
    venue = get_venue("binance")
    venue.parse(depth_update(105, 110), NOW)
    parsed = venue.rest_snapshot("BTC/USDT", {"lastUpdateId": 102, "bids": [["100", "1"]], "asks": [["101", "2"]]},
                                 NOW)
    assert parsed.resync.startswith("book: bad depth snapshot: diff U=105 u=110 after update id 102")


def test_binance_update_ids_must_be_integers():
    venue = get_venue("binance")
    bad = frame({"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": NOW, "s": "BTCUSDT", "U": "1",
                                                           "u": 2, "b": [], "a": []}})
    assert venue.parse(bad, NOW).deadletter == "fields 'U' and 'u' must be integer update ids"


def test_binance_asks_for_a_rest_snapshot_only_when_it_subscribes_diffs():
    partial, diffs = get_venue("binance"), get_venue("binance", depth="depth@100ms")
    assert partial.parse(depth_update(1, 2), NOW).snapshot is None  # a replay's recorded diffs just wait
    assert [diffs.parse(depth_update(u, u), NOW).snapshot for u in (1, 2)] == ["BTC/USDT", None]  # once per wait
    assert diffs.snapshot_url("BTC/USDT") == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    assert get_venue("binance_us").snapshot_url("BTC/USD").startswith("https://api.binance.us/api/v3/depth?")
    assert diffs.stream_url(["BTC/USDT"]).endswith("btcusdt@depth@100ms")
    diffs.forget_book("BTC/USDT")  # as after a failed fetch: the next diff asks again
    assert diffs.parse(depth_update(3, 3), NOW).snapshot == "BTC/USDT"
    with pytest.raises(ValueError, match="depth must be"):
        get_venue("binance", depth="depth5")
