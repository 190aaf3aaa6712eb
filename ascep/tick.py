"""The normalized tick: the one contract between ingestion and the Flink job.

Both sides validate with the same function so a tick the connector accepts is a tick the job
accepts, and a bad one is rejected with the same reason wherever it is caught.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

TICKS_TOPIC = "ticks"
TRADES_TOPIC = "trades"
DEADLETTER_TOPIC = "deadletter"
RULES_TOPIC = "rules"


class Tick(NamedTuple):
    """A top-of-book quote. A tuple, not a dataclass: the job handles millions and tuples are cheapest."""

    venue: str
    symbol: str
    bid: float
    ask: float
    bid_size: float | None
    ask_size: float | None
    ts: int

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"venue": self.venue, "symbol": self.symbol, "bid": self.bid, "ask": self.ask}
        if self.bid_size is not None:
            out["bid_size"] = self.bid_size
        if self.ask_size is not None:
            out["ask_size"] = self.ask_size
        out["ts"] = self.ts
        return out


class InvalidTick(ValueError):
    """Raised with a reason that names the offending field, so a dead letter says what was wrong."""


def number(value: Any, field: str, *, required: bool) -> float | None:
    """A finite float from a JSON number or numeric string; InvalidTick names `field` otherwise."""
    if value is None:
        if required:
            raise InvalidTick(f"missing field {field!r}")
        return None
    if isinstance(value, bool):
        raise InvalidTick(f"field {field!r} must be a number, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidTick(f"field {field!r} is not numeric: {value[:40]!r}") from None
    elif not isinstance(value, (int, float)):
        raise InvalidTick(f"field {field!r} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidTick(f"field {field!r} is not finite: {value}")
    return value


def parse_symbol(symbol: Any) -> str:
    if not isinstance(symbol, str):
        raise InvalidTick("field 'symbol' must be a string like 'BTC/USDT'")
    parts = symbol.split("/")
    if len(parts) != 2 or not all(p.isalnum() and p.isupper() for p in parts):
        raise InvalidTick(f"field 'symbol' must be BASE/QUOTE in upper case, got {symbol[:40]!r}")
    return symbol


def tick_from_dict(obj: Any) -> Tick:
    """Validate a decoded JSON object as a normalized tick; raise InvalidTick naming the field."""
    if not isinstance(obj, dict):
        raise InvalidTick(f"a tick must be a JSON object, got {type(obj).__name__}")
    venue = obj.get("venue")
    if not isinstance(venue, str) or not venue or venue != venue.lower() or ":" in venue:
        raise InvalidTick("field 'venue' must be a non-empty lowercase string without ':'")
    symbol = parse_symbol(obj.get("symbol"))
    return tick_from_values(venue, symbol, obj.get("bid"), obj.get("ask"), obj.get("bid_size"), obj.get("ask_size"),
                            obj.get("ts"))


def tick_from_values(venue: str, symbol: str, bid: Any, ask: Any, bid_size: Any, ask_size: Any, ts: Any) -> Tick:
    """The checks of tick_from_dict for values a venue parser already picked out of a frame.

    Parsers call this directly (venue and symbol come from their own tables) so a frame is checked by
    the same rules as a JSON tick without building an intermediate dict on the hot path.
    """
    bid = number(bid, "bid", required=True)
    ask = number(ask, "ask", required=True)
    if bid <= 0:
        raise InvalidTick(f"field 'bid' must be > 0, got {bid}")
    if ask <= 0:
        raise InvalidTick(f"field 'ask' must be > 0, got {ask}")
    if bid > ask:
        raise InvalidTick(f"crossed quote: bid {bid} > ask {ask}")
    bid_size = number(bid_size, "bid_size", required=False)
    ask_size = number(ask_size, "ask_size", required=False)
    for name, size in (("bid_size", bid_size), ("ask_size", ask_size)):
        if size is not None and size < 0:
            raise InvalidTick(f"field {name!r} must be >= 0, got {size}")
    return Tick(venue, symbol, bid, ask, bid_size, ask_size, epoch_ms(ts))


def epoch_ms(ts: Any, field: str = "ts") -> int:
    """Reject seconds or microseconds passed off as milliseconds: they would silently skew every window."""
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise InvalidTick(f"field {field!r} must be epoch milliseconds (a number)")
    if not 10**11 <= ts < 10**14:
        raise InvalidTick(f"field {field!r} is not epoch milliseconds: {ts}")
    return int(ts)
