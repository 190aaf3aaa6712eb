"""The live connection against a local exchange serving real recorded frames, into a real broker."""
from __future__ import annotations

import threading
import time
import urllib.request

import orjson
import pytest

from ascep.services import free_port
from clients.kafka import EMBEDDED
from core.backoff import Backoff
from core.contracts.tick import tick_from_dict
from ingestion.connection import Connection, Connector, SequenceTracker
from ingestion.metrics import ConnectorMetrics, RateMeter, ingest_key, publish_to_redis, serve_prometheus
from ingestion.producer import TickProducer, Topics
from ingestion.venues import get_venue
from tests.ingestion.kafka_read import consume
from tests.ingestion.wsreplay import LiveFeed, ReplayServer

FAST = {"backoff": Backoff(initial_s=0.1, max_s=0.5)}


@pytest.fixture
def topics(topic_prefix, make_topics) -> Topics:
    names = Topics(f"{topic_prefix}ticks", f"{topic_prefix}trades", f"{topic_prefix}deadletter")
    make_topics({names.ticks: 1, names.trades: 1, names.deadletter: 1})
    return names


class Ingest:
    """A connector on its own thread, as `ascep ingest VENUE` runs it."""

    def __init__(self, venue_name: str, url: str, kafka: str, topics: Topics, *, venue_options: dict | None = None,
                 **options) -> None:
        self.venue = get_venue(venue_name, any_symbol=True, **(venue_options or {}))
        self.producer = TickProducer(kafka, EMBEDDED, topics=topics)
        self.connector = Connector(self.venue, self.producer)
        self.stop = threading.Event()
        connection = Connection(venue_name, url, self.venue.subscribe_messages(["BTC/USD"]), self.connector,
                                self.connector.metrics, **{**FAST, **options})
        self.thread = threading.Thread(target=connection.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def finish(self) -> ConnectorMetrics:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.producer.close()
        return self.connector.metrics


def expected_ticks(venue_name: str, frames: list[str]) -> list[tuple]:
    """What the connector makes of `frames`, but for the time (a book snapshot without one is dated when received)."""
    venue = get_venue(venue_name, any_symbol=True)
    return [tick[:6] for frame in frames for tick in venue.parse(frame, 1_700_000_000_000).ticks]


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_reconnects_after_the_exchange_dies_and_loses_only_the_outage(recordings, kafka, topics):
    feed = LiveFeed(recordings / "COINBASE.ws.28.0", speed=3.0)
    server = ReplayServer(feed, start_on_subscription=True).start()  # however slow the connect, from the snapshots
    ingest = Ingest("coinbase", server.url, kafka, topics)
    time.sleep(4.0)
    server.stop()
    sent_before = len(server.sent)
    time.sleep(1.5)
    server.start()
    wait_for(lambda: feed.finished, 15, "the recording to play out")
    time.sleep(0.3)
    server.stop()
    metrics = ingest.finish()

    assert server.received and orjson.loads(server.received[-1])["type"] == "subscribe"
    expected = expected_ticks("coinbase", server.sent)
    got = [tick_from_dict(orjson.loads(v))[:6] for v in consume(kafka, topics.ticks, len(expected))]
    assert got == expected  # every tick the exchange sent, once, in order
    before = expected_ticks("coinbase", server.sent[:sent_before])
    assert len(before) > 20 and len(expected) - len(before) > 20  # after the outage too (book ticks included)
    assert len(expected) < len(expected_ticks("coinbase", feed.frames))  # the outage did lose some
    assert metrics.connects == 2 and metrics.reconnects == 1 and metrics.frames == len(server.sent)
    assert metrics.gaps > 0 and metrics.missing > 0  # coinbase sequences jump across the outage (and conflation)
    assert metrics.lag_ms is not None and metrics.duplicates == 0


def test_a_server_that_repeats_itself_after_a_reconnect_makes_no_duplicates(recordings, kafka, topics):
    feed = LiveFeed(recordings / "COINBASE.ws.28.0", speed=30.0)
    server = ReplayServer(feed, from_start=True).start()
    ingest = Ingest("coinbase", server.url, kafka, topics)
    wait_for(lambda: len(server.sent) == len(feed.frames), 10, "the first full replay")
    server.stop()
    server.start()
    wait_for(lambda: len(server.sent) == 2 * len(feed.frames), 10, "the repeated replay")
    time.sleep(0.3)
    server.stop()
    metrics = ingest.finish()

    # The repeated tickers are dropped by their sequence numbers. Book ticks have none: the repeat restarts
    # each book from its snapshot, as a venue does after a reconnect, and its ticks are the new book's.
    venue = get_venue("coinbase", any_symbol=True)
    first = [tick[:6] for frame in feed.frames for tick in venue.parse(frame, 1_700_000_000_000).ticks]
    again = [tick[:6] for frame in feed.frames for tick in venue.parse(frame, 1_700_000_000_000).ticks
             if tick.bids is not None]
    got = [tick_from_dict(orjson.loads(v))[:6] for v in consume(kafka, topics.ticks, len(first) + len(again))]
    assert got == first + again
    assert metrics.duplicates == len(first) - len(again) > 100


def test_watchdog_drops_a_feed_that_only_pings_and_pings_are_answered(recordings, kafka, topics):
    feed = LiveFeed(recordings / "COINBASE.ws.28.0")
    server = ReplayServer(feed, silent=True, ping_every_s=0.2).start()
    ingest = Ingest("coinbase", server.url, kafka, topics, watchdog_s=1.0)
    wait_for(lambda: ingest.connector.metrics.connects >= 3 and server.connections >= 3, 8, "two reconnects")
    metrics = ingest.finish()
    server.stop()
    assert server.pongs >= 5 and metrics.pings >= 5
    assert metrics.watchdog_closes >= 2 and metrics.frames == 0


def test_connections_are_replaced_before_their_maximum_age(recordings, kafka, topics):
    feed = LiveFeed(recordings / "BINANCE.ws.1.0", speed=10.0)
    server = ReplayServer(feed).start()
    ingest = Ingest("binance", server.url, kafka, topics, max_connection_s=0.7)
    wait_for(lambda: feed.finished, 10, "the recording to play out")
    metrics = ingest.finish()
    server.stop()
    assert metrics.rotations >= 2 and metrics.connects == metrics.rotations + 1
    assert metrics.frames > 0.8 * len(server.sent) and metrics.ticks > 0


def test_unreachable_exchange_is_retried_with_growing_delays():
    metrics = ConnectorMetrics("coinbase")
    stop = threading.Event()
    backoff = Backoff(initial_s=0.05, max_s=0.4)
    waits: list[tuple[int, float]] = []  # (attempt, delay), each time the connection asks its backoff
    policy = backoff.delay

    def recorded(attempt: int) -> float:
        waits.append((attempt, policy(attempt)))
        return waits[-1][1]

    backoff.delay = recorded
    url = f"ws://127.0.0.1:{free_port()}/"
    thread = threading.Thread(target=Connection("coinbase", url, [], None, metrics, backoff=backoff).run,
                              args=(stop,), daemon=True)
    thread.start()
    time.sleep(1.2)
    stop.set()
    thread.join(2)
    assert 3 <= metrics.connect_failures <= 12 and metrics.connects == 0
    # one wait per failure, for attempts 0, 1, 2, ...: 0.05 s doubling up to 0.4 s, jitter taking up to half off
    assert [attempt for attempt, _ in waits] == list(range(metrics.connect_failures))
    for attempt, delay in waits:
        assert min(0.4, 0.05 * 2 ** attempt) / 2 <= delay <= min(0.4, 0.05 * 2 ** attempt), (attempt, delay)


def test_sequence_tracker_tells_gaps_from_repeats():
    tracker = SequenceTracker()
    assert [tracker.observe("BTC/USD", n) for n in (5, 6, 9, 9, 7, 10)] == [0, 0, 2, -1, -1, 0]
    assert tracker.observe("ETH/USD", 1) == 0


def test_metrics_reach_redis_and_prometheus(redis_url):
    import redis

    clock = [1000.0]
    metrics = ConnectorMetrics("kraken", clock=lambda: clock[0])
    venue = get_venue("coinbase", any_symbol=True)
    frame = ('{"type":"ticker","sequence":1,"product_id":"BTC-USD","best_bid":"100.5","best_ask":"101",'
             '"time":"2021-04-17T16:43:30.000Z"}')
    for _ in range(30):
        metrics.frame(venue.parse(frame, 1618677810250), 1618677810250)
    assert metrics.snapshot()["ticks_per_s"] == 3.0 and metrics.lag_ms == pytest.approx(250)
    clock[0] += 20
    assert metrics.snapshot()["ticks_per_s"] == 0.0  # a stalled feed shows no rate

    stop = threading.Event()
    publish_to_redis(metrics, redis_url, stop, every_s=0.1)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: client.hget(ingest_key("kraken"), "ticks") == "30", 5, "the metrics hash")
    stop.set()
    assert 0 < client.ttl(ingest_key("kraken")) <= 15

    port = free_port()
    server = serve_prometheus([metrics], port)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'ascep_ingest_ticks_total{venue="kraken"} 30' in text
    assert "# TYPE ascep_ingest_lag_ms gauge" in text


