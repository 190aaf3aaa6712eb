"""How fast the dashboard answers, and how soon a write to Redis reaches an open WebSocket.

On a fresh embedded Redis and a dashboard child process, both written to by the job's RedisSink:
1. API: N stored signals; median milliseconds of /api/signals (limit 100 and 1000), /api/prices, /api/stats.
2. Live: price batches written at full speed for --seconds, plus a signal every 50 ms, while one
   WebSocket listens. Latency = when the socket received it - when it was written (tick ts /
   detected_at are set to the write time). Prices include the relay's coalescing window by design.
"""
from __future__ import annotations

import http.client
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import websocket

from ascep.services import start_dashboard, start_redis
from core.clock import now_ms
from core.contracts.signal import route_of, signal_id
from core.contracts.tick import Tick

if TYPE_CHECKING:
    from flink_jobs.sinks.redis_sink import RedisSink

VENUES = ("binance", "kraken", "okx", "coinbase", "bybit", "gemini", "bitstamp", "binance_us")
SYMBOLS = tuple(f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC",
                                             "BCH", "ATOM", "UNI", "XLM", "ETC", "FIL", "APT", "ARB", "OP", "NEAR"))
SIGNAL_EVERY_S = 0.05


def add_arguments(parser) -> None:
    parser.add_argument("--signals", type=int, default=10_000, help="signals stored before the API is timed")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the live phase")
    parser.add_argument("--repeats", type=int, default=20, help="requests per API endpoint (the median is reported)")


def a_signal(rng: random.Random, event_time: int, detected_at: int) -> dict:
    buy, sell = rng.sample(VENUES, 2)
    symbol = rng.choice(SYMBOLS)
    price = rng.uniform(1, 100_000)
    legs = [{"venue": buy, "symbol": symbol, "side": "buy", "price": price},
            {"venue": sell, "symbol": symbol, "side": "sell", "price": price * 1.002}]
    return {"id": signal_id("cross_exchange", route_of(legs), event_time), "type": "cross_exchange", "legs": legs,
            "profit_bps": round(rng.lognormvariate(1.0, 1.0), 4), "size": round(rng.uniform(0.01, 5), 4),
            "event_time": event_time, "updated_at": event_time, "closed_at": None, "status": "open",
            "detected_at": detected_at}


def median_ms(connection: http.client.HTTPConnection, path: str, repeats: int) -> float:
    """Median time of GET `path`, response body read, over one kept-alive connection."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        if response.status >= 400:
            raise RuntimeError(f"GET {path}: HTTP {response.status} {response.reason}")
    return statistics.median(times)


def api_figures(base: str, sink: RedisSink, rng: random.Random, count: int, repeats: int) -> dict:
    start = now_ms() - count * 10
    started = time.perf_counter()
    for first in range(0, count, 1000):
        sink.write_signals([a_signal(rng, start + i * 10, start + i * 10 + 3)
                            for i in range(first, min(first + 1000, count))])
    seeding_s = time.perf_counter() - started
    sink.write_prices([Tick(v, s, 100.0, 100.1, 1.0, 1.0, now_ms()) for v in VENUES for s in SYMBOLS], 0, 0)
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        return {
            "signals_stored": count,
            "seed_signals_per_s": count / seeding_s,
            "api_signals_limit_100_ms": median_ms(connection, "/api/signals?limit=100", repeats),
            "api_signals_limit_1000_ms": median_ms(connection, "/api/signals?limit=1000", repeats),
            "api_prices_ms": median_ms(connection, "/api/prices", repeats),
            "api_stats_ms": median_ms(connection, "/api/stats", max(3, repeats // 4)),
            "api_health_ms": median_ms(connection, "/api/health", repeats),
        }
    finally:
        connection.close()


def listen(socket: websocket.WebSocket, tick_latencies: list, signal_latencies: list, messages: dict) -> None:
    """Records latencies until the socket closes."""
    while True:
        try:
            opcode, data = socket.recv_data()  # answers pings; returns on the server's close frame
        except websocket.WebSocketConnectionClosedException:
            return
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return
        received = now_ms()
        message = json.loads(data)
        messages[message["kind"]] = messages.get(message["kind"], 0) + 1
        if message["kind"] == "prices":
            tick_latencies.extend(received - tick["ts"] for tick in message["data"])
        elif message["kind"] == "signal":
            signal_latencies.append(received - message["data"]["detected_at"])


def live_figures(base: str, sink: RedisSink, rng: random.Random, seconds: float) -> dict:
    import numpy as np

    tick_latencies: list[int] = []
    signal_latencies: list[int] = []
    messages: dict[str, int] = {}
    socket = websocket.create_connection(base.replace("http://", "ws://") + "/ws/live", timeout=30, origin=base,
                                         http_no_proxy=["*"])
    try:
        socket.recv()  # the snapshot
        socket.settimeout(None)  # the listener waits for as long as the live phase lasts
        listener = threading.Thread(target=listen, args=(socket, tick_latencies, signal_latencies, messages))
        listener.start()
        ticks_written = 0
        next_signal = time.monotonic()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ts = now_ms()
            batch = [Tick(v, s, 100.0, 100.1 + rng.random(), 1.0, 1.0, ts) for v in VENUES for s in SYMBOLS]
            sink.write_prices(batch, len(batch), 0)
            ticks_written += len(batch)
            if time.monotonic() >= next_signal:
                sink.write_signals([a_signal(rng, ts, now_ms())])
                next_signal += SIGNAL_EVERY_S
        time.sleep(1.0)  # let the last coalesced batch arrive
        socket.send_close()  # the listener reads on to the server's close frame
        listener.join(10)
    finally:
        socket.shutdown()
    ticks = np.asarray(tick_latencies or [np.nan])
    signals = np.asarray(signal_latencies or [np.nan])
    return {
        "live_ticks_written_per_s": ticks_written / seconds,
        "live_prices_messages_received": messages.get("prices", 0),
        "live_ticks_received": len(tick_latencies),
        "live_tick_latency_p50_ms": float(np.percentile(ticks, 50)),
        "live_tick_latency_p99_ms": float(np.percentile(ticks, 99)),
        "live_signals_received": len(signal_latencies),
        "live_signal_latency_p50_ms": float(np.percentile(signals, 50)),
        "live_signal_latency_p99_ms": float(np.percentile(signals, 99)),
    }


def run(args) -> dict:
    from flink_jobs.sinks.redis_sink import RedisSink

    rng = random.Random(7)
    log_dir = Path(tempfile.mkdtemp(prefix="ascep-bench-dashboard-"))
    redis_server = start_redis(log_dir)
    try:
        # Read as anyone may on `ascep up`'s stack; its accounts database in the benchmark's own folder.
        dashboard = start_dashboard(redis_server.address, log_dir, env={"ASCEP_DASHBOARD__ANONYMOUS_READ": "true",
                                                                      "ASCEP_STATE_DIR": str(log_dir / "state")})
        sink = RedisSink(redis_server.address)
        try:
            return {**api_figures(dashboard.address, sink, rng, args.signals, args.repeats),
                    **live_figures(dashboard.address, sink, rng, args.seconds)}
        finally:
            dashboard.stop()
    finally:
        redis_server.stop()
