"""The normalized trade, on the `trades` topic: checked by the same number and time rules as a tick."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.contracts.tick import InvalidTick, decode_json, epoch_ms, number, parse_symbol, parse_venue

SIDES = (None, "buy", "sell")


@dataclass(slots=True)
class Trade:
    venue: str
    symbol: str
    price: float
    size: float
    side: str | None  # "buy" or "sell" (taker side) when the venue says
    ts: int  # epoch ms, exchange time
    trade_id: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """As on the `trades` topic, without the fields the venue did not give."""
        return {name: value for name, value in (("venue", self.venue), ("symbol", self.symbol), ("price", self.price),
                                                ("size", self.size), ("side", self.side), ("ts", self.ts),
                                                ("trade_id", self.trade_id)) if value is not None}


def make_trade(venue: str, symbol: str, price: Any, size: Any, side: str | None, ts: Any,
               trade_id: Any = None) -> Trade:
    """A trade checked by the tick rules: finite positive price, finite non-negative size, ms time."""
    price = number(price, "price", required=True)
    if price <= 0:
        raise InvalidTick(f"field 'price' must be > 0, got {price}")
    size = number(size, "size", required=True)
    if size < 0:
        raise InvalidTick(f"field 'size' must be >= 0, got {size}")
    return Trade(venue, symbol, price, size, side, epoch_ms(ts), None if trade_id is None else str(trade_id))


def trade_from_dict(obj: Any) -> Trade:
    """Validate a decoded JSON object as the producer writes a trade (docs/ticks.md); InvalidTick names the field."""
    if not isinstance(obj, dict):
        raise InvalidTick(f"a trade must be a JSON object, got {type(obj).__name__}")
    side = obj.get("side")
    if side not in SIDES:
        raise InvalidTick(f"field 'side' must be 'buy', 'sell' or null, got {str(side)[:40]!r}")
    return make_trade(parse_venue(obj.get("venue")), parse_symbol(obj.get("symbol")), obj.get("price"),
                      obj.get("size"), side, obj.get("ts"), obj.get("trade_id"))


def decode_trade(value: bytes | str | None) -> Trade:
    """A trade from one JSON record (a `trades` value, a JSONL line); InvalidTick says what is wrong."""
    return trade_from_dict(decode_json(value))
