"""The live WebSocket (docs/live-protocol.md): a client subscribes, gets what matches now, then what the job writes
afterwards that matches, relayed through Redis."""
from __future__ import annotations

import json
import socket as sockets
import threading
import time
from contextlib import ExitStack

import pytest
import requests
from dashboard_testing import served, start_open_dashboard
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ascep.services import start_redis
from core.contracts.redis_keys import LIVE_CHANNEL
from core.contracts.tick import Tick
from core.contracts.times import signal_document, tick_document
from dashboard.live import PRICE_FLUSH_S
from flink_jobs.sinks.redis_sink import RedisSink

pytestmark = pytest.mark.integration

T0 = 1_763_700_000_000


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/live"


@pytest.fixture
def live(dashboard):
    def open_socket(origin: str = dashboard, **options):
        return connect(ws_url(dashboard), origin=origin, proxy=None, open_timeout=10, **options)
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


def subscribe(socket, kind: str, **fields) -> dict:
    """Sends a subscription and returns its reply: updates for it never come before the reply."""
    socket.send(json.dumps({"kind": kind, **fields}))
    return receive(socket, "subscribed")


def subscribe_to_everything(socket) -> tuple[dict, dict]:
    return subscribe(socket, "subscribe_prices"), subscribe(socket, "subscribe_signals")


def prices_until(socket, last: Tick) -> list[list[dict]]:
    """The ticks of every price_update up to the first carrying `last`, one list a message."""
    batches = []
    while True:
        batches.append(receive(socket, "price_update")["data"])
        if shown(last) in batches[-1]:
            return batches


