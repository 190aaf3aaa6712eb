"""Fuzzing the venue parsers: 10,000 malformed frames each, built from real frame shapes.

Every frame is either made invalid on purpose (a field set to a bad value or removed, a crossed quote,
an unknown symbol, a truncated or oversized frame, random bytes), and must then be dead-lettered
with a reason, or is random JSON of unknown validity, which must still end in exactly one outcome and
only ever yield ticks that pass the shared tick contract. No exception may escape `parse`.
"""
from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.books.checksums import kraken_checksum_of, okx_checksum_of
from core.contracts.tick import tick_from_dict
from ingestion.venues import get_venue

NOW = 1_700_000_000_000
MAX_FRAME_BYTES = 1024
FUZZ = settings(max_examples=10_000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Bad values per kind of field. None means "present but null"; deletion is a separate mutation.
BAD_PRICE = ["0", "-1", "NaN", "inf", "-Infinity", "abc", "", "1e400", None, True, [], {}, 0, -5.5]
BAD_SIZE = ["-1", "NaN", "inf", "abc", "", "1e400", True, [], {}, -0.5]  # null is an unknown size: allowed
BAD_MS = [None, "abc", "1700000000000", True, 1_700_000_000, 1.7e15, -1, 0, [], {}]
BAD_ISO = [None, 123, "yesterday", "", "2021-13-45T00:00:00Z", True, []]
BAD_SECONDS = [None, "abc", "NaN", "inf", "1e400", "-1", True, []]
BAD_SYMBOL = ["ZZZ/QQQ", "ZZZQQQ", "ZZZ-QQQ", "", 5, None, [], {}]
BAD_CONTAINER = [[], "x", 5, None, True]
BAD_OKX_MS = [None, "abc", True, "1700000000", "1.7e12", 1.7e15, -1, 0, [], {}]  # OKX's ts is a string of ms
BAD_CHECKSUM = [5, -5, "abc", True, 1.5, [], {}]  # a wrong value or none that can be one; null or 0 means "none sent"
BAD_LEVELS = ["x", 5, None, True, [["1"]], [{}]]

# name -> (template, [(path, bad values, deletable)], (bid path, ask path) or None)
TEMPLATES: dict[str, list[tuple[Any, list[tuple[tuple, list, bool]], tuple | None]]] = {
    "binance": [
        ({"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", "b": "100.1", "B": "1", "a": "100.2",
                                                   "A": "2", "E": NOW}},
         [(("data", "b"), BAD_PRICE, True), (("data", "a"), BAD_PRICE, True), (("data", "B"), BAD_SIZE, False),
          (("data", "A"), BAD_SIZE, False), (("data", "s"), BAD_SYMBOL, True), (("data", "E"), BAD_MS, False),
          (("data",), BAD_CONTAINER, True)],
         (("data", "b"), ("data", "a"))),
        ({"stream": "ethbtc@aggTrade", "data": {"e": "aggTrade", "E": NOW, "s": "ETHBTC", "a": 5, "p": "0.05",
                                                "q": "1.5", "T": NOW, "m": False}},
         [(("data", "p"), BAD_PRICE, True), (("data", "q"), BAD_SIZE + [None], True),
          (("data", "s"), BAD_SYMBOL, True), (("data", "T"), BAD_MS, True), (("data",), BAD_CONTAINER, True)],
         None),
    ],
    "coinbase": [
        ({"type": "ticker", "sequence": 3, "product_id": "ETH-USD", "best_bid": "2000.1", "best_ask": "2000.2",
          "best_bid_size": "0.5", "best_ask_size": "0.25", "time": "2021-04-17T16:43:30.244075Z"},
         [(("best_bid",), BAD_PRICE, True), (("best_ask",), BAD_PRICE, True), (("best_bid_size",), BAD_SIZE, False),
          (("best_ask_size",), BAD_SIZE, False), (("product_id",), BAD_SYMBOL, True), (("time",), BAD_ISO, False),
          (("type",), [None, 5, "nonsense", []], True)],
         (("best_bid",), ("best_ask",))),
        ({"type": "match", "trade_id": 1, "side": "sell", "size": "0.5", "price": "2000", "product_id": "ETH-USD",
          "sequence": 4, "time": "2021-04-17T16:43:30.244075Z"},
         [(("price",), BAD_PRICE, True), (("size",), BAD_SIZE + [None], True), (("product_id",), BAD_SYMBOL, True),
          (("time",), BAD_ISO, True)],
         None),
    ],
    # Gemini's full book (the l2_updates holding trades) stands alone, so it is a template; a crossed book is a
    # book that cannot vouch for its top (ignored, see docs/ticks.md), not a bad frame, hence no crossed paths.
    "gemini": [
        ({"type": "l2_updates", "symbol": "BTCUSD", "changes": [["buy", "30000.1", "1.5"], ["sell", "30000.2", "2"]],
          "trades": [], "auction_events": []},
         [(("changes", 0, 1), BAD_PRICE, False), (("changes", 1, 1), BAD_PRICE, False),
          (("changes", 0, 2), BAD_SIZE + [None], False), (("changes", 0, 0), ["hold", None, 5, ""], False),
          (("symbol",), BAD_SYMBOL, True), (("changes",), ["x", 5, None, True], True),
          (("changes", 0), BAD_CONTAINER, False)],
         None),
        ({"type": "trade", "symbol": "ETHBTC", "event_id": 5, "timestamp": NOW, "price": "0.05", "quantity": "1.5",
          "side": "buy"},
         [(("price",), BAD_PRICE, True), (("quantity",), BAD_SIZE + [None], True), (("symbol",), BAD_SYMBOL, True),
          (("timestamp",), BAD_MS, True)],
         None),
    ],
    "kraken": [
        ({"channel": "ticker", "type": "update", "data": [{"symbol": "BTC/USD", "bid": 30000.1, "bid_qty": 1.5,
                                                           "ask": 30000.2, "ask_qty": 0.5,
                                                           "timestamp": "2023-11-14T22:13:20.5Z"}]},
         [(("data", 0, "bid"), BAD_PRICE, True), (("data", 0, "ask"), BAD_PRICE, True),
          (("data", 0, "bid_qty"), BAD_SIZE, False), (("data", 0, "ask_qty"), BAD_SIZE, False),
          (("data", 0, "symbol"), BAD_SYMBOL, True), (("data", 0, "timestamp"), BAD_ISO, False),
          (("data",), BAD_CONTAINER, True), (("data", 0), BAD_CONTAINER, False)],
         (("data", 0, "bid"), ("data", 0, "ask"))),
        ({"channel": "trade", "type": "update", "data": [{"symbol": "ETH/BTC", "side": "buy", "price": 0.05,
                                                          "qty": 2.0, "trade_id": 9,
                                                          "timestamp": "2023-11-14T22:13:20.5Z"}]},
         [(("data", 0, "price"), BAD_PRICE, True), (("data", 0, "qty"), BAD_SIZE + [None], True),
          (("data", 0, "symbol"), BAD_SYMBOL, True), (("data", 0, "timestamp"), BAD_ISO, True)],
         None),
        ([340, {"a": ["30000.2", 1, "1.5"], "b": ["30000.1", 2, "2.5"], "c": ["30000.1", "0.1"]}, "ticker", "XBT/USD"],
         [((1, "b", 0), BAD_PRICE, False), ((1, "a", 0), BAD_PRICE, False), ((1, "b", 2), BAD_SIZE, False),
          ((1, "a", 2), BAD_SIZE, False), ((3,), BAD_SYMBOL, False), ((1,), BAD_CONTAINER, False),
          ((1, "b"), BAD_CONTAINER + [[]], True)],
         ((1, "b", 0), (1, "a", 0))),
        ([1, [["0.08", "100", "1700000000.25", "b", "l", ""]], "trade", "XBT/USD"],
         [((1, 0, 0), BAD_PRICE, False), ((1, 0, 1), BAD_SIZE + [None], False), ((1, 0, 2), BAD_SECONDS, False),
          ((3,), BAD_SYMBOL, False), ((1,), BAD_CONTAINER, False), ((1, 0), BAD_CONTAINER, False)],
         None),
        # A v2 book snapshot (decoded with its numbers as text): a bad level or checksum must be dead-lettered.
        ({"channel": "book", "type": "snapshot", "data": [{
            "symbol": "BTC/USD", "bids": [{"price": "100.1", "qty": "1.5"}], "asks": [{"price": "100.2", "qty": "2"}],
            "checksum": kraken_checksum_of([("100.1", "1.5")], [("100.2", "2")])}]},
         [(("data", 0, "bids", 0, "price"), BAD_PRICE, True), (("data", 0, "asks", 0, "qty"), BAD_SIZE, True),
          (("data", 0, "checksum"), BAD_CHECKSUM, True), (("data", 0, "symbol"), BAD_SYMBOL, True),
          (("data", 0, "bids"), BAD_LEVELS, False), (("type",), [None, 5, "partial"], True)],
         None),
    ],
    "okx": [
        ({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [{
            "instId": "BTC-USDT", "bidPx": "100.1", "bidSz": "1", "askPx": "100.2", "askSz": "2", "ts": str(NOW)}]},
         [(("data", 0, "bidPx"), BAD_PRICE, True), (("data", 0, "askPx"), BAD_PRICE, True),
          (("data", 0, "bidSz"), BAD_SIZE, True), (("data", 0, "askSz"), BAD_SIZE, True),
          (("data", 0, "ts"), BAD_OKX_MS, True), (("arg", "instId"), BAD_SYMBOL, True),
          (("data",), BAD_CONTAINER, True), (("arg",), BAD_CONTAINER, True)],
         (("data", 0, "bidPx"), ("data", 0, "askPx"))),
        ({"arg": {"channel": "trades", "instId": "ETH-BTC"}, "data": [{
            "instId": "ETH-BTC", "tradeId": "1", "px": "0.05", "sz": "2", "side": "buy", "ts": str(NOW)}]},
         [(("data", 0, "px"), BAD_PRICE, True), (("data", 0, "sz"), BAD_SIZE + [None], True),
          (("data", 0, "ts"), BAD_OKX_MS, True), (("data", 0), BAD_CONTAINER, False)],
         None),
        ({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot", "data": [{
            "asks": [["100.2", "2", "0", "1"]], "bids": [["100.1", "1", "0", "1"]], "ts": str(NOW),
            "checksum": okx_checksum_of([("100.1", "1")], [("100.2", "2")])}]},
         [(("data", 0, "bids", 0, 0), BAD_PRICE, False), (("data", 0, "asks", 0, 1), BAD_SIZE, False),
          (("data", 0, "checksum"), BAD_CHECKSUM, False), (("data", 0, "ts"), BAD_OKX_MS, True),
          (("data", 0, "asks"), BAD_LEVELS, True), (("action",), [None, 5, "partial"], True)],
         None),
    ],
}


