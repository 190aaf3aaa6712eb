"""The JSON API against a real server and a Redis written by the job's RedisSink."""
from __future__ import annotations

import argparse
import math
import os
import re
import time
from datetime import UTC, datetime

import pytest
import requests
from dashboard_testing import MIN_PROFIT_BPS, served, start_open_dashboard
from float_noise import default_market_signals, noisy_floats

from ascep.commands import dashboard as dashboard_command
from ascep.services import free_port
from core.clock import now_ms
from core.contracts.redis_keys import progress_field, signal_key, topic_end_field
from core.contracts.tick import Tick
from core.progress import Progress
from core.settings import Settings

pytestmark = pytest.mark.integration

T0 = 1_763_700_000_000


def test_signals_are_listed_newest_first_and_limited(api, sink, make_signal):
    written = [make_signal(("kraken", 100.0), ("binance", 100.5), 9.5, T0 + i * 1000) for i in (2, 0, 1)]
    assert sink.write_signals(written) == 3
    newest_first = sorted(written, key=lambda s: -s["event_time"])

    assert api("/api/signals") == {"signals": [served(s) for s in newest_first]}
    assert api("/api/signals?limit=2") == {"signals": [served(s) for s in newest_first[:2]]}
    assert api("/api/signals?limit=1000")["signals"] == [served(s) for s in newest_first]


def test_the_default_limit_is_100(api, sink, make_signal):
    sink.write_signals([make_signal(("kraken", 100.0), ("binance", 100.5), 9.5, T0 + i) for i in range(120)])
    listed = api("/api/signals")["signals"]
    assert [s["event_time"] for s in listed] == [T0 + i for i in range(119, 19, -1)]


def test_one_signal_follows_its_lifecycle(api, sink, make_signal):
    opened = make_signal(("okx", 50.0), ("bybit", 50.2), 20.0, T0, detected_after_ms=7)
    sink.write_signals([opened])
    assert api(f"/api/signals/{opened['id']}") == served(opened)

    closed = {**make_signal(("okx", 50.0), ("bybit", 50.2), 20.0, T0, detected_after_ms=99, closed_after_ms=1500)}
    sink.write_signals([closed])
    shown = api(f"/api/signals/{opened['id']}")
    assert shown["status"] == "closed" and shown["closed_at"] == T0 + 1500
    assert shown["detected_at"] == T0 + 7, "the first detection time must be kept"


def test_an_unreadable_stored_signal_is_named_and_the_others_still_served(api, sink, make_signal):
    broken, intact = (make_signal(("kraken", 1.0), ("okx", 1.1), 5.0, T0 + i) for i in range(2))
    sink.write_signals([broken, intact])
    sink.client.set(signal_key(broken["id"]), b'{"id": "trunc')  # what a torn write would leave

    assert api("/api/signals") == {"signals": [served(intact)]}
    error = api(f"/api/signals/{broken['id']}", expect=500)["error"]
    assert error.startswith(f"stored document {signal_key(broken['id'])} is not valid JSON: ")
    assert api("/api/stats")["signals"] == 1


def test_unknown_signal_is_404(api, sink):
    assert api("/api/signals/deadbeef", expect=404) == {"error": "no signal with id 'deadbeef'"}


@pytest.mark.parametrize("limit, message", [
    ("abc", "query parameter 'limit': Input should be a valid integer"),
    ("2.5", "query parameter 'limit': Input should be a valid integer"),
    ("0", "query parameter 'limit': Input should be greater than or equal to 1"),
    ("1001", "query parameter 'limit': Input should be less than or equal to 1000"),
    ("-3", "query parameter 'limit': Input should be greater than or equal to 1"),
])
def test_bad_limit_is_400_naming_the_parameter(api, sink, limit, message):
    assert api(f"/api/signals?limit={limit}", expect=400)["error"].startswith(message)


