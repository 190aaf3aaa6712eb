"""Fixtures that start real services: the Tansu broker and Redis, once per test session."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ascep.services import create_topics, start_broker, start_redis

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "exchange-recordings"


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
        create_topics(kafka, partitions, compacted)
    return _make


@pytest.fixture(scope="session")
def recordings() -> Path:
    if not RECORDINGS.is_dir():
        pytest.fail(f"exchange recordings not found at {RECORDINGS}")
    return RECORDINGS
