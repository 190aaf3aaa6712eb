"""Kraken: WebSocket v2 (what the live connector uses) and the v1 array frames of older recordings.

- v2 `ticker` -> ticks (bid, bid_qty, ask, ask_qty; `timestamp` when sent, else the received time);
  v2 `trade` -> trades. Subscribed with event_trigger "bbo" so a tick follows every top-of-book change.
- v1 `[channelID, {"a": [price, wholeLot, lotVolume], "b": [...], ...}, "ticker", "XBT/USD"]` -> a tick at
  the received time (v1 tickers carry no time); sizes are the lot volumes. v1 `trade` arrays -> trades.
- Ignored: v1 `book-*` and v2 `book` (depth not used, ticker gives the top of book), heartbeat,
  systemStatus/status, subscriptionStatus and v2 method acks. A subscription error is dead-lettered.
- Kraken's own asset names are mapped: XBT -> BTC, XDG -> DOGE.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.contracts.tick import number, tick_from_values
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

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "ETH/BTC", "SOL/BTC",
                   "XRP/BTC", "BTC/USD", "ETH/USD", "USDT/USD")

KRAKEN_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
KRAKEN_NAMES = {normal: kraken for kraken, normal in KRAKEN_ASSETS.items()}
IGNORED_EVENTS = {"heartbeat": "heartbeat", "systemStatus": "system status", "subscriptionStatus": "subscription ack",
                  "pong": "pong"}
IGNORED_CHANNELS = {"heartbeat": "heartbeat", "status": "system status",
                    "book": "book: order-book depth is not used, ticker gives the top of book"}
V1_SIDES = {"b": "buy", "s": "sell"}


class Kraken(VenueParser):
    name = "kraken"

    def __init__(self, symbols: Iterable[str] | None = DEFAULT_SYMBOLS, *, url: str = "wss://ws.kraken.com/v2",
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        self.url = url
        super().__init__(symbols, max_frame_bytes=max_frame_bytes, book_levels=book_levels)

    def native_names(self, symbol: str) -> Iterable[str]:
        base, quote = symbol.split("/")
        v1 = f"{KRAKEN_NAMES.get(base, base)}/{KRAKEN_NAMES.get(quote, quote)}"
        return (symbol, v1)

    def normalize_native(self, native: str) -> str | None:
        base, slash, quote = native.partition("/")
        if not (slash and base.isalnum() and quote.isalnum() and native.isupper()):
            return None
        return f"{KRAKEN_ASSETS.get(base, base)}/{KRAKEN_ASSETS.get(quote, quote)}"

    def stream_url(self, symbols: list[str]) -> str:
        return self.url

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        return [{"method": "subscribe",
                 "params": {"channel": "ticker", "symbol": list(symbols), "event_trigger": "bbo"}},
                {"method": "subscribe", "params": {"channel": "trade", "symbol": list(symbols)}}]

    def parse_message(self, message: Any, received_ms: int) -> Parsed:
        if isinstance(message, list):
            return self._parse_v1_array(message, received_ms)
        message = expect_dict(message, "a Kraken frame")
        if "method" in message:
            if message.get("success") is False:
                raise BadFrame(f"venue error: {str(message.get('error'))[:200]}")
            return ignored(f"{str(message['method'])[:40]} ack")
        if "event" in message:
            event = message["event"]
            if message.get("status") == "error":
                raise BadFrame(f"venue error: {str(message.get('errorMessage'))[:200]}")
            reason = IGNORED_EVENTS.get(event) if isinstance(event, str) else None
            if reason is None:
                raise BadFrame(f"unexpected event {str(event)[:40]!r}")
            return ignored(reason)
        channel = message["channel"]
        if channel == "ticker":
            return Parsed(ticks=[self._v2_tick(expect_dict(item, "a ticker entry"), received_ms)
                                 for item in _entries(message)])
        if channel == "trade":
            return Parsed(trades=[self._v2_trade(expect_dict(item, "a trade entry")) for item in _entries(message)])
        reason = IGNORED_CHANNELS.get(channel) if isinstance(channel, str) else None
        if reason is None:
            raise BadFrame(f"unexpected channel {str(channel)[:40]!r}")
        return ignored(reason)

    def _v2_tick(self, item: dict, received_ms: int):
        ts = iso_ms(item["timestamp"], "timestamp") if "timestamp" in item else received_ms
        return tick_from_values(self.name, self.symbol(item["symbol"]), item["bid"], item["ask"], item.get("bid_qty"),
                                item.get("ask_qty"), ts)

    def _v2_trade(self, item: dict):
        return make_trade(self.name, self.symbol(item["symbol"]), item["price"], item["qty"], item.get("side"),
                          iso_ms(item["timestamp"], "timestamp"), item.get("trade_id"))

    def _parse_v1_array(self, message: list, received_ms: int) -> Parsed:
        if len(message) < 4:
            raise BadFrame(f"a Kraken v1 array frame has at least 4 elements, got {len(message)}")
        channel, pair = message[-2], message[-1]
        if not isinstance(channel, str):
            raise BadFrame("a Kraken v1 array frame must name its channel in the next-to-last element")
        if channel.startswith("book"):
            return ignored(IGNORED_CHANNELS["book"])
        symbol = self.symbol(pair)
        if channel == "ticker":
            payload = expect_dict(message[1], "the v1 ticker payload")
            bid, ask = payload["b"], payload["a"]
            return Parsed(ticks=[tick_from_values(self.name, symbol, bid[0], ask[0], bid[2], ask[2], received_ms)])
        if channel == "trade":
            if not isinstance(message[1], list) or not message[1]:
                raise BadFrame("the v1 trade payload must be a non-empty list of trades")
            return Parsed(trades=[make_trade(self.name, symbol, price, volume, V1_SIDES.get(side),
                                             _seconds_to_ms(when))
                                  for price, volume, when, side, *_ in message[1]])
        raise BadFrame(f"unexpected channel {channel[:40]!r}")


def _entries(message: dict) -> list:
    data = message["data"]
    if not isinstance(data, list) or not data:
        raise BadFrame("field 'data' must be a non-empty list")
    return data


def _seconds_to_ms(value: Any) -> int:
    """v1 trade times are seconds as strings ("1618678142.557535")."""
    return round(number(value, "time", required=True) * 1000)
