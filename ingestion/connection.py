"""Live WebSocket connections for any venue: connect, subscribe, read, and keep it that way.

Split in two so recording and ingesting share the hard part:
- `Connection` owns the socket: connects, sends the subscription, hands every data frame to a
  listener, and reconnects with exponential backoff and jitter when the server closes, the network
  fails, or the watchdog sees no data frame for `watchdog_s`. It replaces a connection before it
  reaches `max_connection_s` (Binance cuts every connection at 24 h). Pings are answered by
  websocket-client itself (recv_data_frame pongs every ping); they do not feed the watchdog, so a
  server that pings but sends no data is still treated as stalled.
- `Connector` is the listener that parses frames with the venue, drops duplicates and counts gaps
  by the venue's sequence numbers, produces ticks/trades/dead letters, and keeps the metrics. When a
  frame's book waits for a REST snapshot (Binance's depth diffs) it fetches it there and then: the
  socket buffers the frames meanwhile, and the diffs they hold are applied or dropped by their ids.
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.request
from typing import Protocol

import orjson
import websocket

from core.backoff import Backoff
from core.clock import now_ms
from core.contracts.tick import InvalidTick
from core.log import event
from ingestion.metrics import ConnectorMetrics
from ingestion.producer import TickProducer
from ingestion.venues.base import BadFrame, Parsed, VenueParser

log = logging.getLogger(__name__)

BINANCE_MAX_CONNECTION_S = 24 * 3600
DEFAULT_MAX_CONNECTION_S = BINANCE_MAX_CONNECTION_S - 30 * 60  # replaced well before the venue cuts it
POLL_S = 0.25  # how often a quiet connection checks for stop, the watchdog and its age
SNAPSHOT_TIMEOUT_S = 10.0  # a REST book snapshot slower than this fails, and the connection is reopened


class Listener(Protocol):
    def connected(self, url: str, at_ms: int) -> None: ...

    def sent(self, url: str, message: str, at_ms: int) -> None: ...

    def frame(self, frame: bytes, received_ms: int) -> str | None:
        """Handle one data frame; a reason ends the connection (it is opened afresh, subscriptions and all)."""

    def disconnected(self, reason: str) -> None: ...


class Connection:
    def __init__(self, name: str, url: str, subscribe_messages: list[dict], listener: Listener,
                 metrics: ConnectorMetrics, *, watchdog_s: float = 30.0,
                 max_connection_s: float = DEFAULT_MAX_CONNECTION_S, backoff: Backoff | None = None,
                 connect_timeout_s: float = 10.0) -> None:
        self.name = name
        self.url = url
        self.subscribe_messages = [orjson.dumps(m).decode() for m in subscribe_messages]
        self.listener = listener
        self.metrics = metrics
        self.watchdog_s = watchdog_s
        self.max_connection_s = max_connection_s
        self.backoff = backoff or Backoff()
        self.connect_timeout_s = connect_timeout_s

    def run(self, stop: threading.Event) -> None:
        """Stay connected until `stop` is set."""
        attempt = 0
        while not stop.is_set():
            try:
                ws = websocket.create_connection(self.url, timeout=self.connect_timeout_s,
                                                 enable_multithread=False, skip_utf8_validation=True)
            except (OSError, websocket.WebSocketException) as exc:
                self.metrics.connect_failures += 1
                delay = self.backoff.delay(attempt)
                attempt += 1
                event(log, "connect failed", logging.WARNING, venue=self.name, url=self.url, error=str(exc),
                      attempt=attempt, retry_in_s=round(delay, 2))
                stop.wait(delay)
                continue
            self.metrics.reconnects += self.metrics.connects > 0
            self.metrics.connects += 1
            self.metrics.connected = True
            try:
                reason, got_data = self._session(ws, stop)
            finally:
                self.metrics.connected = False
                try:
                    ws.close(timeout=1)
                except (OSError, websocket.WebSocketException):
                    pass  # the connection is already gone; nothing left to close politely
            self.listener.disconnected(reason)
            if stop.is_set():
                return
            if got_data:
                attempt = 0
            delay = 0.0 if reason == "rotation" else self.backoff.delay(attempt)
            attempt += reason != "rotation"
            event(log, "disconnected", logging.INFO if reason == "rotation" else logging.WARNING, venue=self.name,
                  reason=reason, reconnect_in_s=round(delay, 2))
            stop.wait(delay)

    def _session(self, ws: websocket.WebSocket, stop: threading.Event) -> tuple[str, bool]:
        """Read one connection until it ends; return why, and whether any data frame came."""
        self.listener.connected(self.url, now_ms())
        event(log, "connected", venue=self.name, url=self.url)
        try:
            for message in self.subscribe_messages:
                ws.send(message)
                self.listener.sent(self.url, message, now_ms())
        except (OSError, websocket.WebSocketException) as exc:
            return f"subscribe failed: {exc}", False
        ws.settimeout(min(POLL_S, self.watchdog_s))
        opened = last_data = time.monotonic()
        got_data = False
        while True:
            if stop.is_set():
                return "stopped", got_data
            now = time.monotonic()
            if now - last_data > self.watchdog_s:
                self.metrics.watchdog_closes += 1
                return f"watchdog: no data frame for {self.watchdog_s:g}s", got_data
            if now - opened > self.max_connection_s:
                self.metrics.rotations += 1
                return "rotation", got_data
            try:
                opcode, frame = ws.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                return "connection lost", got_data
            except (OSError, websocket.WebSocketException) as exc:
                return f"connection error: {exc}", got_data
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
                return f"server closed the connection (code {code})", got_data
            if opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
                self.metrics.pings += 1
                continue
            last_data = time.monotonic()
            got_data = True
            ended = self.listener.frame(frame.data, now_ms())
            if ended is not None:
                return ended, got_data


class SequenceTracker:
    """Last sequence number per stream: tells a contiguous frame from a gap or a repeat.

    Kept across reconnects, so the first frame after an outage shows what the outage lost and a
    server that repeats frames after a reconnect cannot make duplicates.
    """

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def observe(self, stream: str, sequence: int) -> int:
        """How many numbers were skipped before `sequence` (0 if none); -1 if it was seen already."""
        last = self.last.get(stream)
        if last is not None and sequence <= last:
            return -1
        self.last[stream] = sequence
        return 0 if last is None else sequence - last - 1


class Connector:
    """VenueParser frames -> Kafka, with duplicate suppression, gap counting and metrics."""

    def __init__(self, venue: VenueParser, producer: TickProducer, metrics: ConnectorMetrics | None = None) -> None:
        self.venue = venue
        self.producer = producer
        self.metrics = metrics or ConnectorMetrics(venue.name)
        self.sequences = SequenceTracker()

    def connected(self, url: str, at_ms: int) -> None:
        pass

    def sent(self, url: str, message: str, at_ms: int) -> None:
        pass

    def disconnected(self, reason: str) -> None:
        pass

    def frame(self, frame: bytes, received_ms: int) -> str | None:
        parsed = self.venue.parse(frame, received_ms)
        if parsed.sequence is not None:
            stream, sequence = parsed.sequence
            skipped = self.sequences.observe(stream, sequence)
            if skipped < 0:
                self.metrics.duplicates += 1
                event(log, "duplicate frame dropped", venue=self.venue.name, stream=stream, sequence=sequence)
                return None
            if skipped:
                self.metrics.gaps += 1
                self.metrics.missing += skipped
                event(log, "sequence gap", venue=self.venue.name, stream=stream, sequence=sequence, skipped=skipped)
        self.metrics.frame(parsed, received_ms)
        self.producer.parsed(self.venue.name, parsed, frame, received_ms)
        if parsed.resync is None and parsed.snapshot is not None:
            parsed = self._rest_snapshot(parsed.snapshot)
        if parsed.resync is not None:
            event(log, "order book resynchronized", logging.WARNING, venue=self.venue.name, why=parsed.resync)
            return f"resync: {parsed.resync}"
        return None

    def _rest_snapshot(self, symbol: str) -> Parsed:
        """Fetch the REST snapshot `symbol`'s book waits for and start the book from it; what it becomes is
        produced and counted like a frame's. A failed fetch forgets the book and asks for a resync."""
        url = self.venue.snapshot_url(symbol)
        try:
            with urllib.request.urlopen(url, timeout=SNAPSHOT_TIMEOUT_S) as response:
                body = response.read()
            parsed = self.venue.rest_snapshot(symbol, orjson.loads(body), now_ms())
        except (OSError, ValueError, BadFrame, InvalidTick, KeyError) as exc:  # HTTP errors are OSErrors
            self.venue.forget_book(symbol)
            detail = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            parsed, body = Parsed(resync=f"book: REST snapshot of {symbol} failed: {detail[:200]}"), b""
        fetched_ms = now_ms()
        self.metrics.outcome(parsed, fetched_ms)
        self.producer.parsed(self.venue.name, parsed, body, fetched_ms)
        return parsed


def run_connector(venue: VenueParser, symbols: list[str], producer: TickProducer, stop: threading.Event, *,
                  url: str | None = None, metrics: ConnectorMetrics | None = None, **options) -> Connector:
    """Ingest `symbols` from `venue` until `stop`; `url` overrides the venue's (tests point it at a local server)."""
    connector = Connector(venue, producer, metrics)
    Connection(venue.name, url or venue.stream_url(symbols), venue.subscribe_messages(symbols), connector,
               connector.metrics, **options).run(stop)
    return connector
