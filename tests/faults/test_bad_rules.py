"""Every kind of bad record on the `rules` topic while the job runs: each dead-lettered once, no task failure, a good
rule firing throughout, and a kill -9 and restore after them that neither fails nor dead-letters them again (issue 12).

The job runs on a standalone Flink cluster (ascep.services.start_flink_cluster) because its REST API is what says
whether a task failed: the job's exception history and its restart count. (The MiniCluster of `ascep job run`
answers no REST client at all: flink_jobs/rest_tls.py.) The kill -9 takes the JobManager and the TaskManager at
once, as a lost machine would; a fresh cluster is then given the job with --restore: the latest checkpoint.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from ascep.services import flink_rest, start_broker, start_flink_cluster, start_redis
from ascep.stack import ensure_topics
from core.cep.rule_records import MAX_RULE_BYTES
from core.cep.rules import parse, to_json
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC
from core.settings import load_settings
from flink_jobs.launcher import python_env
from tests.e2e.test_rules_live import T0, btc
from tests.ingestion.kafka_read import consume

pytestmark = [pytest.mark.integration]

GOOD = orjson.dumps(to_json(parse('IF price("BTC/USDT") > 100 THEN HIGH')))
# Tansu (0.6.0) takes a 10 MiB record once the producer's own limit (librdkafka's message.max.bytes, 1,000,000 by
# default) is raised, and the job's consumer reads it back: the full 10 MiB is sent, not the largest the broker takes.
HUGE = b'{"then": "' + b"x" * (10 * 1024 * 1024) + b'"}'
# key, value, what the dead letter's reason says
BAD = [
    (b"array", b"[]", "rule 'array' rejected: $: a rule must be a JSON object, not an array"),
    (b"number", b"42", "rule 'number' rejected: $: a rule must be a JSON object, not a number"),
    (b"boolean", b"true", "rule 'boolean' rejected: $: a rule must be a JSON object, not true"),
    (b"string", b'"x"', "rule 'string' rejected: $: a rule must be a JSON object, not a string"),
    (b"high", b"null", "rule 'high' rejected: JSON null is not a rule, nor a deletion"),  # the good rule stays
    (b"latin1", '{"then": "café"}'.encode("latin-1"), "rule 'latin1' rejected: not UTF-8"),
    (b"binary", bytes(range(256)) * 16, "rule 'binary' rejected: not UTF-8"),
    (b"huge", HUGE, f"rule 'huge' rejected: {len(HUGE)} bytes: a rule's record is at most {MAX_RULE_BYTES} bytes"),
    (None, GOOD, "a record without a key"),
    (b"\xff\xfe", GOOD, "the key b'\\xff\\xfe' is not UTF-8"),
    (b"ghost", None, "a tombstone for rule 'ghost', which is not in force"),
    (b"unchecked", b'{"if": {"op": ">", "args": [{"ref": "nope"}, 1]}, "then": "X"}',
     "rule 'unchecked' rejected: $.if.args[0]: "),  # valid JSON, refused by the checker
]


class Job:
    """A broker, Redis and the topics; the job on a standalone cluster, started again on a fresh one to restore."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.logs = workdir, workdir / "logs"
        self.broker, self.redis = start_broker(self.logs), start_redis(self.logs)
        settings = load_settings()
        settings.job.partitions = 1
        ensure_topics(self.broker.address, settings)
        self.env = {**python_env(), "ASCEP_STATE_DIR": str(workdir / ".ascep"),
                    "ASCEP_JOB__CHECKPOINT_INTERVAL_MS": "1000"}
        self.client = redis.Redis.from_url(self.redis.address, decode_responses=True)
        self.cluster = None
        self.job_id = ""
        self.sent = 0

    def submit(self, *extra: str) -> None:
        self.cluster = start_flink_cluster(self.logs / f"flink-{self.sent}")
        submitted = subprocess.run([sys.executable, "-m", "ascep.cli", "job", "run", "--flink", self.cluster.address,
                                    "--kafka", self.broker.address, "--redis", self.redis.address, *extra],
                                   env=self.env, capture_output=True, text=True, timeout=180)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        [job] = self.rest("/jobs/overview")["jobs"]
        self.job_id = job["jid"]
        self.wait(self.running, "the job and every task running")

    def running(self) -> bool:
        job = self.rest(f"/jobs/{self.job_id}")
        return job["state"] == "RUNNING" and {vertex["status"] for vertex in job["vertices"]} == {"RUNNING"}

    def rest(self, path: str) -> dict:
        return flink_rest(self.cluster.address, path, timeout=5)

    def failures(self) -> list[str]:
        """What the cluster knows of failures: the job's exception history, and its restarts."""
        history = self.rest(f"/jobs/{self.job_id}/exceptions")["exceptionHistory"]["entries"]
        metrics = {m["id"]: m["value"] for m in self.rest(f"/jobs/{self.job_id}/metrics?get=numRestarts")}
        restarts = int(metrics.get("numRestarts", 0))
        failed = [f"{entry.get('taskName')}: {entry['exceptionName']}" for entry in history]
        return failed + [f"{restarts} restarts"] * (restarts > 0)

    def wait(self, condition, what: str, timeout: float = 120):
        """Until `condition` holds, failing at once if a task fails meanwhile (the job would restart 3 times first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            failed = self.failures()
            assert not failed, f"the job failed waiting for {what}: {failed}; see {self.logs}"
            result = condition()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; see {self.logs}")

    def assert_never_failed(self) -> None:
        assert self.running() and self.failures() == [], (self.rest(f"/jobs/{self.job_id}"), self.failures())

    def replay(self, *lines: str) -> None:
        path = self.workdir / f"ticks-{self.sent}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        replayed = subprocess.run([sys.executable, "-m", "ascep.cli", "replay", str(path), "--max", "--kafka",
                                   self.broker.address], env=self.env, capture_output=True, text=True, timeout=60)
        assert replayed.returncode == 0, replayed.stderr
        self.sent += len(lines)

    def fires(self, dt: int) -> None:
        """The good rule opened a signal on the tick at T0 + dt."""
        def opened() -> bool:
            return any(orjson.loads(self.client.get(f"ascep:signal:{i}") or b"{}").get("event_time") == T0 + dt
                       for i in self.client.zrange("ascep:signals", 0, -1))
        self.wait(opened, f"the good rule's signal at T0 + {dt}")

    def dead_letters(self, timeout_s: float = 15.0) -> list[dict]:
        """The job's dead letters of rules: for up to `timeout_s`, until there are as many as BAD (and 0.5 s more)."""
        letters = map(orjson.loads, consume(self.broker.address, DEADLETTER_TOPIC, len(BAD), timeout_s))
        return [letter for letter in letters if letter.get("source") == "rules"]

    def completed_checkpoint_after(self, since_ms: int) -> dict:
        def found() -> dict | None:
            latest = self.rest(f"/jobs/{self.job_id}/checkpoints")["latest"]["completed"]
            return latest if latest and latest["trigger_timestamp"] > since_ms else None
        return self.wait(found, "a checkpoint completed after the bad records were dead-lettered")

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        self.redis.stop()
        self.broker.stop()