def test_rate_meter_forgets_old_seconds():
    clock = [0.0]
    meter = RateMeter(lambda: clock[0], window_s=2)
    meter.add(4)
    clock[0] = 1.5
    meter.add(2)
    assert meter.per_second() == 3.0
    clock[0] = 2.2
    assert meter.per_second() == 1.0


def test_record_command_writes_a_replayable_recording(recordings, tmp_path):
    import ascep.commands.record  # noqa: F401 - load the command now, so the feed does not play out while it loads
    import ingestion.recorder  # noqa: F401
    from ascep.cli import main
    from ingestion.recording import Connection as Opened
    from ingestion.recording import Received, Sent, read_recording

    feed = LiveFeed(recordings / "KRAKEN.ws.49.0", speed=10.0)
    server = ReplayServer(feed).start()
    out = tmp_path / "kraken.rec"
    try:
        assert main(["record", "kraken", "--out", str(out), "--url", server.url, "--symbols", "BTC/USD,ETH/USD",
                     "--duration", "2.5"]) == 0
    finally:
        server.stop()
    entries = list(read_recording(out))
    assert isinstance(entries[0], Opened) and entries[0].url == server.url
    assert [e.data for e in entries if isinstance(e, Sent)] == server.received
    assert orjson.loads(server.received[0])["method"] == "subscribe"
    frames = [e.data for e in entries if isinstance(e, Received)]
    assert len(frames) > 10 and frames == server.sent[:len(frames)]  # only frames in flight at the stop are left


