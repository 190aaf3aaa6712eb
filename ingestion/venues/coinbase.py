"""Coinbase Exchange ws-feed: `ticker` -> ticks, `match`/`last_match` -> trades, `level2` -> book ticks.

- Tick time is the frame's `time` (ISO-8601, UTC; the received time if a ticker has none); `sequence` is the
  product's sequence number (shared by its ticker and match messages, and with gaps: the ticker channel is conflated).
- Sizes come from best_bid_size/best_ask_size, which the feed only sends since 2022 (absent -> None).
- In a match `side` is the MAKER's side, so the taker side recorded on the trade is the opposite.
- level2: a `snapshot` (bids/asks, the whole book) starts a product's book, each `l2update` ([side, price, size]
  changes, size "0" deletes) changes it; a book tick (docs/ticks.md) follows when its top levels change, dated by
  the update's `time`. The feed has no sequence numbers for level2: its order over one connection is the
  guarantee, and a reconnect re-sends every snapshot. An l2update before its product's snapshot is ignored;
  a malformed one discards the book and reopens the connection. The live connector does not subscribe level2
  (the full-book snapshot is megabytes, far over the frame limit): recorded and replayed sessions use it.
- Ignored: subscriptions (ack), heartbeat (keep-alive).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.books.book import OrderBook
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
    iso_ms,
)
from ingestion.venues.books import BOOK_ERRORS, UPDATE_BEFORE_SNAPSHOT, apply_changes, discard, emit, load_levels

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "ETH/BTC", "SOL/BTC",
                   "BTC/USD", "ETH/USD", "SOL/USD", "USDT/USD")

IGNORED_TYPES = {
    "subscriptions": "subscription ack",
    "heartbeat": "heartbeat",
}
TAKER_SIDE = {"buy": "sell", "sell": "buy"}


class Coinbase(VenueParser):
    name = "coinbase"

    def __init__(self, symbols: Iterable[str] | None = DEFAULT_SYMBOLS, *,
                 url: str = "wss://ws-feed.exchange.coinbase.com",
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        self.url = url
        self._books: dict[str, OrderBook] = {}
        super().__init__(symbols, max_frame_bytes=max_frame_bytes, book_levels=book_levels)

    def native_names(self, symbol: str) -> Iterable[str]:
        return (symbol.replace("/", "-"),)

    def normalize_native(self, native: str) -> str | None:
        base, dash, quote = native.partition("-")
        return f"{base}/{quote}" if dash and base.isalnum() and quote.isalnum() and native.isupper() else None

    def stream_url(self, symbols: list[str]) -> str:
        return self.url

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        products = [s.replace("/", "-") for s in symbols]
        return [{"type": "subscribe", "product_ids": products, "channels": ["ticker", "matches", "heartbeat"]}]

    def parse_message(self, message: Any, received_ms: int) -> Parsed:
        message = expect_dict(message, "a Coinbase frame")
        kind = message["type"]
        if kind == "ticker":
            symbol = self.symbol(message["product_id"])
            ts = iso_ms(message["time"], "time") if "time" in message else received_ms
            tick = tick_from_values(self.name, symbol, message["best_bid"], message["best_ask"],
                                    message.get("best_bid_size"), message.get("best_ask_size"), ts)
            sequence = message.get("sequence")
            return Parsed(ticks=[tick], sequence=(symbol, sequence) if type(sequence) is int else None)
        if kind == "l2update":
            return self._l2update(message)
        if kind == "snapshot":
            return self._snapshot(message, received_ms)
        if kind == "match" or kind == "last_match":
            side = TAKER_SIDE.get(message.get("side"))
            return Parsed(trades=[make_trade(self.name, self.symbol(message["product_id"]), message["price"],
                                             message["size"], side, iso_ms(message["time"], "time"),
                                             message.get("trade_id"))])
        if kind == "error":
            raise BadFrame(f"venue error: {str(message.get('message'))[:100]} {str(message.get('reason'))[:100]}")
        reason = IGNORED_TYPES.get(kind) if isinstance(kind, str) else None
        if reason is None:
            raise BadFrame(f"unexpected message type {str(kind)[:40]!r}")
        return ignored(reason)

    def _snapshot(self, message: dict, received_ms: int) -> Parsed:
        symbol = self.symbol(message["product_id"])
        book = self._books[symbol] = OrderBook()
        self.forget_book(symbol)
        try:
            ts = iso_ms(message["time"], "time") if "time" in message else received_ms
            load_levels(book, message["bids"], message["asks"])
        except BOOK_ERRORS as exc:
            return discard(self, self._books, symbol, "snapshot", exc)
        return emit(self, symbol, book, ts)

    def _l2update(self, message: dict) -> Parsed:
        symbol = self.symbol(message["product_id"])
        book = self._books.get(symbol)
        if book is None:
            return ignored(UPDATE_BEFORE_SNAPSHOT)
        try:
            ts = iso_ms(message["time"], "time")
            apply_changes(book, message["changes"])
        except BOOK_ERRORS as exc:
            return discard(self, self._books, symbol, "l2update", exc)
        return emit(self, symbol, book, ts)
