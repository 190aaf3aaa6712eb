"""/api/latency, /api/services and /metrics against a real dashboard, with Redis written the way the job, the
producers and the connectors write it."""
from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest
import requests
from dashboard_testing import start_open_dashboard
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from ascep.services import free_port
from clients.kafka import EMBEDDED
from core.clock import now_ms
from core.contracts.redis_keys import LATENCY_TTL_S, ingest_key, latency_key, progress_field
from core.contracts.tick import Tick
from core.latency import STAGE_NAMES, StageLatencies, bin_of, summary_doc
from core.progress import Progress
from dashboard import latency as dashboard_latency
from ingestion.metrics import ConnectorMetrics, publish_to_redis
from ingestion.producer import TickProducer, Topics
from ingestion.venues.base import Parsed
from lake.storage import open_lake
from lake.writer import LakeWriter

pytestmark = pytest.mark.integration


def stages(api) -> dict[str, dict]:
    report = api("/api/latency")
    assert [row["stage"] for row in report["stages"]] == list(STAGE_NAMES) and report["window_s"] == 60
    return {row["stage"]: row for row in report["stages"]}


def written_like_the_job(sink, writer: str, samples: dict[str, list[float]], at_ms: float | None = None) -> None:
    """A reader's or the sink's windows, reported through the job's own RedisSink."""
    at_ms = time.time() * 1000 if at_ms is None else at_ms
    latencies = StageLatencies(tuple(samples))
    for stage, values in samples.items():
        for value in values:
            latencies.add(stage, value, at_ms / 1000)
    sink.report_latency(writer, latencies.report(at_ms))


def test_latency_merges_every_writer_of_a_stage(api, sink):
    written_like_the_job(sink, "job:read:0", {"kafka_job": [5.0] * 90})
    written_like_the_job(sink, "job:read:1", {"kafka_job": [400.0] * 10})
    written_like_the_job(sink, "job:sink:0", {"job": [20.0] * 50 + [80.0] * 50, "job_redis": [2.0]})

    rows = stages(api)
    kafka_job = rows["kafka_job"]
    assert kafka_job["writers"] == ["job:read:0", "job:read:1"] and kafka_job["count"] == 100
    assert kafka_job["p50_ms"] == pytest.approx(5.0, rel=0.02)
    assert kafka_job["p99_ms"] == pytest.approx(400.0, rel=0.02)  # the slow reader's tail, which no p99 of one gives
    assert rows["job"]["p50_ms"] == pytest.approx(20.0, rel=0.02) and rows["job"]["p99_ms"] == pytest.approx(80, 0.02)
    assert rows["job_redis"]["count"] == 1 and rows["job"]["writers"] == ["job:sink:0"]
    assert (rows["exchange_ingest"]["count"], rows["exchange_ingest"]["p50_ms"]) == (0, None)
    assert 0 < sink.client.ttl(latency_key("job:read:0")) <= LATENCY_TTL_S


def test_latency_leaves_out_a_writer_that_stopped_a_minute_ago_and_an_unreadable_entry(api, sink):
    written_like_the_job(sink, "job:read:0", {"kafka_job": [3.0] * 10})
    written_like_the_job(sink, "job:read:1", {"kafka_job": [900.0] * 10}, at_ms=time.time() * 1000 - 61_000)
    sink.client.hset(latency_key("job:read:2"), "kafka_job", b'{"at": "yesterday"}')
    sink.client.hset(latency_key("job:read:2"), "job", summary_doc({bin_of(7.0): 4}, now_ms()))

    rows = stages(api)
    assert rows["kafka_job"]["writers"] == ["job:read:0"] and rows["kafka_job"]["max_ms"] == pytest.approx(3, 0.02)
    assert rows["job"]["writers"] == ["job:read:2"] and rows["job"]["count"] == 4


def test_a_producer_reports_exchange_to_ingest_and_ingest_to_kafka(api, sink, kafka, make_topics, topic_prefix):
    topics = Topics(ticks=f"{topic_prefix}ticks", trades=f"{topic_prefix}trades",
                    deadletter=f"{topic_prefix}deadletter")
    make_topics({topics.ticks: 1, topics.trades: 1, topics.deadletter: 1})
    with TickProducer(kafka, EMBEDDED, topics=topics, ends_to=sink.url) as producer:
        for _ in range(200):
            received = now_ms()
            producer.parsed("kraken", Parsed(ticks=[Tick("kraken", "BTC/USDT", 100.0, 100.1, None, None,
                                                         received - 25)]), b"{}", received)
        assert producer.flush(10) == 0
        producer.tick(Tick("kraken", "BTC/USDT", 100.0, 100.1, None, None, now_ms() - 10**9))  # a replayed tick

    rows = stages(api)
    exchange = rows["exchange_ingest"]
    assert exchange["count"] == 200 and exchange["writers"][0].startswith("ingest:")
    assert exchange["p50_ms"] == pytest.approx(25.0, rel=0.02) and exchange["max_ms"] == pytest.approx(25, 0.02)
    kafka_stage = rows["ingest_kafka"]
    assert kafka_stage["count"] >= 200 - 8 and kafka_stage["writers"] == exchange["writers"]
    assert 0 < kafka_stage["p50_ms"] <= kafka_stage["p99_ms"] < 10_000


