"""The live WebSocket: a snapshot on connect, then what the job writes afterwards, relayed through Redis."""
from __future__ import annotations

import json
import time

import pytest
from dashboard_testing import served, start_open_dashboard
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ascep.services import start_redis
from core.contracts.redis_keys import LIVE_CHANNEL
from core.contracts.tick import Tick
from core.contracts.times import tick_document
from dashboard.live import PRICE_FLUSH_S
from flink_jobs.sinks.redis_sink import RedisSink

pytestmark = pytest.mark.integration

T0 = 1_763_700_000_000


@pytest.fixture
def live(dashboard):
    def open_socket(origin: str = dashboard):
        return connect(dashboard.replace("http://", "ws://") + "/ws/live", origin=origin, proxy=None, open_timeout=10)
    return open_socket


def shown(tick: Tick) -> dict:
    """A tick as the socket carries it: with its time also in ISO 8601."""
    return tick_document(tick.to_json_dict())


def receive(socket, kind: str) -> dict:
    """The next message of `kind`; other kinds may come between (a price batch before a signal)."""
    while True:
        message = json.loads(socket.recv(timeout=10))
        if message["kind"] == kind:
            return message


def prices_until(socket, last: Tick) -> list[dict]:
    """The ticks of the first prices message carrying `last`."""
    while True:
        data = receive(socket, "prices")["data"]
        if shown(last) in data:
            return data


def prices_until_quiet(socket, quiet_s: float, timeout_s: float = 30.0) -> list[list[dict]]:
    """The ticks of every prices message, one list a message, until none has come for `quiet_s`."""
    batches: list[list[dict]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            message = json.loads(socket.recv(timeout=quiet_s))
        except TimeoutError:
            return batches
        if message["kind"] == "prices":
            batches.append(message["data"])
    raise AssertionError(f"prices kept coming for {timeout_s}s: {len(batches)} messages")


def test_snapshot_then_live_signal_and_prices(live, sink, make_signal):
    before = make_signal(("kraken", 100.0), ("binance", 100.4), 12.0, T0)
    tick = Tick("binance", "BTC/USDT", 100.3, 100.4, 1.0, 2.0, T0)
    sink.write_signals([before])
    sink.write_prices([tick], 1, 0)

    with live() as socket:
        assert json.loads(socket.recv(timeout=10)) == {
            "kind": "snapshot", "prices": [shown(tick)], "signals": [served(before)]}

        after = make_signal(("okx", 100.0), ("binance", 100.6), 20.0, T0 + 500)
        sink.write_signals([after])
        assert receive(socket, "signal")["data"] == served(after)

        newer_tick = Tick("kraken", "BTC/USDT", 100.1, 100.2, None, None, T0 + 600)
        sink.write_prices([newer_tick], 1, 0)
        # The relay may still hold the pre-connect tick in the same flush window; kraken's is there once, as written.
        kraken = [t for t in prices_until(socket, newer_tick) if (t["venue"], t["symbol"]) == ("kraken", "BTC/USDT")]
        assert kraken == [shown(newer_tick)]


def test_price_bursts_are_coalesced_to_the_newest_tick(live, sink):
    """At most one prices message per PRICE_FLUSH_S, and the last one holds the newest tick of each venue:symbol."""
    keys = [("okx", "ETH/USDT"), ("bybit", "SOL/USDT")]  # names no other test writes, so no stray tick is counted
    burst = [Tick(venue, symbol, 3000.0 + i, 3000.5 + i, 1.0, 1.0, T0 + i)
             for i in range(100) for venue, symbol in keys]  # interleaved: okx, bybit, okx, ...
    with live() as socket:
        receive(socket, "snapshot")
        time.sleep(2 * PRICE_FLUSH_S)  # a flush window an earlier test opened is closed: the burst opens the next one
        started = time.monotonic()
        for tick in burst:
            sink.write_prices([tick], 1, 0)
        elapsed = time.monotonic() - started
        batches = prices_until_quiet(socket, quiet_s=5 * PRICE_FLUSH_S)
    ours = [[t for t in data if (t["venue"], t["symbol"]) in keys] for data in batches]
    ours = [data for data in ours if data]
    # Each flush window opens on a message and lasts PRICE_FLUSH_S, so a burst written in `elapsed` seconds spans
    # at most elapsed / PRICE_FLUSH_S + 1 of them (+50 ms for the relay running late): 1 when the burst is quick.
    windows = int((elapsed + 0.05) / PRICE_FLUSH_S) + 1
    assert 1 <= len(ours) <= windows, f"{len(ours)} prices messages for {len(burst)} ticks written in {elapsed:.3f} s"
    newest = {(t.venue, t.symbol): shown(t) for t in burst}
    for data in ours:
        assert len(data) == len({(t["venue"], t["symbol"]) for t in data}), "a venue:symbol given twice in a message"
    assert {(t["venue"], t["symbol"]): t for t in ours[-1]} == newest, "the last message is not the newest tick of each"


def test_a_foreign_origin_is_refused(live):
    with pytest.raises(InvalidStatus) as refused:
        live(origin="http://evil.example").close()
    assert refused.value.response.status_code == 403


def test_sockets_survive_a_redis_restart(service_logs, make_signal):
    """Own Redis and server: this one is stopped and started again on the same port."""
    redis_server = start_redis(service_logs)
    port = int(redis_server.address.rsplit(":", 1)[1].split("/")[0])
    server = start_open_dashboard(redis_server.address, service_logs)
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
            assert receive(socket, "signal")["data"] == served(signal)
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
        assert receive(socket, "signal")["data"] == served(signal)
    assert api("/api/health")["live_relay"]["skipped"] == skipped_before + 3
