"""The live WebSocket: a snapshot on connect, then what the job writes afterwards, relayed through Redis."""
from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ascep.services import start_dashboard, start_redis
from core.contracts.redis_keys import LIVE_CHANNEL
from core.contracts.signal import public_view
from core.contracts.tick import Tick
from flink_jobs.sinks.redis_sink import RedisSink

pytestmark = pytest.mark.integration

T0 = 1_763_700_000_000


@pytest.fixture
def live(dashboard):
    def open_socket(origin: str = dashboard):
        return connect(dashboard.replace("http://", "ws://") + "/ws/live", origin=origin, proxy=None, open_timeout=10)
    return open_socket


def receive(socket, kind: str) -> dict:
    """The next message of `kind`; other kinds may come between (a price batch before a signal)."""
    while True:
        message = json.loads(socket.recv(timeout=10))
        if message["kind"] == kind:
            return message


def prices_until(socket, last: Tick) -> list[dict]:
    """Every tick in prices messages up to the one carrying `last`."""
    seen: list[dict] = []
    while last.to_json_dict() not in seen:
        seen.extend(receive(socket, "prices")["data"])
    return seen


def test_snapshot_then_live_signal_and_prices(live, sink, make_signal):
    before = make_signal(("kraken", 100.0), ("binance", 100.4), 12.0, T0)
    tick = Tick("binance", "BTC/USDT", 100.3, 100.4, 1.0, 2.0, T0)
    sink.write_signals([before])
    sink.write_prices([tick], 1, 0)

    with live() as socket:
        assert json.loads(socket.recv(timeout=10)) == {
            "kind": "snapshot", "prices": [tick.to_json_dict()], "signals": [public_view(before)]}

        after = make_signal(("okx", 100.0), ("binance", 100.6), 20.0, T0 + 500)
        sink.write_signals([after])
        assert receive(socket, "signal")["data"] == public_view(after)

        newer_tick = Tick("kraken", "BTC/USDT", 100.1, 100.2, None, None, T0 + 600)
        sink.write_prices([newer_tick], 1, 0)
        # The relay may still hold the pre-connect tick from its last flush window; a repeat is harmless.
        assert newer_tick.to_json_dict() in prices_until(socket, newer_tick)


def test_price_bursts_are_coalesced_to_the_newest_tick(live, sink):
    with live() as socket:
        receive(socket, "snapshot")
        burst = [Tick("okx", "ETH/USDT", 3000.0 + i, 3000.5 + i, 1.0, 1.0, T0 + i) for i in range(200)]
        for tick in burst:
            sink.write_prices([tick], 1, 0)
        seen = prices_until(socket, burst[-1])
        assert len(seen) < len(burst), "every price batch was forwarded on its own"


def test_a_foreign_origin_is_refused(live):
    with pytest.raises(InvalidStatus) as refused:
        live(origin="http://evil.example").close()
    assert refused.value.response.status_code == 403


def test_sockets_survive_a_redis_restart(service_logs, make_signal):
    """Own Redis and server: this one is stopped and started again on the same port."""
    redis_server = start_redis(service_logs)
    port = int(redis_server.address.rsplit(":", 1)[1].split("/")[0])
    server = start_dashboard(redis_server.address, service_logs)
    ws_url = server.address.replace("http://", "ws://") + "/ws/live"
    try:
        with connect(ws_url, origin=server.address, proxy=None) as socket:
            receive(socket, "snapshot")
            redis_server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        redis_server = start_redis(service_logs, port=port)
        with connect(ws_url, origin=server.address, proxy=None) as socket:
            receive(socket, "snapshot")
            signal = make_signal(("okx", 10.0), ("kraken", 10.2), 8.0, T0)
            RedisSink(redis_server.address).write_signals([signal])
            assert receive(socket, "signal")["data"] == public_view(signal)
    finally:
        server.stop()
        redis_server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_malformed_live_messages_are_skipped_and_later_ones_still_arrive(live, sink, make_signal, api):
    with live() as socket:
        receive(socket, "snapshot")
        skipped_before = api("/api/health")["live_relay"]["skipped"]
        for garbage in (b"not json", b'{"kind":"weather","data":1}', b'{"kind":"prices","data":[{"bid":1}]}'):
            sink.client.publish(LIVE_CHANNEL, garbage)
        signal = make_signal(("bybit", 20.0), ("okx", 20.1), 6.0, T0)
        sink.write_signals([signal])
        assert receive(socket, "signal")["data"] == public_view(signal)
    assert api("/api/health")["live_relay"]["skipped"] == skipped_before + 3
