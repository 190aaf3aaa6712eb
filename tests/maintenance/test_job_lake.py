"""The maintenance Lambda compacts a lake the job wrote: a real broker, Redis, the Flink job (`ascep job run`) and a
moto S3 server, with small lake ranges so that four closed hours of simulated market leave many small objects.
`ascep analytics` gives the same figures after compaction, with fewer objects, and again after the compacted ranges
are written anew by the lake writer from the same Kafka records, as a job replaying from an old snapshot does."""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from ascep.services import start_broker, start_redis
from ascep.stack import drain
from clients.kafka import EMBEDDED, create_topics, kafka_config
from core.contracts.tick import decode_tick, watermark_in
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from flink_jobs.topology import topic_ids
from ingestion.sim.market import SimulatedMarket
from lake.layout import HOUR_MS
from lake.storage import list_files, open_lake
from lake.writer import LakeWriter
from tests.maintenance.runtime import LambdaContext

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

HOURS = 4
TICKS_PER_HOUR = 1_000
PARTITIONS = {TICKS_TOPIC: 2, TRADES_TOPIC: 2, SIGNALS_TOPIC: 1, DEADLETTER_TOPIC: 1, RULES_TOPIC: 1}
LAKE_OPTIONS = {"tick_range": 50, "signal_range": 8}


def market_file(path: Path) -> None:
    """Bursts of market in each of the four hours that ended two to five hours ago: closed, with a grace of one."""
    first_hour = int(time.time() * 1000) // HOUR_MS - HOURS - 1
    ticks = []
    for hour in range(HOURS):
        market = SimulatedMarket(seed=hour, rate=400.0, opportunity_every_s=1.0, opportunity_duration_s=0.5)
        start = (first_hour + hour) * HOUR_MS + 600_000
        ticks += itertools.islice(market.ticks(start), TICKS_PER_HOUR)
    path.write_bytes(b"\n".join(orjson.dumps(t.to_json_dict()) for t in ticks) + b"\n")


@pytest.fixture(scope="module")
def job_lake(s3, tmp_path_factory):
    """(lake URI, broker address, environment of the CLI) once the job has written the lake and was stopped."""
    work = tmp_path_factory.mktemp("job-lake")
    broker, server = start_broker(work), start_redis(work)
    lake_uri = f"s3://{s3.new_bucket()}/lake"
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
           "ASCEP_STATE_DIR": str(work / ".ascep"), "ASCEP_S3_ENDPOINT": s3.endpoint,
           "ASCEP_LAKE_OPTIONS__FLUSH_EVERY_S": "1",
           **{f"ASCEP_LAKE_OPTIONS__{k.upper()}": str(v) for k, v in LAKE_OPTIONS.items()}}
    try:
        create_topics(broker.address, EMBEDDED, PARTITIONS, compacted=(RULES_TOPIC,))
        market_file(work / "market.jsonl")
        replay = subprocess.run([sys.executable, "-m", "ascep.cli", "replay", str(work / "market.jsonl"), "--kafka",
                                 broker.address, "--redis", server.address, "--max"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert replay.returncode == 0, replay.stderr
        job = subprocess.Popen([sys.executable, "-m", "ascep.cli", "job", "run", "--kafka", broker.address, "--redis",
                                server.address, "--lake", lake_uri], env=env, stdout=open(work / "job.log", "wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
        try:  # as `ascep up` waits before it stops the job: until the lake holds all the producers sent
            assert drain(server.address, say=lambda _line: None, stop_now=lambda: job.poll() is not None,
                         timeout_s=300), f"the lake did not catch up with the topics; see {work}"
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        yield lake_uri, broker.address, env
    finally:
        server.stop()
        broker.stop()


def analytics(lake_uri: str, env: dict) -> dict:
    result = subprocess.run([sys.executable, "-m", "ascep.cli", "analytics", "--lake", lake_uri, "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def parquet_objects(lake) -> set[str]:
    return {info.path for info in list_files(lake, lake.root) if info.path.endswith(".parquet")}


def compact_with_the_handler(maintenance, monkeypatch, lake_uri: str, endpoint: str) -> dict:
    monkeypatch.setenv("ASCEP_LAKE", lake_uri)
    monkeypatch.setenv("ASCEP_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("MAINTENANCE_GRACE_MINUTES", "60")
    return maintenance.handler({"actions": ["compact"]}, LambdaContext())["compact"]


def replay_into_the_lake(lake, bootstrap: str) -> None:
    """What the job's lake archivers do with every record of `ticks` and `signals`, from offset 0: a producer's
    watermark record, sent whenever a partition was quiet for 0.1 s, is not data."""
    ids = topic_ids(bootstrap, EMBEDDED, (TICKS_TOPIC, SIGNALS_TOPIC))
    consumer = Consumer(kafka_config(bootstrap, EMBEDDED, {"group.id": "lake-replay", "enable.auto.commit": False}))
    for topic in (TICKS_TOPIC, SIGNALS_TOPIC):
        writer = LakeWriter(lake, topic_id=ids[topic], **LAKE_OPTIONS)
        for partition in range(PARTITIONS[topic]):
            end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
            consumer.assign([TopicPartition(topic, partition, 0)])
            last = -1
            while last < end - 1:
                for message in consumer.consume(500, timeout=5):
                    if topic == SIGNALS_TOPIC:
                        writer.add_signals(partition, message.offset(), (orjson.loads(message.value()),))
                    elif watermark_in(message.value()) is None:
                        writer.add_ticks(partition, message.offset(), (decode_tick(message.value()),))
                    last = message.offset()
            writer.flush(partition, last)
    consumer.close()


def test_compaction_of_the_jobs_lake_keeps_the_analytics_figures(job_lake, maintenance, s3, monkeypatch):
    lake_uri, bootstrap, env = job_lake
    lake = open_lake(lake_uri, s3.endpoint)
    figures, written = analytics(lake_uri, env), parquet_objects(lake)
    assert figures["totals"]["ticks"] == HOURS * TICKS_PER_HOUR and figures["totals"]["signals"] > 10

    report = compact_with_the_handler(maintenance, monkeypatch, lake_uri, s3.endpoint)
    compacted = parquet_objects(lake)
    assert analytics(lake_uri, env) == figures
    assert report["merged"] and len(compacted) < len(written) / 3, f"{len(written)} objects became {len(compacted)}"

    replay_into_the_lake(lake, bootstrap)
    assert len(parquet_objects(lake)) > len(compacted), "the replay wrote the writer's own objects again"
    assert analytics(lake_uri, env) == figures
    report = compact_with_the_handler(maintenance, monkeypatch, lake_uri, s3.endpoint)
    assert report["redundant_deleted"] and parquet_objects(lake) == compacted, "the same objects as before the replay"
