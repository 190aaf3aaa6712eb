"""Fixtures that start real services once per test session: the Tansu broker, Redis, and S3.

S3 is moto's server, in this process, on a free port. It can be stopped and started again on the
same port with its buckets kept (moto's state lives in the process): that is how tests take S3 down.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ascep.services import free_port, start_broker, start_redis
from clients.kafka import EMBEDDED, create_topics

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "exchange-recordings"


def pytest_configure(config) -> None:
    """Tests of an edited rule engine whose compiled extension is older would test the old code."""
    from ascep import compiled

    if compiled.stale():
        raise pytest.UsageError(f"{', '.join(compiled.stale())}: changed since compiled; rebuild: {compiled.REBUILD}")


# where the minutes-long tests are, the longest first
SLOW_FIRST = ("tests/faults/", "tests/infrastructure/", "tests/e2e/", "tests/deploy/")


def pytest_collection_modifyitems(items) -> None:
    """The fault and end-to-end tests first: with two workers (./dev test), the long ones then start early and
    the many short ones fill the gaps at the end, instead of one long test starting last."""
    def rank(item) -> int:
        return next((i for i, where in enumerate(SLOW_FIRST) if item.nodeid.startswith(where)), len(SLOW_FIRST))
    items.sort(key=rank)


@pytest.fixture(scope="session")
def service_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def kafka(service_logs) -> str:
    """Bootstrap address of a real Kafka-compatible broker (Tansu, in memory)."""
    broker = start_broker(service_logs)
    yield broker.address
    broker.stop()


@pytest.fixture(scope="session")
def redis_url(service_logs) -> str:
    server = start_redis(service_logs)
    yield server.address
    server.stop()


@pytest.fixture
def topic_prefix() -> str:
    """Tests share one broker; a unique prefix keeps their topics apart."""
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def make_topics(kafka):
    def _make(partitions: dict[str, int], compacted: tuple[str, ...] = ()) -> None:
        create_topics(kafka, EMBEDDED, partitions, compacted)
    return _make


@pytest.fixture(scope="session")
def recordings() -> Path:
    if not RECORDINGS.is_dir():
        pytest.fail(f"exchange recordings not found at {RECORDINGS}")
    return RECORDINGS


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        """Close the listening socket too, so clients get 'connection refused' as from a dead server."""
        self._server.stop()
        self._server._server.server_close()
        self._server = None

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> dict[str, bytes]:
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        out = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                out[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return out


@pytest.fixture(scope="session")
def s3():
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    server = S3Server()
    server.start()
    yield server
    if server._server is not None:
        server.stop()
