"""Health figures of one connector: what the dashboard and Prometheus show about a feed.

Counters are plain attributes bumped by the connector's one reading thread; readers take a
`snapshot()` (a flat dict, also what goes into the Redis hash) or Prometheus text. Rates are over
the last RATE_WINDOW_S seconds, so a feed that stalls shows 0/s within that window.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from core.clock import now_ms
from core.contracts.redis_keys import ingest_key
from core.log import event
from ingestion.venues.base import Parsed

log = logging.getLogger(__name__)

RATE_WINDOW_S = 10
LAG_SMOOTHING = 0.1  # weight of the newest tick in the moving average of the lag
COUNTERS = ("frames", "ticks", "trades", "ignored", "deadletters", "duplicates", "gaps", "missing", "pings",
            "connects", "reconnects", "connect_failures", "watchdog_closes", "rotations", "resyncs")
HELP = {
    "frames": "frames received", "ticks": "ticks produced", "trades": "trades produced",
    "ignored": "frames ignored by design (acks, heartbeats, unused channels)", "deadletters": "frames dead-lettered",
    "duplicates": "frames dropped because their sequence number was already seen",
    "gaps": "jumps in a venue sequence", "missing": "sequence numbers skipped by those jumps",
    "pings": "control frames (ping/pong) from the server", "connects": "connections opened",
    "reconnects": "connections opened after the first", "connect_failures": "failed connection attempts",
    "watchdog_closes": "connections closed for sending no frame in time",
    "rotations": "connections replaced before the venue's maximum connection age",
    "resyncs": "order books discarded (checksum mismatch, sequence gap) and subscribed again from a snapshot",
}


class RateMeter:
    """Events per second over a sliding window of one-second buckets."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: int = RATE_WINDOW_S) -> None:
        self.clock = clock
        self.window_s = window_s
        self.buckets: deque[list] = deque()  # [second, count]

    def add(self, n: int = 1) -> None:
        second = int(self.clock())
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += n
        else:
            self.buckets.append([second, n])
            while self.buckets[0][0] <= second - self.window_s:
                self.buckets.popleft()

    def per_second(self) -> float:
        now = int(self.clock())
        return sum(n for second, n in self.buckets if second > now - self.window_s) / self.window_s


class ConnectorMetrics:
    def __init__(self, venue: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.venue = venue
        for name in COUNTERS:
            setattr(self, name, 0)
        self.connected = False
        self.last_frame_ms: int | None = None
        self.lag_ms: float | None = None  # moving average of receive time minus exchange time
        self.frame_rate = RateMeter(clock)
        self.tick_rate = RateMeter(clock)

    def received(self, received_ms: int) -> None:
        """Count one frame, whatever becomes of it (the recorder keeps frames without parsing them)."""
        self.frames += 1
        self.frame_rate.add()
        self.last_frame_ms = received_ms

    def frame(self, parsed: Parsed, received_ms: int) -> None:
        """Count one frame and what it became."""
        self.received(received_ms)
        self.outcome(parsed, received_ms)

    def outcome(self, parsed: Parsed, received_ms: int) -> None:
        """Count what a frame, or a REST book snapshot the connector fetched, became."""
        if parsed.ticks:
            self.ticks += len(parsed.ticks)
            self.tick_rate.add(len(parsed.ticks))
            for tick in parsed.ticks:
                lag = received_ms - tick.ts
                self.lag_ms = lag if self.lag_ms is None else self.lag_ms + LAG_SMOOTHING * (lag - self.lag_ms)
        self.trades += len(parsed.trades)
        if parsed.ignored is not None:
            self.ignored += 1
        if parsed.deadletter is not None:
            self.deadletters += 1
        if parsed.resync is not None:
            self.resyncs += 1

    def snapshot(self) -> dict[str, float | int | str]:
        out: dict[str, float | int | str] = {"venue": self.venue, "connected": int(self.connected)}
        out.update({name: getattr(self, name) for name in COUNTERS})
        out["frames_per_s"] = round(self.frame_rate.per_second(), 3)
        out["ticks_per_s"] = round(self.tick_rate.per_second(), 3)
        if self.lag_ms is not None:
            out["lag_ms"] = round(self.lag_ms, 1)
        if self.last_frame_ms is not None:
            out["last_frame_ms"] = self.last_frame_ms
        return out


def prometheus_text(snapshots: list[dict]) -> str:
    """The Prometheus text exposition format: counters as *_total, the rest as gauges, labelled by venue."""
    lines: list[str] = []
    names = [k for k in (snapshots[0] if snapshots else {}) if k != "venue"]
    for name in names:
        metric = f"ascep_ingest_{name}_total" if name in COUNTERS else f"ascep_ingest_{name}"
        lines.append(f"# HELP {metric} {HELP.get(name, name.replace('_', ' '))}")
        lines.append(f"# TYPE {metric} {'counter' if name in COUNTERS else 'gauge'}")
        lines += [f'{metric}{{venue="{s["venue"]}"}} {s[name]}' for s in snapshots if name in s]
    return "\n".join(lines) + "\n"


def serve_prometheus(metrics: list[ConnectorMetrics], port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve GET /metrics on a daemon thread; the caller shuts the returned server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = prometheus_text([m.snapshot() for m in metrics]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # scrapes are not worth a log line each
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def publish_to_redis(metrics: ConnectorMetrics, redis_url: str, stop: threading.Event, every_s: float = 1.0,
                     expire_s: int = 15, address: str | None = None) -> threading.Thread:
    """Write the snapshot to the venue's hash every `every_s`, with `heartbeat_ms` (when it was written: a connector
    that gets no frame still beats) and the stream's `url` (`address`) for /api/services; the hash expires when the
    connector dies."""
    import redis

    client = redis.Redis.from_url(redis_url)
    key = ingest_key(metrics.venue)
    where = {} if address is None else {"url": address}

    def loop() -> None:
        while True:
            try:
                snapshot = {**metrics.snapshot(), **where, "heartbeat_ms": now_ms()}
                with client.pipeline() as pipe:
                    pipe.delete(key).hset(key, mapping=snapshot).expire(key, expire_s).execute()
            except redis.RedisError as exc:
                event(log, "could not publish ingest metrics", logging.WARNING, venue=metrics.venue, error=str(exc))
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=loop, name=f"metrics-redis-{metrics.venue}", daemon=True)
    thread.start()
    return thread
