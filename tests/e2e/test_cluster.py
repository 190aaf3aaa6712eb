"""`ascep job run` with a cluster given (ASCEP_FLINK or --flink) submits the job to a real standalone Flink
cluster (pyflink/bin), not a MiniCluster."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import redis

from ascep.services import flink_rest, start_broker, start_flink_cluster, start_redis
from ascep.stack import ensure_topics
from core.contracts.signal import signal_id
from core.settings import load_settings
from flink_jobs.launcher import python_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

T0 = 1_700_000_000_000


def rest(port: int, path: str) -> dict:
    return flink_rest(f"127.0.0.1:{port}", path, timeout=5)


@pytest.fixture
def standalone_cluster(tmp_path):
    """A JobManager and a TaskManager, each a separate JVM, on free ports (the one `ascep bench pipeline --flink
    local` starts); stopped with their process groups."""
    cluster = start_flink_cluster(tmp_path / "flink-logs")
    try:
        yield cluster.rest_port
    finally:
        cluster.stop()


def test_job_runs_on_a_standalone_cluster(standalone_cluster, tmp_path):
    logs = tmp_path / "logs"
    broker, store = start_broker(logs), start_redis(logs)
    try:
        settings = load_settings()
        settings.job.partitions = 1
        ensure_topics(broker.address, settings)
        env = {**python_env(), "ASCEP_STATE_DIR": str(tmp_path / ".ascep")}
        # the cluster given by the setting, not --flink (the compose test passes that): the script `flink run`
        # starts inherits ASCEP_FLINK and once submitted itself again instead of building the job
        submit = subprocess.run([sys.executable, "-m", "ascep.cli", "job", "run",
                                 "--kafka", broker.address, "--redis", store.address],
                                env={**env, "ASCEP_FLINK": f"127.0.0.1:{standalone_cluster}"},
                                capture_output=True, text=True, timeout=180)
        assert submit.returncode == 0, submit.stdout + submit.stderr
        assert "Job has been submitted with JobID" in submit.stdout
        jobs = rest(standalone_cluster, "/jobs/overview")["jobs"]
        assert [(job["name"], job["state"]) for job in jobs] == [("ascep-signals", "RUNNING")]

        ticks = tmp_path / "planted.jsonl"
        ticks.write_text(
            json.dumps({"venue": "binance", "symbol": "BTC/USDT", "bid": 100.0, "ask": 100.1, "ts": T0}) + "\n"
            + json.dumps({"venue": "kraken", "symbol": "BTC/USDT", "bid": 101.0, "ask": 101.1, "ts": T0 + 10}) + "\n")
        replay = subprocess.run([sys.executable, "-m", "ascep.cli", "replay", str(ticks), "--max",
                                 "--kafka", broker.address],
                                env=env, capture_output=True, text=True, timeout=60)
        assert replay.returncode == 0, replay.stderr
        expected = signal_id("cross_exchange", ("buy:binance:BTC/USDT", "sell:kraken:BTC/USDT"), T0 + 10)
        client = redis.Redis.from_url(store.address, decode_responses=True)
        deadline = time.monotonic() + 90
        while client.zrange("ascep:signals", 0, -1) != [expected]:
            assert time.monotonic() < deadline, f"no signal from the cluster's job: {client.hgetall('ascep:counters')}"
            time.sleep(0.5)
        assert rest(standalone_cluster, "/overview")["jobs-running"] == 1
    finally:
        store.stop()
        broker.stop()
