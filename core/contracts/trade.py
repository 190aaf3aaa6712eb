"""The normalized trade, on the `trades` topic: checked by the same number and time rules as a tick."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.contracts.tick import InvalidTick, epoch_ms, number


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


def make_trade(venue: str, symbol: str, price: Any, size: Any, side: str | None, ts: int,
               trade_id: Any = None) -> Trade:
    """A trade checked by the tick rules: finite positive price, finite non-negative size, ms time."""
    price = number(price, "price", required=True)
    if price <= 0:
        raise InvalidTick(f"field 'price' must be > 0, got {price}")
    size = number(size, "size", required=True)
    if size < 0:
        raise InvalidTick(f"field 'size' must be >= 0, got {size}")
    return Trade(venue, symbol, price, size, side, epoch_ms(ts), None if trade_id is None else str(trade_id))
