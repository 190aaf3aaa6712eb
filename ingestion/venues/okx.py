"""OKX: the v5 public WebSocket (wss://ws.okx.com:8443/ws/v5/public), spot instruments.

- `tickers` -> ticks (bidPx, bidSz, askPx, askSz; `ts` in epoch ms as a string).
- `trades` -> trades (px, sz, side is the taker's, ts, tradeId).
- `books` (400 levels) -> book ticks at the frame's `ts`: a snapshot, then updates; the CRC32 of the top
  25 levels (core/books/checksums.py) is checked after each, and where the frame gives seqId/prevSeqId,
  an update must name the seqId applied last. A mismatch or a break in that chain discards the book:
  the frame is dead-lettered and the connection resynchronized. A checksum of 0 is no checksum (OKX has
  been seen sending 0 on every frame where it stopped computing them); the sequence chain still holds.
- Ignored: subscribe/unsubscribe acks, the connection-count notice and the text "pong". An `error`
  event is dead-lettered with OKX's code and message.
- Symbols: "BTC-USDT" <-> "BTC/USDT". Futures and swaps ("BTC-USD-220527", "UNI-USD-SWAP") are not spot
  pairs and map to no symbol: their frames are dead-lettered as unknown symbols.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.books.checksums import okx_checksum
from core.contracts.tick import tick_from_values
from core.contracts.trade import make_trade
from ingestion.venues.base import DEFAULT_BOOK_LEVELS, BadFrame, Parsed, VenueParser, expect_dict, ignored
from ingestion.venues.books import VerifiedBooks, text_levels

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "ETH/BTC", "SOL/BTC",
                   "XRP/BTC", "BTC/USDC", "ETH/USDC", "USDC/USDT")
CHANNELS = ("tickers", "trades", "books")
BOOK_DEPTH = 400  # what the `books` channel keeps
# A 400-level snapshot runs to ~30 KB; a busy instrument's can pass the shared 64 KiB default.
MAX_FRAME_BYTES = 1024 * 1024
IGNORED_EVENTS = {"subscribe": "subscription ack", "unsubscribe": "unsubscription ack",
                  "channel-conn-count": "connection count notice"}


class Okx(VenueParser):
    name = "okx"

    def __init__(self, symbols: Iterable[str] | None = DEFAULT_SYMBOLS, *,
                 url: str = "wss://ws.okx.com:8443/ws/v5/public", max_frame_bytes: int = MAX_FRAME_BYTES,
                 book_levels: int = DEFAULT_BOOK_LEVELS) -> None:
        self.url = url
        self.books = VerifiedBooks(self, okx_checksum, "checksum")
        self._seq: dict[str, int] = {}  # symbol -> seqId of the book's last applied frame
        super().__init__(symbols, max_frame_bytes=max_frame_bytes, book_levels=book_levels)

    def native_names(self, symbol: str) -> Iterable[str]:
        return (symbol.replace("/", "-"),)

    def normalize_native(self, native: str) -> str | None:
        parts = native.split("-")
        if len(parts) != 2 or not all(part.isalnum() and part.isupper() for part in parts):
            return None
        return f"{parts[0]}/{parts[1]}"

    def stream_url(self, symbols: list[str]) -> str:
        return self.url

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        return [{"op": "subscribe", "args": [{"channel": channel, "instId": native}
                                              for channel in CHANNELS
                                              for symbol in symbols for native in self.native_names(symbol)]}]

    def decode(self, frame: str | bytes) -> Any:
        """OKX answers a "ping" with the bare text "pong", which is no JSON."""
        if frame == "pong" or frame == b"pong":
            return "pong"
        return super().decode(frame)

    def parse_message(self, message: Any, received_ms: int) -> Parsed:
        if message == "pong":
            return ignored("pong")
        message = expect_dict(message, "an OKX frame")
        if "event" in message:
            event = message["event"]
            if event == "error":
                raise BadFrame(f"venue error {str(message.get('code'))[:20]}: {str(message.get('msg'))[:200]}")
            reason = IGNORED_EVENTS.get(event) if isinstance(event, str) else None
            if reason is None:
                raise BadFrame(f"unexpected event {str(event)[:40]!r}")
            return ignored(reason)
        arg = expect_dict(message["arg"], "field 'arg'")
        channel = arg["channel"]
        data = message["data"]
        if not isinstance(data, list) or not data:
            raise BadFrame("field 'data' must be a non-empty list")
        symbol = self.symbol(arg["instId"])
        if channel == "tickers":
            return Parsed(ticks=[tick_from_values(self.name, symbol, item["bidPx"], item["askPx"], item["bidSz"],
                                                  item["askSz"], int(item["ts"]))
                                 for item in (expect_dict(entry, "a ticker entry") for entry in data)])
        if channel == "trades":
            return Parsed(trades=[make_trade(self.name, symbol, item["px"], item["sz"], item.get("side"),
                                             int(item["ts"]), item.get("tradeId"))
                                  for item in (expect_dict(entry, "a trade entry") for entry in data)])
        if channel == "books":
            if len(data) != 1:
                raise BadFrame(f"a books frame carries one entry, got {len(data)}")
            return self._book(symbol, message.get("action"), expect_dict(data[0], "a books entry"))
        raise BadFrame(f"unexpected channel {str(channel)[:40]!r}")

    def _book(self, symbol: str, action: Any, item: dict) -> Parsed:
        bids, asks = text_levels(item["bids"], "bids"), text_levels(item["asks"], "asks")
        seq, prev = item.get("seqId"), item.get("prevSeqId")
        if action == "snapshot":
            book = self.books.snapshot(symbol, bids, asks, BOOK_DEPTH)
            self._seq.pop(symbol, None)
        elif action == "update":
            book = self.books.get(symbol)
            last = self._seq.get(symbol)
            if prev is not None and last is not None and prev != last:
                return self.books.discard(symbol, f"sequence gap on the {symbol} book: the update follows seqId "
                                                  f"{prev}, the book's last was {last}")
            for price, size in bids:
                book.set_bid(price, size)
            for price, size in asks:
                book.set_ask(price, size)
        else:
            raise BadFrame(f"a books frame has action snapshot or update, got {str(action)[:40]!r}")
        if seq is not None:
            self._seq[symbol] = seq
        checksum = item.get("checksum")
        if checksum is not None and type(checksum) is not int:
            raise BadFrame(f"field 'checksum' must be an integer, got {str(checksum)[:20]!r}")
        return self.books.checked(symbol, book, checksum or None, int(item["ts"]))