def publish(bootstrap: str, records: list[tuple[bytes | None, bytes | None]]) -> list[int]:
    """The records' offsets on `rules`, in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2 * len(HUGE)})
    offsets: list[int] = []
    for key, value in records:
        producer.produce(RULES_TOPIC, key=key, value=value,
                         on_delivery=lambda err, msg: offsets.append(msg.offset() if err is None else err))
        producer.flush(30)  # one at a time: the offsets in order
    assert all(isinstance(offset, int) for offset in offsets) and len(offsets) == len(records), offsets
    return offsets


def test_bad_rule_records_are_dead_lettered_once_and_break_neither_the_job_nor_its_restore(tmp_path, monkeypatch):
    # the JVMs' quick compiler only, for the clusters and the submissions: starts cost less CPU (as test_determinism)
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"-XX:TieredStopAtLevel=1 {os.environ.get('JAVA_TOOL_OPTIONS', '')}")
    job = Job(tmp_path)
    try:
        publish(job.broker.address, [(b"high", GOOD)])
        job.replay(btc(90, 0))  # before the job starts: the rule engine starts with the first tick it sees
        job.submit()
        # the rules and the ticks are separate streams: the rule is in the engine (its stats) before a tick needs it
        job.wait(lambda: job.client.hexists("ascep:rules:stats", "high"), "the good rule in force")
        job.replay(btc(101, 1_000))
        job.fires(1_000)

        offsets = publish(job.broker.address, [(key, value) for key, value, _ in BAD])
        expected = {offset: reason for offset, (_, _, reason) in zip(offsets, BAD)}

        def all_dead_lettered() -> list[dict]:
            letters = job.dead_letters(timeout_s=1)
            return letters if len(letters) >= len(BAD) else []
        letters = job.wait(all_dead_lettered, "every bad record in deadletter")
        seen_ms = int(time.time() * 1000)
        assert sorted(letter["offset"] for letter in letters) == sorted(expected), "each exactly once"
        for letter in letters:
            assert letter["reason"].startswith(expected[letter["offset"]]), letter["reason"]
            assert (letter["topic"], letter["partition"]) == (RULES_TOPIC, 0)
        job.replay(btc(90, 2_000), btc(102, 3_000))
        job.fires(3_000)  # after them all, JSON null under its own id included
        assert job.client.hkeys("ascep:rules:stats") == ["high"], "the engine holds the good rule only"
        assert job.client.hkeys("ascep:rules:in_force") == ["high"]
        job.assert_never_failed()
        # what is in state is small: the 10 MiB record, or any bad one, would be in every checkpoint after it
        checkpoint = job.completed_checkpoint_after(seen_ms)
        assert checkpoint["state_size"] < 1_000_000, checkpoint

        job.cluster.stop()  # kill -9, JobManager and TaskManager at once
        job.submit("--restore")
        restored = job.rest(f"/jobs/{job.job_id}/checkpoints")["latest"]["restored"]
        assert restored["id"] >= checkpoint["id"], (restored, checkpoint)  # that one, or one taken after it
        job.replay(btc(90, 4_000), btc(103, 5_000))
        job.fires(5_000)
        job.assert_never_failed()
        # A restore dead-letters nothing again: the checkpoint's offset on `rules` is past every bad record, and no
        # state holds one for the rule host to re-apply (it would have on the first batch, before the signal).
        time.sleep(1)
        assert sorted(letter["offset"] for letter in job.dead_letters()) == sorted(expected)
    finally:
        job.close()