def _set(obj: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    obj = orjson.loads(orjson.dumps(obj))  # a deep copy, faster than copy.deepcopy
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


@st.composite
def mutated_field(draw, venue: str) -> bytes:
    template, fields, _ = draw(st.sampled_from(TEMPLATES[venue]))
    path, bad_values, deletable = draw(st.sampled_from(fields))
    if deletable and draw(st.booleans()):
        return orjson.dumps(_set(template, path, None, delete=True))
    return orjson.dumps(_set(template, path, draw(st.sampled_from(bad_values))))


@st.composite
def crossed_quote(draw, venue: str) -> bytes:
    template, _, crossed = draw(st.sampled_from([t for t in TEMPLATES[venue] if t[2]]))
    ask = draw(st.floats(min_value=1e-6, max_value=1e6))
    bid = ask * draw(st.floats(min_value=1.0001, max_value=100.0))
    as_text = draw(st.booleans())
    frame = _set(template, crossed[0], f"{bid!r}" if as_text else bid)
    return orjson.dumps(_set(frame, crossed[1], f"{ask!r}" if as_text else ask))


@st.composite
def truncated(draw, venue: str) -> bytes:
    frame = orjson.dumps(draw(st.sampled_from(TEMPLATES[venue]))[0])
    return frame[:draw(st.integers(0, len(frame) - 1))]


@st.composite
def oversized(draw, venue: str) -> bytes:
    template = draw(st.sampled_from(TEMPLATES[venue]))[0]
    pad = "x" * draw(st.integers(MAX_FRAME_BYTES, 3 * MAX_FRAME_BYTES))
    padded = {**template, "pad": pad} if isinstance(template, dict) else [*template[:-2], pad, *template[-2:]]
    return orjson.dumps(padded)


GARBAGE = st.one_of(st.binary(max_size=120), st.text(max_size=120).map(str.encode)).filter(
    lambda frame: frame != b"pong")  # OKX's answer to a ping, a frame it really sends (hypothesis finds it)
JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-2**63, 2**63 - 1)
                    | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=8)


