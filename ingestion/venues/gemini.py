"""Gemini market data v2 (wss://api.gemini.com/v2/marketdata), channel `l2`: book ticks and trades.

- `l2_updates` frames carry `changes` [side, price, qty] ("buy" bids, "sell" asks; qty "0" deletes). The one
  that answers the subscription is the whole book and also holds `trades` (the symbol's latest trades) and
  `auction_events`; later ones are deltas. Gemini sends no sequence numbers and no snapshot type, so the frame
  with `trades` is what starts (or, after a reconnect, restarts) a book; a delta before it is ignored.
- l2 has no top-of-book ticker: its ticks are book ticks (docs/ticks.md), dated when received, as the
  updates carry no time. `trade` events -> trades (`side` is the taker's, `timestamp` epoch ms).
- Wire symbols ("BTCUSD") have no separator; they are split at a known quote asset (QUOTES).
- Ignored: heartbeats, subscription acks, auction events. A malformed l2_updates discards the book and
  reopens the connection, since the book may have missed it.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.books.book import OrderBook
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
from ingestion.venues.books import BOOK_ERRORS, UPDATE_BEFORE_SNAPSHOT, apply_changes, discard, emit

# Quote assets Gemini lists; longest first so "GUSD" wins over "USD" for "BTCGUSD".
QUOTES = tuple(sorted(("USD", "GUSD", "USDT", "USDC", "DAI", "EUR", "GBP", "SGD", "AUD", "CAD", "BTC", "ETH", "LTC",
                       "BCH"), key=len, reverse=True))

DEFAULT_SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD", "DOGE/USD", "ETH/BTC", "BTC/EUR", "ETH/EUR",
                   "BTC/GBP", "ETH/GBP")

IGNORED_TYPES = {
    "heartbeat": "heartbeat",
    "subscription_ack": "subscription ack",
    "auction_open": "auction: auction events are not used",
    "auction_indicative": "auction: auction events are not used",
    "auction_result": "auction: auction events are not used",
}
SIDES = {"buy": "buy", "sell": "sell"}


def split_symbol(native: str) -> str | None:
    """"LINKETH" -> "LINK/ETH" by the quote-asset table; None when no known quote ends the name."""
    return split_by_quote(native, QUOTES)


class Gemini(VenueParser):
    name = "gemini"

    def __init__(self, symbols: Iterable[str] | None = DEFAULT_SYMBOLS, *,
                 url: str = "wss://api.gemini.com/v2/marketdata", max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        self.url = url
        self._books: dict[str, OrderBook] = {}
        super().__init__(symbols, max_frame_bytes=max_frame_bytes, book_levels=book_levels)

    def native_names(self, symbol: str) -> Iterable[str]:
        return (symbol.replace("/", ""),)

    def normalize_native(self, native: str) -> str | None:
        return split_symbol(native)

    def stream_url(self, symbols: list[str]) -> str:
        return self.url

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        return [{"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": [s.replace("/", "")
                                                                                   for s in symbols]}]}]

    def parse_message(self, message: Any, received_ms: int) -> Parsed:
        message = expect_dict(message, "a Gemini frame")
        kind = message.get("type")
        if kind == "l2_updates":
            return self._l2_updates(message, received_ms)
        if kind == "trade":
            return Parsed(trades=[self._trade(message)])
        if kind == "error" or message.get("result") == "error":
            raise BadFrame(f"venue error: {str(message.get('reason'))[:100]} {str(message.get('message'))[:100]}")
        reason = IGNORED_TYPES.get(kind) if isinstance(kind, str) else None
        if reason is None:
            raise BadFrame(f"unexpected message type {str(kind)[:40]!r}")
        return ignored(reason)

    def _trade(self, item: dict):
        return make_trade(self.name, self.symbol(item["symbol"]), item["price"], item["quantity"],
                          SIDES.get(item.get("side")), item["timestamp"], item.get("event_id"))

    def _l2_updates(self, message: dict, received_ms: int) -> Parsed:
        symbol = self.symbol(message["symbol"])
        full = "trades" in message
        if full:
            self._books[symbol] = OrderBook()
            self.forget_book(symbol)
        book = self._books.get(symbol)
        if book is None:
            return ignored(UPDATE_BEFORE_SNAPSHOT)
        try:
            apply_changes(book, message["changes"])
            trades = [self._trade(expect_dict(item, "a trade of the l2_updates")) for item in message["trades"]] \
                if full else []
        except BOOK_ERRORS as exc:
            return discard(self, self._books, symbol, "l2_updates", exc)
        parsed = emit(self, symbol, book, received_ms)
        if trades:
            return Parsed(ticks=parsed.ticks, trades=trades)
        return parsed