def test_the_relay_records_the_time_from_publish_to_socket():
    now = now_ms()
    for published in (now - 30, now - 30, now - 31):
        dashboard_latency.observe_websocket(published)
    for not_a_time in (None, "1763700000000", True):
        dashboard_latency.observe_websocket(not_a_time)  # a message from a job that does not stamp them
    (writer, own), = dashboard_latency.own_summaries(now_ms()).items()
    at, histogram = own["redis_websocket"]
    assert writer.startswith("dashboard:") and sum(histogram.values()) == 3
    assert min(histogram) >= bin_of(29.0) and max(histogram) <= bin_of(1_000.0)


def by_name(api) -> dict[str, dict]:
    report = api("/api/services")
    names = [service["name"] for service in report["services"]]
    assert names[:5] == ["broker", "redis", "job", "lake", "dashboard"], names
    return {service["name"]: service for service in report["services"]}


def connector(venue: str, connected: bool, url: str, sink) -> None:
    """A connector's metrics hash, published by the connectors' own publisher (one round, then it stops)."""
    metrics = ConnectorMetrics(venue)
    metrics.connected = connected
    metrics.last_frame_ms = now_ms() - 1_000
    stop = threading.Event()
    publisher = publish_to_redis(metrics, sink.url, stop, every_s=60, address=url)
    deadline = time.monotonic() + 10
    while not sink.client.exists(ingest_key(venue)):
        assert time.monotonic() < deadline, f"no metrics hash of {venue}"
        time.sleep(0.05)
    stop.set()
    publisher.join()


def test_services_say_what_each_component_last_proved(api, sink, dashboard_redis):
    now = now_ms()
    sink.announce_job()
    sink.report_progress(progress_field("read", "ticks", 0), Progress(10, now - 500, now - 200).to_json())
    sink.report_progress(progress_field("lake", "ticks", 0), Progress(10, now - 900, now - 300).to_json())
    connector("kraken", True, "wss://ws.kraken.com/v2", sink)
    connector("coinbase", False, "wss://ws-feed.exchange.coinbase.com", sink)

    services = by_name(api)
    assert services["broker"]["status"] == "unknown" and "no kafka address" in services["broker"]["detail"]["error"]
    redis_entry = services["redis"]
    assert redis_entry["status"] == "up" and redis_entry["address"] == dashboard_redis
    assert redis_entry["last_heartbeat"] >= now and redis_entry["detail"]["ping_ms"] >= 0
    job = services["job"]
    assert (job["status"], job["last_heartbeat"]) == ("up", now - 200)
    assert job["detail"]["started_at"] >= now and [r["stage"] for r in job["detail"]["readers"]] == ["read"]
    lake = services["lake"]
    assert lake["status"] == "up" and lake["detail"]["newest_write"] is None  # the fixture's lake was never written
    assert lake["detail"]["archived_at"] == now - 300 and lake["detail"]["archivers"][0]["status"] == "ok"
    dashboard_entry = services["dashboard"]
    assert dashboard_entry["status"] == "up" and dashboard_entry["detail"]["uptime_s"] > 0
    kraken, coinbase = services["kraken"], services["coinbase"]
    assert (kraken["kind"], kraken["status"], kraken["address"]) == ("connector", "up", "wss://ws.kraken.com/v2")
    assert kraken["last_heartbeat"] >= now and kraken["last_heartbeat_iso"].endswith("Z")
    assert kraken["detail"]["last_frame_ms"] == pytest.approx(now - 1_000, abs=1_000)
    assert coinbase["status"] == "down"


def test_a_stalled_job_is_down_in_services_as_in_health(api, sink):
    now = now_ms()
    sink.announce_job()
    sink.report_progress(progress_field("read", "ticks", 0), Progress(50, now - 20_000, now).to_json())
    sink.raise_topic_ends({"ticks:0": 100})
    job = by_name(api)["job"]
    assert job["status"] == "down" and job["detail"]["readers"][0]["lag"] == 50


@pytest.fixture(scope="module")
def probing_dashboard(kafka, dashboard_redis, service_logs, tmp_path_factory):
    """A dashboard of this module's own (the session's has the browser tests' pages open), told where the broker
    is, with a lake that has been written to."""
    lake_dir = tmp_path_factory.mktemp("written-lake")
    writer = LakeWriter(open_lake(str(lake_dir)), topic_id=str(uuid.uuid4()))
    writer.add_ticks(0, 0, [Tick("kraken", "BTC/USDT", 1.0, 1.1, None, None, now_ms())])
    writer.flush(0, 0)
    server = start_open_dashboard(dashboard_redis, service_logs,
                                  env={"ASCEP_KAFKA": kafka, "ASCEP_LAKE": str(lake_dir)})
    yield server.address
    server.stop()


