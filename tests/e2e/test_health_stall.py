"""Health that tells the truth, on a whole `ascep up` stack: ok while ticks flow, down within 30 s once the
job stops while the source goes on producing, ok again when it resumes; `ascep up` says so, once each. While
ticks flow, /api/latency has every stage up to Redis and /api/services every component up."""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import psutil
import pytest

from core.contracts.redis_keys import TOPIC_ENDS, topic_end_field

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def get_health(stack) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{stack.url}/api/health", timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def wait_health(stack, status: str, timeout: float) -> tuple[float, int, dict]:
    """Seconds until /api/health says `status`, with its HTTP code and body."""
    started = time.monotonic()
    while True:
        code, health = get_health(stack)
        if health["status"] == status:
            return time.monotonic() - started, code, health
        if time.monotonic() - started > timeout:
            raise AssertionError(f"health not {status} after {timeout}s: {health['status']} {health.get('reasons')}")
        time.sleep(1)


def get_json(stack, path: str) -> dict:
    with urllib.request.urlopen(f"{stack.url}{path}", timeout=10) as reply:
        return json.load(reply)


MEASURED_STAGES = ("exchange_ingest", "ingest_kafka", "kafka_job", "job", "job_redis")  # redis_websocket: the relay's


def wait_latency(stack, timeout: float) -> dict[str, dict]:
    """/api/latency's stages once every stage the simulator and the job measure has samples."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {row["stage"]: row for row in get_json(stack, "/api/latency")["stages"]}
        if all(rows[stage]["count"] > 0 for stage in MEASURED_STAGES):
            return rows
        assert time.monotonic() < deadline, f"stages without samples after {timeout}s: {rows}"
        time.sleep(1)


def job_process_group(stack) -> int:
    """The `flink-job` child of `ascep up` (ascep job run and its JVM) leads its own process group."""
    for child in psutil.Process(stack.proc.pid).children():
        if "job" in child.cmdline() and "run" in child.cmdline():
            return os.getpgid(child.pid)
    raise AssertionError("no flink-job child found")


def test_health_is_ok_while_ticks_flow_and_down_while_the_job_is_stopped(start_stack):
    stack = start_stack("--source", "sim")
    stack.wait_counter("ticks", 200)
    _, code, health = wait_health(stack, "ok", timeout=60)
    assert code == 200 and health["reasons"] == []
    readers = {(r["stage"], r["topic"]): r for r in health["job"]["readers"]}
    assert readers["read", "ticks"]["status"] == "ok" and readers["read", "ticks"]["end"] > 0
    assert {venue["status"] for venue in health["venues"].values()} == {"ok"} and len(health["venues"]) >= 3
    assert health["checkpoint"]["status"] == "ok" and health["checkpoint"]["id"] is not None

    rows = wait_latency(stack, timeout=30)
    for stage in MEASURED_STAGES:
        assert 0 <= rows[stage]["p50_ms"] <= rows[stage]["p99_ms"] < 30_000, rows[stage]
    assert [w.split(":")[:2] for w in rows["kafka_job"]["writers"] + rows["job_redis"]["writers"]] == [
        ["job", "read"], ["job", "sink"]]
    assert rows["exchange_ingest"]["writers"][0].startswith("ingest:")
    print("latency p50/p99 ms: " + ", ".join(f"{s} {rows[s]['p50_ms']}/{rows[s]['p99_ms']}" for s in MEASURED_STAGES))
    found = {entry["name"]: entry for entry in get_json(stack, "/api/services")["services"]}
    assert {name: found[name]["status"] for name in ("broker", "redis", "job", "lake", "dashboard")} == dict.fromkeys(
        ("broker", "redis", "job", "lake", "dashboard"), "up"), found
    assert (found["broker"]["address"], found["lake"]["address"]) == (stack.info["kafka"], stack.info["lake"])

    group = job_process_group(stack)
    client = stack.redis()
    end_before = int(client.hget(TOPIC_ENDS, topic_end_field("ticks", 0)))
    os.killpg(group, signal.SIGSTOP)
    try:
        took, code, health = wait_health(stack, "down", timeout=30)
        assert code == 503
        # both readers stopped: either may cross its 15 s limit first (the rules reader "has not polled")
        deadline = time.monotonic() + 20
        while not any("the tick reader of ticks:0 is stalled" in reason for reason in health["reasons"]):
            assert time.monotonic() < deadline, health
            time.sleep(1)
            code, health = get_health(stack)
            assert code == 503, health
        assert int(client.hget(TOPIC_ENDS, topic_end_field("ticks", 0))) > end_before, "the source went on"
        print(f"stall reported {took:.1f}s after SIGSTOP")
        time.sleep(6)  # long enough for `ascep up`'s own poll to see it
    finally:
        os.killpg(group, signal.SIGCONT)
    took, code, _ = wait_health(stack, "ok", timeout=90)
    print(f"ok again {took:.1f}s after SIGCONT")
    time.sleep(6)
    warnings = [line for line in stack.output().splitlines() if line.startswith("WARNING   the stack is")]
    assert len(warnings) in (1, 2), stack.output()  # down (maybe degraded first: prices age too), not once per poll
    # One line as the stack went down, naming what had crossed its limit by then: the stopped job's tick reader
    # (stalled) or its rules reader (not polling), whichever got there first; the line is not repeated per poll.
    assert warnings[-1].startswith("WARNING   the stack is down: "), warnings
    assert ("the tick reader of ticks:0 is stalled" in warnings[-1]
            or "the rules reader of rules:0 has not polled" in warnings[-1]), warnings
    assert stack.output().count("health    ok again") == 1, stack.output()

    code, leftovers = stack.stop()
    assert code == 0, stack.output()
    assert leftovers == []