def test_ingest_sim_command_stops_cleanly_on_sigterm(kafka, topic_prefix, make_topics):
    import signal
    import subprocess
    import sys

    topic = f"{topic_prefix}ticks"
    make_topics({topic: 2})
    proc = subprocess.Popen([sys.executable, "-m", "ascep.cli", "ingest", "sim", "--rate", "100", "--kafka", kafka,
                             "--topic", topic], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: proc.poll() is None and len(consume(kafka, topic, 1, 3, partitions=2)) > 0, 30,
                 "the first ticks")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    sent = int(out.split()[1])
    assert sent > 50 and len(consume(kafka, topic, sent, partitions=2)) == sent


# --- order books through the live connection ---------------------------------------------------------------------

def test_gemini_books_reach_kafka_and_a_bad_update_reopens_the_connection(recordings, tmp_path, kafka, topics):
    """Gemini's recorded session with one FILUSD delta corrupted half-way: the book is discarded, the frame
    dead-lettered, the connection reopened; this server sends no new full book, so FILUSD makes no tick after."""
    lines = (recordings / "GEMINI.ws.1.0").read_text().splitlines()
    bad = '{"type":"l2_updates","symbol":"FILUSD","changes":[["sell","58.5738","-9"]]}'
    assert lines[337].startswith("1624493684.3652558: ") and "FILUSD" in lines[337]
    lines[337] = "1624493684.3652558: " + bad
    path = tmp_path / "gemini.ws"
    path.write_text("\n".join(lines) + "\n")
    feed = LiveFeed(path, speed=10.0)
    server = ReplayServer(feed, start_on_subscription=True).start()
    ingest = Ingest("gemini", server.url, kafka, topics)
    wait_for(lambda: feed.finished, 15, "the recording to play out")
    time.sleep(0.3)
    server.stop()
    metrics = ingest.finish()

    assert orjson.loads(server.received[0]) == {"type": "subscribe", "subscriptions": [
        {"name": "l2", "symbols": ["BTCUSD"]}]}  # what Ingest subscribes; the server plays the recording anyway
    assert metrics.resyncs == 1 and metrics.connects == 2 and metrics.reconnects == 1
    # What the server sent the first connection after the bad frame, before it saw the close, the connector
    # never read: only the ticks up to the bad frame are known exactly.
    before = expected_ticks("gemini", server.sent[:server.sent.index(bad)])
    got = [tick_from_dict(orjson.loads(v)) for v in consume(kafka, topics.ticks, len(before) + 1)]
    assert [tick[:6] for tick in got[:len(before)]] == before and len(before) > 200
    assert ("gemini", "FIL/USD") in {tick[:2] for tick in before}
    assert len(got) > len(before) and not [t for t in got[len(before):] if t.symbol == "FIL/USD"]
    assert all(tick.bids and tick.asks and tick.bid < tick.ask for tick in got)
    (dead,) = [orjson.loads(v) for v in consume(kafka, topics.deadletter, 1)]
    assert dead["reason"] == "book: bad l2_updates: field 'changes[0]': bad book level: price '58.5738', size '-9'"
    assert len(consume(kafka, topics.trades, 500)) >= 500  # the 10 full books' 50 latest trades, then trade events


