"""Binance spot (and Binance.US, same wire format) combined streams: bookTicker -> ticks, aggTrade -> trades.

- Spot bookTicker frames carry no event time: the tick uses `E` when a frame has one, else the time the
  frame was received. `u` (the order-book update id) becomes the sequence of the symbol.
- Wire symbols ("BTCUSDT") have no separator; they are split at a known quote asset (QUOTES).
- depthUpdate and kline frames are ignored: bookTicker already gives the top of book, candles are not used.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
)

# Quote assets Binance lists; longest first so "USDT" wins over "USD" for "BTCUSDT".
QUOTES = tuple(sorted(("USDT", "BUSD", "USDC", "TUSD", "FDUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "XRP", "TRX",
                       "DOGE", "DOT", "EUR", "USD", "TRY", "GBP", "AUD", "BRL", "RUB", "UAH", "BIDR", "IDRT", "NGN",
                       "ZAR", "PLN", "RON", "ARS", "JPY", "MXN", "COP", "CZK"), key=len, reverse=True))

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT",
                   "ETH/BTC", "BNB/BTC", "SOL/BTC", "BNB/ETH", "XRP/BTC")

IGNORED_EVENTS = {
    "depthUpdate": "depth: order-book diffs are not used, bookTicker gives the top of book",
    "kline": "kline: candles are not used",
}


def split_symbol(native: str) -> str | None:
    """"NKNUSDT" -> "NKN/USDT" by the quote-asset table; None when no known quote ends the name."""
    native = native.upper()
    for quote in QUOTES:
        if native.endswith(quote) and len(native) > len(quote):
            base = native[: -len(quote)]
            return f"{base}/{quote}" if base.isalnum() else None
    return None


class Binance(VenueParser):
    def __init__(self, symbols: Iterable[str] | None = DEFAULT_SYMBOLS, *, name: str = "binance",
                 host: str = "stream.binance.com:9443", max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        self.name = name
        self.host = host
        super().__init__(symbols, max_frame_bytes=max_frame_bytes, book_levels=book_levels)

    def native_names(self, symbol: str) -> Iterable[str]:
        return (symbol.replace("/", ""),)

    def normalize_native(self, native: str) -> str | None:
        return split_symbol(native)

    def stream_url(self, symbols: list[str]) -> str:
        streams = [f"{s.replace('/', '').lower()}@{channel}" for s in symbols for channel in ("bookTicker", "aggTrade")]
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
        reason = IGNORED_EVENTS.get(event) if isinstance(event, str) else None
        if reason is None:
            raise BadFrame(f"unexpected event type {str(event)[:40]!r}")
        return ignored(reason)
