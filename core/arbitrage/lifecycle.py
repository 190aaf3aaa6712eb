"""One signal per opportunity: it opens, updates while it lasts, and closes.

Detectors say, tick by tick, which routes are profitable now; this book turns that into signal
states. The id is fixed when the opportunity opens (route + opening event time), so a replay of
the same ticks gives the same ids and the same sequence of states.
"""
from __future__ import annotations

from core.contracts.signal import Leg, Signal, SignalType, signal_id

SIZE_DIGITS = 12  # significant: a size is a product of rates, whose last digits are float noise (604311.9715212162)


def _size(size: float | None) -> float | None:
    return None if size is None else float(f"{size:.{SIZE_DIGITS}g}")


class OpportunityBook:
    """The open signal of each route: it holds the opportunity's peak, which is all an update is judged by."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: dict[tuple[str, ...], Signal] = {}

    def profitable(self, signal_type: SignalType, route: tuple[str, ...], legs: list[Leg], profit_bps: float,
                   size: float | None, event_time: int, now_ms: int) -> Signal | None:
        """Record that `route` is profitable at `event_time`; return the signal if it opened or peaked."""
        current = self.open.get(route)
        if current is None:
            current = {
                "id": signal_id(signal_type, route, event_time), "type": signal_type, "legs": legs,
                "profit_bps": round(profit_bps, 6), "size": _size(size), "event_time": event_time,
                "updated_at": event_time, "closed_at": None, "status": "open", "detected_at": now_ms,
            }
            self.open[route] = current
            return current.copy()
        rounded = round(profit_bps, 6)  # compared as stored: a gain below the stored precision is no new peak
        if rounded > current["profit_bps"]:
            current.update({"legs": legs, "profit_bps": rounded, "size": _size(size), "updated_at": event_time})
            return current.copy()
        return None

    def unprofitable(self, route: tuple[str, ...], event_time: int) -> Signal | None:
        """Close `route` if it was open; return the closed signal."""
        return self.close(route, event_time) if route in self.open else None

    def close(self, route: tuple[str, ...], event_time: int) -> Signal:
        """Close `route`, which must be open; for callers that already hold its signal."""
        current = self.open.pop(route)
        current.update({"status": "closed", "closed_at": event_time,
                        "updated_at": max(current["updated_at"], event_time)})
        return current
