"""The Managed Flink application zip, for real: `ascep deploy package` builds it, it is unpacked into an empty
folder, and the job runs from there on the local MiniCluster with an application_properties.json that points at
a real broker and Redis, as the service would run it; a planted opportunity comes out as a signal in Redis.

The zip's libraries are for manylinux2014 x86_64 and CPython 3.11, which this machine runs too; its
confluent-kafka is 2.4.0 (the venv has a newer one), so the job is tested here with the zip's own.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import redis

from ascep.services import start_broker, start_redis
from clients.kafka import EMBEDDED, create_topics
from core.clock import now_ms
from core.contracts import redis_keys as keys
from core.contracts.tick import Tick
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from ingestion.producer import TickProducer

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def application_zip(request, tmp_path_factory) -> tuple[Path, str]:
    """(the zip, what `ascep deploy package` printed); wheels kept in pytest's cache between runs."""
    wheels = request.config.cache.mkdir("application-zip-wheels")
    out = tmp_path_factory.mktemp("zip") / "ascep-flink-application.zip"
    built = subprocess.run([sys.executable, "-m", "ascep.cli", "deploy", "package", "--out", str(out),
                            "--wheels", str(wheels)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return out, built.stdout


def test_the_zip_holds_the_entry_script_and_lib_only(application_zip):
    path, printed = application_zip
    names = zipfile.ZipFile(path).namelist()
    assert {name.split("/")[0] for name in names} == {"ascep_job.py", "lib"}
    for package in ("core", "lake", "clients", "flink_jobs"):
        assert f"lib/{package}/__init__.py" in names
    assert "lib/confluent_kafka-2.4.0.dist-info/METADATA" in names
    assert not [name for name in names if name.startswith(("lib/pyflink", "lib/apache_flink", "lib/numpy",
                                                            "lib/pyarrow", "lib/ascep/"))]
    assert f"{path}: {path.stat().st_size / 2**20:.1f} MiB" in printed
    assert "run option pyFiles = lib/" in printed and "confluent_kafka-2.4.0" in printed


def test_the_job_runs_from_the_unpacked_zip(application_zip, tmp_path):
    path, _ = application_zip
    app = tmp_path / "app"
    app.mkdir()
    zipfile.ZipFile(path).extractall(app)
    logs = tmp_path / "logs"
    broker, store = start_broker(logs), start_redis(logs)
    job = None
    try:
        create_topics(broker.address, EMBEDDED, {TICKS_TOPIC: 1, TRADES_TOPIC: 1, SIGNALS_TOPIC: 1,
                                                 DEADLETTER_TOPIC: 1, RULES_TOPIC: 1}, compacted=(RULES_TOPIC,))
        properties = tmp_path / "application_properties.json"
        properties.write_text(json.dumps([
            {"PropertyGroupId": "kinesis.analytics.flink.run.options",
             "PropertyMap": {"python": "ascep_job.py", "pyFiles": "lib/"}},
            {"PropertyGroupId": "ascep", "PropertyMap": {
                "ASCEP_KAFKA": broker.address, "ASCEP_REDIS": store.address,
                "ASCEP_KAFKA_SECURITY__PROTOCOL": "plaintext", "ASCEP_JOB__DETECTORS": "[]",
                "ASCEP_ARBITRAGE__MIN_PROFIT_BPS": "5"}}]))
        # As the service runs it: pyFiles (lib/) is the Python path of the script and the workers; nothing of
        # this checkout, and no ASCEP_* variable but the properties file's name.
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("ASCEP_") and name not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
                   PYTHONPATH=str(app / "lib"), ASCEP_APPLICATION_PROPERTIES=str(properties),
                   FLINK_LOG_DIR=str(logs),  # the JVM's quick compiler only: a third less CPU to start a job
                   JAVA_TOOL_OPTIONS=f"-XX:TieredStopAtLevel=1 {os.environ.get('JAVA_TOOL_OPTIONS', '')}".strip())
        probe = subprocess.run([sys.executable, "-c", "import confluent_kafka, flink_jobs; "
                                "print(confluent_kafka.version()[0], flink_jobs.__file__)"],
                               cwd=app, env=env, capture_output=True, text=True, timeout=60)
        assert probe.stdout.split() == ["2.4.0", str(app / "lib" / "flink_jobs" / "__init__.py")], probe.stderr
        output = open(logs / "job.out", "wb")
        job = subprocess.Popen([sys.executable, str(app / "ascep_job.py")], cwd=app, env=env, stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis.from_url(store.address, decode_responses=True)
        deadline = time.monotonic() + 120
        while not client.hget(keys.JOB, "started_at"):
            assert job.poll() is None, f"the job exited with {job.returncode}:\n{(logs / 'job.out').read_text()}"
            assert time.monotonic() < deadline, f"the job did not start:\n{(logs / 'job.out').read_text()}"
            time.sleep(0.2)
        t = now_ms()
        with TickProducer(broker.address, EMBEDDED) as producer:  # 0.6% across venues, beyond the fees
            producer.tick(Tick("binance", "BTC/USDT", 100.0, 100.1, 2.0, 3.0, t))
            producer.tick(Tick("kraken", "BTC/USDT", 101.0, 101.1, 1.5, 1.0, t + 10))
        while not client.zcard(keys.SIGNALS_INDEX):
            assert job.poll() is None, f"the job exited with {job.returncode}:\n{(logs / 'job.out').read_text()}"
            assert time.monotonic() < deadline, f"no signal in Redis:\n{(logs / 'job.out').read_text()}"
            time.sleep(0.2)
        [signal_id] = client.zrange(keys.SIGNALS_INDEX, 0, -1)
        signal = json.loads(client.get(keys.signal_key(signal_id)))
        assert (signal["type"], [leg["venue"] for leg in signal["legs"]]) == ("cross_exchange", ["binance", "kraken"])
    finally:
        if job is not None and job.poll() is None:
            os.killpg(job.pid, 9)
            job.wait(30)
        broker.stop()
        store.stop()
        shutil.rmtree(app, ignore_errors=True)
