"""Helpers shared by the dashboard tests (a module of its own: conftest is not importable by name)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ascep.services import Service, start_dashboard
from core.contracts.signal import Signal, route_of, signal_id

# A database of its own on the shared test Redis, so flushing it between tests touches nobody else.
DASHBOARD_DB = 9
MIN_PROFIT_BPS = "2.5"  # an override the server must pick up from its environment


# Anyone may read, as on `ascep up`'s stack (most tests read without logging in), and the rate limits are out of
# the way: every test's anonymous requests count against one address. test_security.py tests both.
OPEN = {"ASCEP_DASHBOARD__ANONYMOUS_READ": "true",
        **{f"ASCEP_DASHBOARD__RATE_LIMITS__{name}": "1000000/1s" for name in ("LOGIN", "RULE_WRITE", "RULE_TEST",
                                                                           "BACKTEST")}}


def start_open_dashboard(redis_url: str, log_dir: Path, env: dict[str, str] | None = None, **options) -> Service:
    """An OPEN dashboard with a state directory (accounts database, secret key) of its own; `env` may say
    otherwise."""
    state_dir = tempfile.mkdtemp(prefix="state-", dir=log_dir)
    return start_dashboard(redis_url, log_dir, env={**OPEN, "ASCEP_STATE_DIR": state_dir, **(env or {})}, **options)


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
