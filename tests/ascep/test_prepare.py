"""`ascep prepare` against a real broker and a real S3 server (moto): the topics and the lake's bucket that
docker-compose.yml's setup service makes before anything else starts, and nothing changed on a second run."""
from __future__ import annotations

import boto3
import pytest
from confluent_kafka.admin import AdminClient

from ascep.cli import main
from ascep.services import start_broker

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path):
    service = start_broker(tmp_path / "logs")
    yield service.address
    service.stop()


def partitions(bootstrap: str) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {name: len(topic.partitions) for name, topic in topics.items() if not name.startswith("_")}


def test_prepare_makes_the_topics_and_the_bucket_once(broker, s3, monkeypatch, capsys):
    bucket = "prepared-lake"
    monkeypatch.setenv("ASCEP_JOB__PARTITIONS", "3")
    monkeypatch.setenv("ASCEP_S3_ENDPOINT", s3.endpoint)
    where = ["--kafka", broker, "--lake", f"s3://{bucket}/ascep"]

    assert main(["prepare", *where]) == 0
    assert partitions(broker) == {"ticks": 3, "trades": 3, "signals": 3, "deadletter": 1, "rules": 1}
    assert f"lake s3://{bucket}/ascep: bucket created on {s3.endpoint}" in capsys.readouterr().out
    boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1").head_bucket(Bucket=bucket)

    monkeypatch.setenv("ASCEP_JOB__PARTITIONS", "5")  # existing topics are left as they are
    assert main(["prepare", *where]) == 0
    assert partitions(broker)["ticks"] == 3
    assert "bucket present" in capsys.readouterr().out


def test_prepare_with_a_local_lake_makes_only_the_topics(broker, tmp_path, capsys):
    assert main(["prepare", "--kafka", broker, "--lake", str(tmp_path / "lake")]) == 0
    assert set(partitions(broker)) == {"ticks", "trades", "signals", "deadletter", "rules"}
    assert "bucket" not in capsys.readouterr().out
    assert not (tmp_path / "lake").exists()


def test_prepare_names_the_broker_it_cannot_reach(tmp_path, capsys):
    assert main(["prepare", "--kafka", "127.0.0.1:1"]) == 1
    assert "127.0.0.1:1" in capsys.readouterr().err
