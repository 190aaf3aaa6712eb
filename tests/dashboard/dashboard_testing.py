"""Helpers shared by the dashboard tests (a module of its own: conftest is not importable by name)."""
from __future__ import annotations

from typing import Any

from core.contracts.signal import Signal, public_view, route_of, signal_id
from core.contracts.times import signal_document

# A database of its own on the shared test Redis, so flushing it between tests touches nobody else.
DASHBOARD_DB = 9
MIN_PROFIT_BPS = "2.5"  # an override the server must pick up from its environment


def cross_exchange_signal(buy: tuple[str, float], sell: tuple[str, float], profit_bps: float, event_time: int,
                          detected_after_ms: int = 5, symbol: str = "BTC/USDT", size: float | None = 0.5,
                          closed_after_ms: int | None = None) -> Signal:
    """A cross-exchange signal shaped by the core.contracts.signal contract (id from the route and opening time)."""
    legs = [{"venue": buy[0], "symbol": symbol, "side": "buy", "price": buy[1]},
            {"venue": sell[0], "symbol": symbol, "side": "sell", "price": sell[1]}]
    closed = closed_after_ms is not None
    return {"id": signal_id("cross_exchange", route_of(legs), event_time), "type": "cross_exchange", "legs": legs,
            "profit_bps": profit_bps, "size": size, "event_time": event_time,
            "updated_at": event_time + (closed_after_ms or 0),
            "closed_at": event_time + closed_after_ms if closed else None,
            "status": "closed" if closed else "open", "detected_at": event_time + detected_after_ms}


def served(signal: Signal) -> dict[str, Any]:
    """A signal as the JSON API serves it: no null fields (the sink drops them), each time also in ISO 8601."""
    return signal_document(public_view(signal))
