"""Helpers shared by the dashboard tests (a module of its own: conftest is not importable by name)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ascep.services import Service, start_dashboard
from core.contracts.signal import Signal, public_view, route_of, signal_id
from core.contracts.tick import Tick
from core.contracts.times import signal_document

# A database of its own on the shared test Redis, so flushing it between tests touches nobody else.
DASHBOARD_DB = 9
MIN_PROFIT_BPS = "2.5"  # an override the server must pick up from its environment


# Anyone may read, as on `ascep up`'s stack (most tests read without logging in), and the rate limits are out of
# the way: every test's anonymous requests count against one address. test_security.py tests both.
OPEN = {"ASCEP_DASHBOARD__ANONYMOUS_READ": "true",
        **{f"ASCEP_DASHBOARD__RATE_LIMITS__{name}": "1000000/1s" for name in ("LOGIN", "RULE_WRITE", "RULE_TEST",
                                                                           "BACKTEST")}}


@dataclass(frozen=True)
class Accounts:
    """An editor and a viewer with an API token each (the text, as `ascep users token create` prints it), in a
    state directory that several dashboards may share (its SQLite database)."""

    state_dir: Path
    editor: str
    viewer: str


def make_accounts(state_dir: Path) -> Accounts:
    def users(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "-m", "ascep.cli", "users", *args], input=stdin, text=True,
                              capture_output=True, timeout=60, env={**os.environ, "ASCEP_STATE_DIR": str(state_dir)})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    for role in ("editor", "viewer"):
        users("create", role, "--role", role, "--password-stdin", stdin=f"the {role}'s long passphrase\n")
    return Accounts(state_dir, users("token", "create", "editor"), users("token", "create", "viewer"))


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


def served(signal: Signal) -> dict[str, Any]:
    """A signal as the JSON API serves it: no null fields (the sink drops them), each time also in ISO 8601."""
    return signal_document(public_view(signal))


# The lake of the dashboard with a broker (conftest's rules_dashboard), written once: FX ticks a backtest reads,
# and BTC/USDT quotes around a signal.
FX_T0 = 1_700_000_000_000
# SPREAD over FX_TICKS: open at FX_T0 + 5, closed at FX_T0 + 9, open at FX_T0 + 20; the tick at FX_T0 + 3 comes
# after the one at FX_T0 + 9, behind the newest event time already taken: late.
SPREAD = 'IF price("EUR/USD") - price("USD/EUR") > 0.001 THEN WIDE'
FX_TICKS = [Tick("fx", "EUR/USD", 1.1, 1.1, None, None, FX_T0),
            Tick("fx", "USD/EUR", 1.09, 1.09, None, None, FX_T0 + 5),
            Tick("fx", "USD/EUR", 1.0995, 1.0995, None, None, FX_T0 + 9),
            Tick("fx", "USD/EUR", 1.09, 1.09, None, None, FX_T0 + 3),
            Tick("fx", "USD/EUR", 1.09, 1.09, None, None, FX_T0 + 20),
            Tick("fx", "BTC/USD", 9, 9, None, None, FX_T0 + 30)]
QUOTES_T0 = 1_763_701_200_000
QUOTE_TICKS = [Tick(venue, "BTC/USDT", 100.0 + at / 1e6, 100.1, 1.0, 1.0, QUOTES_T0 + at)
               for venue, times in (("binance", (-40_000, -20_000, 0, 1_000, 2_000, 31_000, 40_000)),
                                    ("kraken", (500, 2_500)), ("okx", (1_000,)))
               for at in times] + [Tick("binance", "ETH/USDT", 3000.0, 3000.5, 1.0, 1.0, QUOTES_T0 + 1_000)]


def write_rules_lake(root: Path) -> Path:
    """The lake above, as the job's LakeWriter writes it: one topic incarnation, partition 0."""
    from lake.storage import open_lake
    from lake.writer import LakeWriter

    writer = LakeWriter(open_lake(str(root)), topic_id="01a23131-4080-75e1-9f0a-df66b0ae3303")
    for offset, tick in enumerate([*FX_TICKS, *sorted(QUOTE_TICKS, key=lambda t: t.ts)]):
        writer.add_ticks(0, offset, (tick,))
    writer.close()
    return root


@contextmanager
def serve_dashboard(redis_url: str, service_logs: Path, env: dict[str, str]) -> Iterator[str]:
    """An OPEN dashboard's base URL while in the block; after it, the dashboard must have printed its problems
    only."""
    server = start_open_dashboard(redis_url, service_logs, env=env)
    try:
        yield server.address
    finally:
        server.stop()
    printed = server.log_path.read_text().splitlines()
    chatter = [line for line in printed
               if not line.startswith("{") or json.loads(line)["level"] not in ("warning", "error")]
    assert chatter == [], "the dashboard printed more than its problems"