def test_prices_are_the_latest_tick_per_venue_and_symbol(api, sink):
    old = Tick("binance", "BTC/USDT", 100.0, 100.1, 1.5, 2.0, T0)
    sink.write_prices([old, Tick("kraken", "BTC/USDT", 100.2, 100.4, None, None, T0 + 1)], 2, 0)
    newer = Tick("binance", "BTC/USDT", 100.05, 100.15, 0.5, 0.7, T0 + 2)
    eth = Tick("binance", "ETH/USDT", 3000.0, 3000.5, 4.0, 3.0, T0 + 3)
    sink.write_prices([newer, eth], 2, 0)

    assert api("/api/prices") == {"prices": [
        {**newer.to_json_dict(), "ts_iso": "2025-11-21T04:40:00.002Z"},
        {**Tick("kraken", "BTC/USDT", 100.2, 100.4, None, None, T0 + 1).to_json_dict(),
         "ts_iso": "2025-11-21T04:40:00.001Z"},
        {**eth.to_json_dict(), "ts_iso": "2025-11-21T04:40:00.003Z"},
    ]}


def test_health_reports_counters_and_sizes(api, sink, make_signal):
    now = now_ms()
    sink.write_prices([Tick("okx", "SOL/USDT", 150.0, 150.1, 1.0, 1.0, now)], ticks_seen=40, deadletters=3)
    sink.write_signals([make_signal(("okx", 150.1), ("gemini", 151.0), 15.0, T0 + i) for i in range(4)])

    health = api("/api/health")
    assert (health["status"], health["reasons"]) == ("ok", [])
    assert health["redis"]["reachable"] is True
    assert health["counters"] == {"ticks": 40, "deadletters": 3, "signals:cross_exchange": 4}
    assert (health["signals_stored"], health["prices_stored"]) == (4, 1)
    assert (health["newest_signal_event_time"], health["newest_signal_event_time_iso"]) == (
        T0 + 3, "2025-11-21T04:40:00.003Z")
    assert health["venues"]["okx"]["newest_tick"] == now
    assert health["server_time_iso"] == iso_of(health["server_time"])
    assert health["checkpoint"] == {"status": "unknown"}  # this dashboard was not told where checkpoints are


def report(sink, next_offset: int, end: int, still_s: float) -> None:
    """What the job's tick reader and the producers would have written."""
    now = now_ms()
    sink.report_progress(progress_field("read", "ticks", 0), Progress(next_offset, now - int(still_s * 1000),
                                                                      now).to_json())
    sink.raise_topic_ends({topic_end_field("ticks", 0): end})


def test_health_is_down_with_a_503_while_the_job_stalls_with_input_waiting(api, sink):
    began = time.monotonic()
    report(sink, 50, 100, still_s=20)
    health = api("/api/health", expect=503)
    took_s = time.monotonic() - began
    assert health["status"] == "down"
    # 20 s when written, and as many seconds more as the request took on a loaded machine
    [reason] = health["reasons"]
    moved = re.fullmatch(r"the tick reader of ticks:0 is stalled: 50 records wait and it has not moved for (\d+) s",
                         reason)
    assert moved and 20 <= int(moved[1]) <= 20 + math.ceil(took_s), reason
    reader = next(r for r in health["job"]["readers"] if r["stage"] == "read")
    assert (reader["topic"], reader["next"], reader["end"], reader["lag"]) == ("ticks", 50, 100, 50)

    report(sink, 100, 100, still_s=0)  # caught up again
    assert api("/api/health")["status"] == "ok"


def test_health_is_degraded_when_the_newest_tick_is_too_old(api, sink):
    sink.write_prices([Tick("kraken", "BTC/USDT", 1.0, 1.1, None, None, now_ms() - 3_600_000)])
    health = api("/api/health")
    assert health["status"] == "degraded" and health["reasons"] == ["the newest tick of kraken is 3600 s old"]


def test_health_names_the_newest_completed_checkpoint(service_logs, dashboard_redis, tmp_path):
    for job, number in (("old-job", 90), ("this-job", 3), ("this-job", 4)):
        (tmp_path / job / f"chk-{number}").mkdir(parents=True)
    for number, job in ((90, "old-job"), (3, "this-job")):  # chk-4 has no _metadata yet: not complete
        (tmp_path / job / f"chk-{number}" / "_metadata").write_bytes(b"")
    hour_ago = now_ms() / 1000 - 3600
    os.utime(tmp_path / "old-job" / "chk-90" / "_metadata", (hour_ago, hour_ago))  # an earlier run's
    server = start_open_dashboard(dashboard_redis, service_logs, env={"ASCEP_DASHBOARD__CHECKPOINTS": str(tmp_path)})
    try:
        health = requests.get(server.address + "/api/health", timeout=10).json()
    finally:
        server.stop()
    assert health["checkpoint"]["id"] == 3 and health["checkpoint"]["age_s"] < 30