def malformed(venue: str):
    """(frame, must be dead-lettered)."""
    invalid = [mutated_field(venue), truncated(venue), oversized(venue), GARBAGE]
    if any(crossed for _, _, crossed in TEMPLATES[venue]):
        invalid.append(crossed_quote(venue))
    return st.one_of(*(s.map(lambda f: (f, True)) for s in invalid), JSON.map(lambda j: (orjson.dumps(j), False)))


VENUES = {name: get_venue(name, max_frame_bytes=MAX_FRAME_BYTES) for name in TEMPLATES}


def check(venue_name: str, frame: bytes, must_deadletter: bool) -> None:
    parsed = VENUES[venue_name].parse(frame, NOW)  # an exception here fails the test: none may escape
    outcomes = [bool(parsed.ticks or parsed.trades), parsed.ignored is not None, parsed.deadletter is not None]
    assert outcomes.count(True) == 1, (frame, parsed)
    if must_deadletter:
        assert isinstance(parsed.deadletter, str) and parsed.deadletter, (frame, parsed)
    for tick in parsed.ticks:
        assert tick_from_dict(tick.to_json_dict()) == tick


@pytest.mark.parametrize("venue_name", sorted(TEMPLATES))
def test_templates_are_valid_frames(venue_name):
    for template, _, _ in TEMPLATES[venue_name]:
        parsed = VENUES[venue_name].parse(orjson.dumps(template), NOW)
        # one tick or one trade, and neither ignored nor dead-lettered: each mutation then breaks a valid frame
        assert (len(parsed.ticks) + len(parsed.trades), parsed.ignored, parsed.deadletter) == (1, None, None), \
            (template, parsed)


@FUZZ
@given(binance=malformed("binance"), coinbase=malformed("coinbase"), gemini=malformed("gemini"),
       kraken=malformed("kraken"))
def test_malformed_frames_never_raise_and_invalid_ones_are_dead_lettered(binance, coinbase, gemini, kraken):
    """One frame per parser an example: 10,000 examples give each parser 10,000 frames in one search."""
    check("binance", *binance)
    check("coinbase", *coinbase)
    check("gemini", *gemini)
    check("kraken", *kraken)


@FUZZ
@given(okx=malformed("okx"))
def test_malformed_okx_frames_never_raise_and_invalid_ones_are_dead_lettered(okx):
    check("okx", *okx)