class DepthSnapshots:
    """A local stand-in for Binance's REST /api/v3/depth beside a replay server: each answer's lastUpdateId is the
    `u` of the newest diff the replay server has sent for the symbol, with one far level a side (the diffs after
    it fill in the rest). `fail_first` answers the first request with HTTP 500."""

    def __init__(self, server: ReplayServer, fail_first: bool = False) -> None:
        import http.server

        self.requests: list[str] = []
        snapshots = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                symbol = self.path.partition("symbol=")[2].partition("&")[0]
                snapshots.requests.append(symbol)
                if fail_first and len(snapshots.requests) == 1:
                    self.send_error(500, "busy")
                    return
                ids = [orjson.loads(f)["data"]["u"] for f in list(server.sent)
                       if '"e":"depthUpdate"' in f and f'"s":"{symbol}"' in f]
                body = orjson.dumps({"lastUpdateId": ids[-1], "bids": [["0.00000001", "1"]],
                                     "asks": [["100000", "1"]]})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.mark.parametrize("fail_first", [False, True])
def test_binance_diff_books_start_from_a_rest_snapshot(recordings, kafka, topics, fail_first):
    feed = LiveFeed(recordings / "BINANCE.ws.1.0", speed=5.0)
    server = ReplayServer(feed).start()
    snapshots = DepthSnapshots(server, fail_first=fail_first)
    ingest = Ingest("binance", server.url, kafka, topics,
                    venue_options={"depth": "depth@100ms", "rest": snapshots.url})
    wait_for(lambda: feed.finished, 15, "the recording to play out")
    time.sleep(0.3)
    server.stop()
    snapshots.close()
    metrics = ingest.finish()

    # A failed fetch reopens the connection once, and the book asks again; the recorded diffs have no gap.
    assert (metrics.resyncs, metrics.connects) == ((1, 2) if fail_first else (0, 1))
    assert snapshots.requests == ["NKNUSDT"] * (2 if fail_first else 1) + ["BLZETH", "LRCBTC", "RUNEEUR"]
    ticks = [tick_from_dict(orjson.loads(v)) for v in consume(kafka, topics.ticks, metrics.ticks)]
    books = [tick for tick in ticks if tick.bids is not None]
    assert len(ticks) == metrics.ticks and {tick.symbol for tick in books} == {"NKN/USDT", "BLZ/ETH", "LRC/BTC",
                                                                               "RUNE/EUR"}
    nkn = [tick for tick in books if tick.symbol == "NKN/USDT"]
    # The first tick is the snapshot's far levels; the diffs then bring NKN's real bids and asks, near 0.35 (after
    # a reconnect the feed goes on where the clock is, so the first diffs may bring one side before the other).
    assert nkn[0].bids == ((1e-08, 1.0),)
    real = next(i for i, tick in enumerate(nkn) if tick.bid > 0.34)
    assert len(nkn) - real > 100 and all(0.34 < tick.bid < tick.ask for tick in nkn[real:]) and nkn[-1].ask < 0.36
