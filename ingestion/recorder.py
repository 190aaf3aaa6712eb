"""Record a venue's live session in the exchange-recordings format, for replaying it later.

It shares the live connection (reconnects, watchdog, rotation) with the connector, so a recording
also shows every reconnect as a new connection line, as the recordings in shared/data do.
"""
from __future__ import annotations

import threading
from pathlib import Path

from ingestion.connection import Connection
from ingestion.metrics import ConnectorMetrics
from ingestion.recording import RecordingWriter
from ingestion.venues.base import VenueParser


class Recorder:
    """A connection listener that writes what was opened, sent and received, as it happens."""

    def __init__(self, writer: RecordingWriter, metrics: ConnectorMetrics) -> None:
        self.writer = writer
        self.metrics = metrics

    def connected(self, url: str, at_ms: int) -> None:
        self.writer.connection(url, at_ms / 1000)

    def sent(self, url: str, message: str, at_ms: int) -> None:
        self.writer.sent(url, at_ms / 1000, message)

    def frame(self, frame: bytes, received_ms: int) -> None:
        self.writer.received(received_ms / 1000, frame)
        self.metrics.received(received_ms)

    def disconnected(self, reason: str) -> None:
        self.writer.flush()


def record(venue: VenueParser, symbols: list[str], out: Path, stop: threading.Event, *, url: str | None = None,
           **options) -> ConnectorMetrics:
    """Append `venue`'s frames for `symbols` to `out` until `stop`; `options` go to Connection."""
    metrics = ConnectorMetrics(venue.name)
    with RecordingWriter(out) as writer:
        Connection(venue.name, url or venue.stream_url(symbols), venue.subscribe_messages(symbols),
                   Recorder(writer, metrics), metrics, **options).run(stop)
    return metrics