def prices_until_quiet(socket, quiet_s: float, timeout_s: float = 30.0) -> list[list[dict]]:
    """The ticks of every price_update, one list a message, until none has come for `quiet_s`."""
    batches: list[list[dict]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            message = json.loads(socket.recv(timeout=quiet_s))
        except TimeoutError:
            return batches
        if message["kind"] == "price_update":
            batches.append(message["data"])
    raise AssertionError(f"prices kept coming for {timeout_s}s: {len(batches)} messages")


def test_a_subscription_gets_what_matches_now_then_what_comes(live, sink, make_signal):
    before = make_signal(("kraken", 100.0), ("binance", 100.4), 12.0, T0)
    tick = Tick("binance", "BTC/USDT", 100.3, 100.4, 1.0, 2.0, T0)
    sink.write_signals([before])
    sink.write_prices([tick], 1, 0)

    with live() as socket:
        socket.send(json.dumps({"kind": "subscribe_signals"}))
        # nothing is sent before a subscription: the first message is its reply, with no prices in it
        assert json.loads(socket.recv(timeout=10)) == {
            "kind": "subscribed", "to": "signals", "signals": [served(before)],
            "subscription": {"types": None, "symbols": None, "venues": None, "min_profit_bps": None}}
        assert subscribe(socket, "subscribe_prices") == {
            "kind": "subscribed", "to": "prices", "prices": [shown(tick)],
            "subscription": {"symbols": None, "venues": None}}

        after = make_signal(("okx", 100.0), ("binance", 100.6), 20.0, T0 + 500)
        sink.write_signals([after])
        assert receive(socket, "arbitrage_signal")["data"] == served(after)
        rule = {"id": "r1", "type": "rule", "legs": [], "profit_bps": 0.0, "event_time": T0, "updated_at": T0,
                "status": "open", "detected_at": T0, "rule_id": "wide", "name": "WIDE", "key": "BTC/USDT"}
        sink.write_signals([rule])
        assert receive(socket, "rule_signal")["data"] == signal_document(rule)

        newer_tick = Tick("kraken", "BTC/USDT", 100.1, 100.2, None, None, T0 + 600)
        sink.write_prices([newer_tick], 1, 0)
        kraken = [t for batch in prices_until(socket, newer_tick) for t in batch
                  if (t["venue"], t["symbol"]) == ("kraken", "BTC/USDT")]
        assert kraken == [shown(newer_tick)]


def test_each_client_gets_only_what_its_subscription_matches(live, sink, make_signal):
    market = [Tick(venue, symbol, 10.0, 10.1, None, None, T0 + i)
              for i, (venue, symbol) in enumerate((v, s) for v in ("binance", "kraken", "okx")
                                                  for s in ("BTC/USDT", "ETH/USDT"))]
    sink.write_prices(market, len(market), 0)
    with live() as narrow, live() as everything:
        reply = subscribe(narrow, "subscribe_prices", symbols=["BTC/USDT"], venues=["binance"])
        assert reply["prices"] == [shown(market[0])]
        assert reply["subscription"] == {"symbols": ["BTC/USDT"], "venues": ["binance"]}
        assert subscribe(narrow, "subscribe_signals", types=["cross_exchange"], venues=["okx"],
                         min_profit_bps=5)["signals"] == []
        subscribe_to_everything(everything)

        unwanted = [make_signal(("okx", 10.0), ("kraken", 10.1), 4.0, T0 + 1),  # below the minimum
                    make_signal(("binance", 10.0), ("kraken", 10.1), 9.0, T0 + 2),  # not on okx
                    {"id": "r2", "type": "rule", "legs": [], "profit_bps": 0.0, "event_time": T0, "updated_at": T0,
                     "status": "open", "detected_at": T0, "rule_id": "x", "name": "X", "key": "BTC/USDT@okx"}]
        wanted = make_signal(("kraken", 10.0), ("okx", 10.2), 8.0, T0 + 3)
        sink.write_signals([*unwanted, wanted])
        later = [Tick(t.venue, t.symbol, 11.0, 11.1, None, None, t.ts + 1000) for t in market]
        sink.write_prices(later, len(later), 0)  # binance BTC/USDT comes first, then the others

        # everything the narrow client gets up to the last signal and tick it matches (each written after those
        # it does not, or with them): only what it matches
        signals, ticks = [], []
        while not (signals and shown(later[0]) in ticks):
            message = json.loads(narrow.recv(timeout=10))
            if message["kind"] == "price_update":
                ticks.extend(message["data"])
            else:
                signals.append(message["data"])
        assert signals == [served(wanted)]
        assert {(t["venue"], t["symbol"]) for t in ticks} == {("binance", "BTC/USDT")}

        seen = set()
        while len(seen) < 4:
            message = json.loads(everything.recv(timeout=10))
            if message["kind"] in ("arbitrage_signal", "rule_signal"):
                seen.add(message["data"]["id"])
        assert seen == {s["id"] for s in [*unwanted, wanted]}
        assert prices_until(everything, later[-1])  # the other ticks went to the client that asked for them


def test_price_bursts_are_coalesced_to_the_newest_tick(live, sink):
    """At most one price_update per PRICE_FLUSH_S, and the last one holds the newest tick of each venue:symbol."""
    keys = [("okx", "ETH/USDT"), ("bybit", "SOL/USDT")]
    burst = [Tick(venue, symbol, 3000.0 + i, 3000.5 + i, 1.0, 1.0, T0 + i)
             for i in range(100) for venue, symbol in keys]  # interleaved: okx, bybit, okx, ...
    with live() as socket:
        subscribe(socket, "subscribe_prices", symbols=["ETH/USDT", "SOL/USDT"], venues=["okx", "bybit"])
        time.sleep(2 * PRICE_FLUSH_S)  # a flush window an earlier test opened is closed: the burst opens the next one
        started = time.monotonic()
        for tick in burst:
            sink.write_prices([tick], 1, 0)
        elapsed = time.monotonic() - started
        batches = prices_until_quiet(socket, quiet_s=5 * PRICE_FLUSH_S)
    # Each flush window opens on a message and lasts PRICE_FLUSH_S, so a burst written in `elapsed` seconds spans
    # at most elapsed / PRICE_FLUSH_S + 1 of them (+50 ms for the relay running late): 1 when the burst is quick.
    windows = int((elapsed + 0.05) / PRICE_FLUSH_S) + 1
    assert 1 <= len(batches) <= windows, f"{len(batches)} messages for {len(burst)} ticks written in {elapsed:.3f} s"
    newest = {(t.venue, t.symbol): shown(t) for t in burst}
    for data in batches:
        assert len(data) == len({(t["venue"], t["symbol"]) for t in data}), "a venue:symbol given twice in a message"
    assert {(t["venue"], t["symbol"]): t for t in batches[-1]} == newest, "the last message is not the newest tick"


def unread_socket(base: str, **options):
    """A client that reads nothing: a small receive buffer, and its library stops reading after one frame."""
    raw = sockets.socket()
    raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
    host, port = base.removeprefix("http://").split(":")
    raw.connect((host, int(port)))
    return connect(ws_url(base), sock=raw, origin=base, proxy=None, max_queue=1, max_size=None, compression=None,
                   **options)


def slow_clients(api) -> dict[str, dict]:
    return {c["client"]: c for c in api("/api/health")["live_relay"]["slow_clients"]}


def test_a_slow_client_loses_old_prices_never_signals_and_holds_up_nobody(dashboard, live, sink, make_signal, api):
    market = [(f"v{n}", f"S{m}/USDT") for n in range(50) for m in range(100)]  # 5,000 venue:symbols
    dropped_before = api("/api/health")["live_relay"]["dropped_prices"]
    with unread_socket(dashboard) as slow, live() as fast:
        subscribe_to_everything(slow)
        subscribe(fast, "subscribe_signals")
        me = "{}:{}".format(*slow.local_address)
        written = 0
        while me not in slow_clients(api):  # fill its buffers until its own prices back up and are lost
            written += 1
            batch = [Tick(venue, symbol, 1.0 + written, 2.0 + written, None, None, T0 + written)
                     for venue, symbol in market]
            sink.write_prices(batch, len(batch), 0)
            time.sleep(PRICE_FLUSH_S)
        signals = [make_signal(("okx", 10.0), ("kraken", 10.0 + i / 100), 5.0 + i, T0 + i) for i in range(1, 201)]
        sink.write_signals(signals)
        # the fast client is not held up: it has every signal while the slow one still reads nothing
        got = [receive(fast, "arbitrage_signal")["data"] for _ in signals]
        assert got == [served(s) for s in signals]
        assert slow_clients(api)[me]["queued"] == len(signals)
        last = Tick("v0", "S0/USDT", 9.0, 9.5, None, None, T0 + 10_000)
        sink.write_prices([last], 1, 0)

        received, price_messages = [], []
        for message in map(json.loads, slow):  # it reads now: first every signal, in order, then its prices
            if message["kind"] == "arbitrage_signal":
                received.append(message["data"])
            elif message["kind"] == "price_update":
                price_messages.append(message)
                if shown(last) in message["data"]:
                    break
    assert received == [served(s) for s in signals]
    lost = price_messages[-1]["dropped"]
    assert lost > 0 and lost == max(m["dropped"] for m in price_messages)
    for message in price_messages:
        data = message["data"]
        assert len(data) == len({(t["venue"], t["symbol"]) for t in data}), "a venue:symbol given twice"
    newest = {(t["venue"], t["symbol"]): t for m in price_messages for t in m["data"]}
    assert newest[("v1", "S1/USDT")]["ts"] == T0 + written, "the newest tick of each is kept"
    assert api("/api/health")["live_relay"]["dropped_prices"] >= dropped_before + lost


@pytest.mark.parametrize(("request_text", "field", "says"), [
    ("hello", None, "not JSON"),
    ('{"kind": "subscribe_trades"}', "kind", "unknown kind 'subscribe_trades'"),
    ('{"kind": "subscribe_prices", "symbols": ["btc"]}', "symbols", "symbols[0]: field 'symbol' must be BASE/QUOTE"),
    ('{"kind": "subscribe_signals", "min_profit_bps": "lots"}', "min_profit_bps", "'min_profit_bps' must be"),
    (b"\x00binary", None, "a binary frame: requests are JSON text"),
])
def test_a_bad_request_gets_an_error_and_the_socket_stays_open(live, sink, make_signal, request_text, field, says):
    with live() as bad, live() as bystander:
        subscribe(bystander, "subscribe_signals")
        bad.send(request_text)
        error = json.loads(bad.recv(timeout=10))
        assert error["kind"] == "error" and error["field"] == field and says in error["error"], error
        assert subscribe(bad, "subscribe_signals")["to"] == "signals"  # still open, and it works
        signal = make_signal(("bybit", 20.0), ("okx", 20.1), 6.0, T0)
        sink.write_signals([signal])
        for socket in (bad, bystander):
            assert receive(socket, "arbitrage_signal")["data"] == served(signal)


def test_a_foreign_origin_is_refused(live):
    with pytest.raises(InvalidStatus) as refused:
        live(origin="http://evil.example").close()
    assert refused.value.response.status_code == 403


def wait_for(condition, what: str, timeout_s: float = 60.0):
    """Polls `condition` until it gives something true; a deadline only so that a bug fails instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout_s} s"
        time.sleep(0.1)
    return result


def test_clients_that_close_or_vanish_mid_stream_leave_no_trace(redis_url, service_logs):
    """Its own server, whose log must stay empty: a socket the client closed is the client's business. (A client
    that vanished while the server waited to send to it was logged as "live socket closed: redis unavailable".)"""
    redis_db = f"{redis_url.rsplit('/', 1)[0]}/8"
    server = start_open_dashboard(redis_db, service_logs)
    sink = RedisSink(redis_db)
    stop = threading.Event()

    def write_prices():
        n = 0
        while not stop.is_set():
            n += 1
            batch = [Tick(f"v{v}", f"S{m}/USDT", 1.0, 1.1, None, None, T0 + n) for v in range(50) for m in range(100)]
            sink.write_prices(batch, len(batch), 0)
            time.sleep(PRICE_FLUSH_S)  # the relay sends no more often

    def health() -> dict:
        return requests.get(server.address + "/api/health", timeout=10).json()["live_relay"]

    writer = threading.Thread(target=write_prices)
    writer.start()
    try:
        for vanish in (False, True, False, True):  # reading clients: a close handshake, or gone without one
            with connect(ws_url(server.address), origin=server.address, proxy=None, open_timeout=10) as socket:
                subscribe(socket, "subscribe_prices", symbols=["S0/USDT"])
                receive(socket, "price_update")
                if vanish:
                    socket.socket.shutdown(sockets.SHUT_RDWR)
        with ExitStack() as stack:  # three clients the server is blocked sending to
            stalled = [stack.enter_context(unread_socket(server.address, close_timeout=1)) for _ in range(3)]
            for socket in stalled:
                subscribe(socket, "subscribe_prices")
            names = {"{}:{}".format(*socket.local_address) for socket in stalled}
            wait_for(lambda: names <= {c["client"] for c in health()["slow_clients"]}, "the clients to fall behind")
            for socket in stalled[:2]:
                socket.socket.shutdown(sockets.SHUT_RDWR)  # gone; the third closes with a handshake
        wait_for(lambda: health()["clients"] == 0, "every disconnect to be handled")
    finally:
        stop.set()
        writer.join()
        sink.client.close()
        server.stop()
    assert server.log_path.read_text() == ""


def test_sockets_survive_a_redis_restart(service_logs, make_signal):
    """Own Redis and server: this one is stopped and started again on the same port."""
    redis_server = start_redis(service_logs)
    port = int(redis_server.address.rsplit(":", 1)[1].split("/")[0])
    server = start_open_dashboard(redis_server.address, service_logs)
    try:
        with connect(ws_url(server.address), origin=server.address, proxy=None) as socket:
            subscribe_to_everything(socket)
            redis_server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    socket.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        redis_server = start_redis(service_logs, port=port)
        with connect(ws_url(server.address), origin=server.address, proxy=None) as socket:
            subscribe(socket, "subscribe_signals")
            signal = make_signal(("okx", 10.0), ("kraken", 10.2), 8.0, T0)
            RedisSink(redis_server.address).write_signals([signal])
            assert receive(socket, "arbitrage_signal")["data"] == served(signal)
    finally:
        server.stop()
        redis_server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_malformed_live_messages_are_skipped_and_later_ones_still_arrive(live, sink, make_signal, api):
    with live() as socket:
        subscribe(socket, "subscribe_signals")
        skipped_before = api("/api/health")["live_relay"]["skipped"]
        for garbage in (b"not json", b'{"kind":"weather","data":1}', b'{"kind":"prices","data":[{"bid":1}]}',
                        b'{"kind":"signal","data":{"type":"direct","legs":[{"venue":"okx"}]}}'):
            sink.client.publish(LIVE_CHANNEL, garbage)
        signal = make_signal(("bybit", 20.0), ("okx", 20.1), 6.0, T0)
        sink.write_signals([signal])
        assert receive(socket, "arbitrage_signal")["data"] == served(signal)
    assert api("/api/health")["live_relay"]["skipped"] == skipped_before + 4