def test_services_probe_the_broker_and_the_lake(probing_dashboard, kafka):
    started = now_ms()
    report = requests.get(probing_dashboard + "/api/services", timeout=10).json()
    services = {service["name"]: service for service in report["services"]}
    broker = services["broker"]
    assert (broker["status"], broker["address"]) == ("up", kafka) and broker["last_heartbeat"] >= started
    assert broker["detail"]["brokers"] == [kafka]
    lake = services["lake"]["detail"]["newest_write"]
    assert lake["manifest"].endswith(".json") and started - 120_000 < lake["at"] <= now_ms() + 1_000


def test_with_the_broker_and_redis_away_services_say_so_and_know_nothing_of_the_job(service_logs, tmp_path):
    dead_broker, dead_redis = f"127.0.0.1:{free_port()}", f"redis://127.0.0.1:{free_port()}/0"
    server = start_open_dashboard(dead_redis, service_logs,
                                  env={"ASCEP_KAFKA": dead_broker, "ASCEP_LAKE": str(tmp_path)})
    try:
        reply = requests.get(server.address + "/api/services", timeout=20)
        signals = requests.get(server.address + "/api/signals", timeout=10)
        metrics = requests.get(server.address + "/metrics", timeout=10).text
    finally:
        server.stop()
    assert reply.status_code == 200
    services = {service["name"]: service for service in reply.json()["services"]}
    assert services["broker"]["status"] == "down" and services["broker"]["last_heartbeat"] is None
    assert "transport" in services["broker"]["detail"]["error"].lower()
    assert services["redis"]["status"] == "down" and "redis unavailable" in services["redis"]["detail"]["error"]
    assert services["job"]["status"] == "unknown" and services["lake"]["status"] == "up"
    assert signals.status_code == 503
    assert sample(metrics, "ascep_dashboard_redis_errors_total", route="api/signals") == 1


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus exposition; 0 when it has none (a counter never incremented)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


def scrape(dashboard: str) -> str:
    reply = requests.get(dashboard + "/metrics", timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    return reply.text


def test_metrics_count_requests_by_route_and_status(dashboard, sink):
    before = scrape(dashboard)
    for _ in range(3):
        requests.get(dashboard + "/api/signals/deadbeef", timeout=10)
    requests.get(dashboard + "/api/health", timeout=10)
    requests.get(dashboard + "/no/such/page", timeout=10)
    after = scrape(dashboard)

    def grew(**labels: str) -> float:
        return (sample(after, "ascep_dashboard_requests_total", method="GET", **labels)
                - sample(before, "ascep_dashboard_requests_total", method="GET", **labels))

    assert grew(route="api/signals/<signal_id>", status="404") == 3
    assert grew(route="api/health", status="200") == 1
    assert grew(route="(unmatched)", status="404") == 1
    assert sample(after, "ascep_dashboard_request_seconds_count", method="GET", route="api/health") >= 1
    schema = requests.get(dashboard + "/api/openapi.json", timeout=10).json()
    assert "/metrics" not in schema["paths"] and {"/api/latency", "/api/services"} <= set(schema["paths"])


def open_sockets_become(dashboard: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while sample(scrape(dashboard), "ascep_dashboard_websocket_clients") != count:
        assert time.monotonic() < deadline, f"the dashboard does not count {count} open socket(s)"
        time.sleep(0.1)


def test_metrics_count_open_websockets_and_what_the_relay_forwards(probing_dashboard, sink):
    dashboard = probing_dashboard
    open_sockets_become(dashboard, 0)
    with connect(dashboard.replace("http://", "ws://") + "/ws/live", origin=dashboard, proxy=None,
                 open_timeout=10) as socket:
        socket.send(orjson.dumps({"kind": "subscribe_prices"}).decode())  # every price (docs/live-protocol.md)
        assert orjson.loads(socket.recv(timeout=10))["kind"] == "subscribed"
        relayed = sample(scrape(dashboard), "ascep_dashboard_live_relay_relayed_total")
        sink.write_prices([Tick("okx", "ETH/USDT", 3000.0, 3000.5, None, None, now_ms())], 1, 0)
        assert orjson.loads(socket.recv(timeout=10))["kind"] == "price_update"
        during = scrape(dashboard)
        assert sample(during, "ascep_dashboard_websocket_clients") == 1
        assert sample(during, "ascep_dashboard_live_relay_running") == 1
        assert sample(during, "ascep_dashboard_live_relay_relayed_total") > relayed
    open_sockets_become(dashboard, 0)
