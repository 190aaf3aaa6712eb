"""A connector whose book fails its checksum reopens the connection and rebuilds the book from new snapshots.

A local exchange serves the recorded Kraken book session, with one size altered on the first connection
only; what reaches the broker is checked against the same frames parsed offline in the same order.
"""
from __future__ import annotations

import orjson
import pytest

from core.contracts.tick import tick_from_dict
from ingestion.producer import Topics
from ingestion.venues import get_venue
from tests.ingestion.kafka_read import consume
from tests.ingestion.test_connection import Ingest, wait_for
from tests.ingestion.test_recordings import corrupted, in_top
from tests.ingestion.wsreplay import LiveFeed, ReplayServer

NOW = 1_700_000_000_000
FRAMES = 700  # the first ~6 s of KRAKEN.ws.50.0: acks, ten snapshots, updates


@pytest.fixture
def book_topics(topic_prefix, make_topics) -> Topics:
    names = Topics(f"{topic_prefix}ticks", f"{topic_prefix}trades", f"{topic_prefix}deadletter")
    make_topics({names.ticks: 1, names.trades: 1, names.deadletter: 1})
    return names


def test_checksum_mismatch_reopens_the_connection_and_the_book_is_rebuilt(recordings, kafka, book_topics, tmp_path):
    lines = (recordings / "KRAKEN.ws.50.0").read_text().splitlines()
    path = tmp_path / "kraken-book.ws"
    path.write_text("\n".join(lines[:2 + FRAMES]) + "\n")  # the connection and subscribe lines, then frames
    feed = LiveFeed(path, speed=4.0)
    clean = get_venue("kraken", any_symbol=True)
    outcomes = [clean.parse(frame, NOW) for frame in feed.frames]
    index, which = next((i, which) for i, frame in enumerate(feed.frames)
                        if (which := in_top(frame, outcomes[i])) is not None)
    first = list(feed.frames)
    first[index] = corrupted(first[index], which)

    # Offline, in the order the connector must see them: up to the bad frame, then the whole session again.
    offline = get_venue("kraken", any_symbol=True)
    seen = [offline.parse(frame, NOW) for frame in first[:index + 1] + feed.frames]
    expected = [(t.symbol, t.bids, t.asks) for p in seen for t in p.ticks]
    assert seen[index].resync is not None and sum(p.resync is not None for p in seen) == 1

    server = ReplayServer(feed, from_start=True, first_frames=first).start()
    ingest = Ingest("kraken", server.url, kafka, book_topics)
    wait_for(lambda: ingest.connector.metrics.ticks >= len(expected), 30, "the rebuilt books' ticks")
    server.stop()
    metrics = ingest.finish()

    assert (metrics.resyncs, metrics.connects, server.connections) == (1, 2, 2)
    got = [tick_from_dict(orjson.loads(v)) for v in consume(kafka, book_topics.ticks, len(expected))]
    assert [(t.symbol, t.bids, t.asks) for t in got] == expected
    (dead,) = [orjson.loads(v) for v in consume(kafka, book_topics.deadletter, 1)]
    assert dead["reason"].startswith(f"checksum mismatch on the {outcomes[index].ticks[0].symbol} book")