def test_config_is_the_arbitrage_settings_the_server_runs_with(api):
    expected = Settings(arbitrage={"min_profit_bps": float(MIN_PROFIT_BPS)}).arbitrage.model_dump(mode="json")
    assert api("/api/config") == expected


def test_stats_over_stored_signals(api, sink, make_signal):
    sink.write_signals([
        make_signal(("kraken", 10.0), ("binance", 10.1), 1.5, T0, detected_after_ms=10),
        make_signal(("kraken", 10.0), ("okx", 10.1), 3.0, T0 + 1, detected_after_ms=20, closed_after_ms=5),
        make_signal(("okx", 2.0), ("binance", 2.1), 12.0, T0 + 2, detected_after_ms=30, symbol="XRP/USDT"),
        make_signal(("coinbase", 5.0), ("binance", 5.2), 250.0, T0 + 3, detected_after_ms=40, symbol="ADA/USDT"),
    ])
    stats = api("/api/stats")
    assert stats["signals"] == 4
    assert stats["by_type"] == {"cross_exchange": 4}
    assert stats["by_status"] == {"open": 3, "closed": 1}
    assert stats["by_venue"] == {"binance": 3, "kraken": 2, "okx": 2, "coinbase": 1}
    assert stats["by_symbol"] == {"BTC/USDT": 2, "XRP/USDT": 1, "ADA/USDT": 1}
    profit = stats["profit_bps"]
    # Linear interpolation over 1.5, 3, 12, 250.
    assert (profit["count"], profit["min"], profit["max"], profit["mean"]) == (4, 1.5, 250.0, 66.625)
    assert profit["p50"] == pytest.approx(7.5) and profit["p90"] == pytest.approx(178.6)
    assert {(b["lo"], b["hi"]): b["count"] for b in profit["histogram"] if b["count"]} == {
        (1.0, 2.0): 1, (2.0, 5.0): 1, (10.0, 20.0): 1, (200.0, 500.0): 1}
    latency = stats["detection_latency_ms"]
    assert (latency["min"], latency["p50"], latency["max"]) == (10.0, 25.0, 40.0)
    assert latency["p99"] == pytest.approx(39.7)


def test_redis_down_is_503_with_a_clear_message(service_logs):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    server = start_open_dashboard(unreachable, service_logs)
    try:
        health = requests.get(server.address + "/api/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable" and health.json()["redis"]["reachable"] is False
        listing = requests.get(server.address + "/api/signals", timeout=10)
        assert listing.status_code == 503 and listing.json()["error"].startswith("redis unavailable: ")
    finally:
        server.stop()


def test_dashboard_command_refuses_a_busy_port(dashboard):
    busy_port = int(dashboard.rsplit(":", 1)[1])
    args = argparse.Namespace(host="127.0.0.1", port=busy_port, redis="redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match=f"port {busy_port} on 127.0.0.1 is already in use"):
        dashboard_command.run(args)


def iso_of(epoch_ms: int) -> str:
    """Worked out apart from core/contracts/times.py, by the standard library's own clock arithmetic."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_every_time_is_also_iso_and_no_figure_carries_float_noise(api, sink):
    signals = default_market_signals()
    sink.write_signals(signals)
    sink.write_prices([Tick("binance", "BTC/USDT", 60_000.1, 60_000.2, 0.3, 0.1, T0 + 7)], 1, 0)
    served_signals = api("/api/signals?limit=1000")["signals"]
    assert len(served_signals) == len({s["id"] for s in signals})
    for shown in served_signals:
        times = [name for name in ("event_time", "updated_at", "closed_at", "detected_at") if name in shown]
        assert {"event_time", "updated_at", "detected_at"} <= set(times)
        assert {name: shown[f"{name}_iso"] for name in times} == {name: iso_of(shown[name]) for name in times}
    assert api(f"/api/signals/{served_signals[0]['id']}") == served_signals[0]
    assert noisy_floats(served_signals) == []
    assert noisy_floats(api("/api/stats")) == []
    price, = api("/api/prices")["prices"]
    assert price["ts_iso"] == iso_of(T0 + 7) == "2025-11-21T04:40:00.007Z"
