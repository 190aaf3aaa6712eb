"""Binance spot (and Binance.US, same wire format) combined streams: bookTicker -> ticks, aggTrade -> trades,
partial depth -> book ticks.

- Spot bookTicker frames carry no event time: the tick uses `E` when a frame has one, else the time the
  frame was received. `u` (the order-book update id) becomes the sequence of the symbol.
- `<symbol>@depth20@100ms` (what the live connector subscribes) sends the top 20 levels of each side every
  100 ms: each frame is the symbol's whole book, so no sequence rules apply and a bad frame needs no resync;
  a book tick (docs/ticks.md), dated when received (the frames carry no time), follows when its top levels
  change.
- `depthUpdate` diffs (`<symbol>@depth@100ms`: in the recordings, and live with `depth="depth@100ms"`) only
  make a book from a REST snapshot, by the U/u rules of core/books/diff_sync.py: diffs are buffered and
  ignored until one comes. With `depth="depth@100ms"` the first diff of a symbol asks for it
  (Parsed.snapshot) and the connector fetches it from `snapshot_url`; otherwise (and in a replay) diffs
  keep waiting. A gap discards the book and reopens the connection.
- Wire symbols ("BTCUSDT") have no separator; they are split at a known quote asset (QUOTES).
- kline frames are ignored: candles are not used.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.books.book import OrderBook
from core.books.diff_sync import DiffSync, OutOfSequence
from core.contracts.tick import tick_from_values
from core.contracts.trade import make_trade
from ingestion.venues.base import (
    DEFAULT_BOOK_LEVELS,
    DEFAULT_MAX_FRAME_BYTES,
    BadFrame,
    Parsed,
    VenueParser,
    expect_dict,
    ignored,
    split_by_quote,
)
from ingestion.venues.books import BOOK_ERRORS, discard, emit, load_levels

# Quote assets Binance lists; longest first so "USDT" wins over "USD" for "BTCUSDT".
QUOTES = tuple(sorted(("USDT", "BUSD", "USDC", "TUSD", "FDUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "XRP", "TRX",
                       "DOGE", "DOT", "EUR", "USD", "TRY", "GBP", "AUD", "BRL", "RUB", "UAH", "BIDR", "IDRT", "NGN",
                       "ZAR", "PLN", "RON", "ARS", "JPY", "MXN", "COP", "CZK"), key=len, reverse=True))

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT",
                   "ETH/BTC", "BNB/BTC", "SOL/BTC", "BNB/ETH", "XRP/BTC")

PARTIAL_DEPTH, DIFF_DEPTH = "depth20@100ms", "depth@100ms"
IGNORED_EVENTS = {"kline": "kline: candles are not used"}
DIFFS_WAITING = "book: diffs waiting for a REST snapshot"
DIFF_STALE = "book: diff older than the book (u <= its last update id)"
Diff = tuple[list, list]  # a depthUpdate's bids and asks


def split_symbol(native: str) -> str | None:
    """"NKNUSDT" -> "NKN/USDT" by the quote-asset table; None when no known quote ends the name."""
    return split_by_quote(native, QUOTES)


class Binance(VenueParser):
    def __init__(self, symbols: Iterable[str] | None = DEFAULT_SYMBOLS, *, name: str = "binance",
                 host: str = "stream.binance.com:9443", rest: str = "https://api.binance.com",
                 depth: str = PARTIAL_DEPTH, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        if depth not in (PARTIAL_DEPTH, DIFF_DEPTH):
            raise ValueError(f"depth must be {PARTIAL_DEPTH!r} or {DIFF_DEPTH!r}, got {depth!r}")
        self.name = name
        self.host = host
        self.rest = rest
        self.streams = ("bookTicker", "aggTrade", depth)
        self._fetches_snapshots = depth == DIFF_DEPTH  # else diffs (a replay of a recording) only ever wait
        self._books: dict[str, OrderBook] = {}
        self._diffs: dict[str, DiffSync[Diff]] = {}
        super().__init__(symbols, max_frame_bytes=max_frame_bytes, book_levels=book_levels)

    def native_names(self, symbol: str) -> Iterable[str]:
        return (symbol.replace("/", ""),)

    def normalize_native(self, native: str) -> str | None:
        return split_symbol(native)

    def stream_url(self, symbols: list[str]) -> str:
        streams = [f"{s.replace('/', '').lower()}@{channel}" for s in symbols for channel in self.streams]
        return f"wss://{self.host}/stream?streams={'/'.join(streams)}"

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        return []  # combined streams are chosen in the URL

    def parse_message(self, message: Any, received_ms: int) -> Parsed:
        if type(message) is not dict:
            expect_dict(message, "a Binance frame")
        if "id" in message:
            if "error" in message:
                raise BadFrame(f"venue error: {str(message['error'])[:200]}")
            if "result" in message:
                return ignored("subscription ack")
        data = message["data"] if "stream" in message else message
        if type(data) is not dict:
            expect_dict(data, "field 'data'")
        event = data.get("e")
        if event is None and "lastUpdateId" in data:
            return self._partial_depth(message, data, received_ms)
        if event is None or event == "bookTicker":  # the hot path: keep it free of extra calls
            native = data["s"]
            symbol = self._by_native.get(native) if type(native) is str else None
            if symbol is None:
                symbol = self.symbol(native)
            tick = tick_from_values(self.name, symbol, data["b"], data["a"], data.get("B"), data.get("A"),
                                    data.get("E", received_ms))
            update_id = data.get("u")
            return Parsed([tick], [], None, None, (symbol, update_id) if type(update_id) is int else None)
        if event == "aggTrade" or event == "trade":
            # `m` says the buyer was the maker, so the taker (aggressor) sold.
            side = "sell" if data.get("m") is True else "buy"
            trade_id = data.get("a") if event == "aggTrade" else data.get("t")
            return Parsed(trades=[make_trade(self.name, self.symbol(data["s"]), data["p"], data["q"], side, data["T"],
                                             trade_id)])
        if event == "depthUpdate":
            return self._diff(data)
        reason = IGNORED_EVENTS.get(event) if isinstance(event, str) else None
        if reason is None:
            raise BadFrame(f"unexpected event type {str(event)[:40]!r}")
        return ignored(reason)

    def _partial_depth(self, message: dict, data: dict, received_ms: int) -> Parsed:
        """A `<symbol>@depth<n>@100ms` frame: the symbol is only in the stream's name. The frame is the whole book,
        so it is built afresh and kept nowhere: a bad one is only a dead letter, the next frame stands alone."""
        stream = message.get("stream")
        if not isinstance(stream, str):
            raise BadFrame("a partial-depth frame needs its combined-stream name ('stream') for the symbol")
        symbol = self.symbol(stream.partition("@")[0].upper())
        book = OrderBook()
        load_levels(book, data["bids"], data["asks"])
        return emit(self, symbol, book, received_ms)

    def _diff(self, data: dict) -> Parsed:
        symbol = self.symbol(data["s"])
        first_id, last_id, ts = data["U"], data["u"], data["E"]
        if type(first_id) is not int or type(last_id) is not int:
            raise BadFrame("fields 'U' and 'u' must be integer update ids")
        sync = self._diffs.setdefault(symbol, DiffSync())
        if not sync.synced:
            sync.diff(first_id, last_id, (data["b"], data["a"]))
            # Asked for once per wait: a failed fetch or a gap forgets the book, and with it this DiffSync.
            wanted = self._fetches_snapshots and sync.buffered == 1
            return Parsed(ignored=DIFFS_WAITING, snapshot=symbol if wanted else None)
        try:
            ready = sync.diff(first_id, last_id, (data["b"], data["a"]))
        except OutOfSequence as exc:
            return discard(self, self._books, symbol, "depthUpdate", exc)
        if not ready:
            return ignored(DIFF_STALE)
        return self._apply_diffs(symbol, ready, ts)

    def snapshot_url(self, symbol: str) -> str:
        return f"{self.rest}/api/v3/depth?symbol={symbol.replace('/', '')}&limit=1000"

    def forget_book(self, symbol: str) -> None:
        super().forget_book(symbol)
        self._books.pop(symbol, None)
        self._diffs.pop(symbol, None)

    def rest_snapshot(self, symbol: str, snapshot: Any, ts: int) -> Parsed:
        """Start `symbol`'s diff book from a REST /api/v3/depth answer ({"lastUpdateId", "bids", "asks"}) and the
        diffs buffered since; a gap between them discards it (and asks for a resync)."""
        snapshot = expect_dict(snapshot, "a depth snapshot")
        last_update_id = snapshot["lastUpdateId"]
        if type(last_update_id) is not int:
            raise BadFrame("field 'lastUpdateId' must be an integer update id")
        book = self._books[symbol] = OrderBook()
        try:
            load_levels(book, snapshot["bids"], snapshot["asks"])
            ready = self._diffs.setdefault(symbol, DiffSync()).snapshot(last_update_id)
        except (*BOOK_ERRORS, OutOfSequence) as exc:
            return discard(self, self._books, symbol, "depth snapshot", exc)
        return self._apply_diffs(symbol, ready, ts)

    def _apply_diffs(self, symbol: str, diffs: list[Diff], ts: int) -> Parsed:
        book = self._books[symbol]
        try:
            for bids, asks in diffs:
                load_levels(book, bids, asks, ("b", "a"))
        except BOOK_ERRORS as exc:
            return discard(self, self._books, symbol, "depthUpdate", exc)
        return emit(self, symbol, book, ts)
