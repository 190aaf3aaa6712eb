"""Outputs that lose nothing: the job is killed with kill -9 mid-replay, Redis restarts, S3 goes away.

Each case replays the same seeded market into a fresh broker and compares, after the fact, the
signal ids in Redis and in the Parquet lake with those an undisturbed run produces: the pure
detectors applied to the same ticks in order (one partition, so the order is the file's).
"""
from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis

from ascep.services import free_port, start_broker, start_redis
from clients.kafka import EMBEDDED, create_topics
from core.arbitrage.cross_exchange import CrossExchangeDetector
from core.arbitrage.direct import DirectDetector
from core.arbitrage.triangular import TriangularDetector
from core.contracts import redis_keys
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from core.settings import ArbitrageSettings
from ingestion.sim.market import SimulatedMarket
from lake.reader import read_kind
from lake.storage import open_lake

pytestmark = [pytest.mark.integration]

TICKS = 12_000
START_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def ticks_file(tmp_path_factory) -> tuple[Path, list]:
    market = SimulatedMarket(seed=7, rate=400.0, opportunity_every_s=2.0, opportunity_duration_s=0.5)
    ticks = list(itertools.islice(market.ticks(START_MS), TICKS))
    path = tmp_path_factory.mktemp("input") / "market.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(t.to_json_dict()) for t in ticks) + b"\n")
    return path, ticks


def undisturbed_signal_ids(ticks: list) -> set[str]:
    """What one clean run emits: every detector over the ticks in order, keyed as the job keys them."""
    ids: set[str] = set()
    config = ArbitrageSettings()
    for detector in (CrossExchangeDetector(config), TriangularDetector(config), DirectDetector(config)):
        states: dict[str, object] = {}
        for tick in ticks:
            key = detector.key_for(tick)
            state = states.get(key) or states.setdefault(key, detector.State())
            ids.update(signal["id"] for signal in detector.on_tick(state, tick, 0))
    return ids


class Run:
    """A broker, Redis and the job (`ascep job run`, one process group) with a paced replay feeding it."""

    def __init__(self, workdir: Path, lake: str, extra_env: dict | None = None, redis_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.lake = lake
        self.logs = workdir / "logs"
        self.broker = start_broker(self.logs)
        self.redis_port = free_port()
        self.redis_dir = redis_dir
        self.redis = start_redis(self.logs, self.redis_port, redis_dir)
        create_topics(self.broker.address, EMBEDDED, {TICKS_TOPIC: 1, TRADES_TOPIC: 1, SIGNALS_TOPIC: 1,
                                                      DEADLETTER_TOPIC: 1, RULES_TOPIC: 1}, compacted=(RULES_TOPIC,))
        self.env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
                    "ASCEP_STATE_DIR": str(workdir / ".ascep"), "ASCEP_JOB__CHECKPOINT_INTERVAL_MS": "1000",
                    "ASCEP_LAKE_OPTIONS__FLUSH_EVERY_S": "2", **(extra_env or {})}
        self.job: subprocess.Popen | None = None
        self.starts = 0

    def cli(self, *args: str, **popen) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "ascep.cli", *args], cwd=self.workdir, env=self.env,
                                start_new_session=True, **popen)

    def start_job(self) -> None:
        restore = ["--restore"] if self.starts else []
        log = open(self.logs / f"job-{self.starts}.log", "wb")
        self.job = self.cli("job", "run", "--kafka", self.broker.address, "--redis", self.redis.address,
                            "--lake", self.lake, *restore, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def kill_job(self) -> None:
        os.killpg(self.job.pid, signal.SIGKILL)  # the CLI, the job's Python and its Flink JVM, all at once
        self.job.wait()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.address, decode_responses=True)

    def ticks_seen(self) -> int:
        try:
            return int(self.client().hget("ascep:counters", "ticks") or 0)
        except redis.ConnectionError:
            return 0

    def job_started_at(self) -> str | None:
        """When the running job last said it can write (its signal writer opened): it is up, past any restore."""
        try:
            return self.client().hget(redis_keys.JOB, "started_at")
        except redis.ConnectionError:
            return None

    def redis_ids(self) -> set[str]:
        return set(self.client().zrange("ascep:signals", 0, -1))

    def lake_ids(self) -> set[str]:
        signals = read_kind(open_lake(self.lake, self.env.get("ASCEP_S3_ENDPOINT")), "signals")
        return set(signals.column("id").to_pylist())

    def lake_ticks(self):
        return read_kind(open_lake(self.lake, self.env.get("ASCEP_S3_ENDPOINT")), "ticks")

    def wait_outputs(self, expected: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.job.poll() is not None:
                raise AssertionError(f"the job exited with {self.job.returncode}; see {self.logs}")
            try:
                if self.redis_ids() == expected and self.lake_ids() == expected and self.lake_ticks().num_rows == TICKS:
                    return
            except (OSError, redis.ConnectionError):
                pass
            time.sleep(1)

    def close(self) -> None:
        if self.job is not None and self.job.poll() is None:
            self.kill_job()
        self.redis.stop()
        self.broker.stop()


def replay_in_background(run: Run, ticks_path: Path, speed: float) -> subprocess.Popen:
    return run.cli("replay", str(ticks_path), "--kafka", run.broker.address, "--speed", str(speed),
                   stdout=subprocess.DEVNULL, stderr=open(run.logs / "replay.log", "wb"))


def assert_nothing_lost_nothing_duplicated(run: Run, expected: set[str]) -> None:
    run.wait_outputs(expected)
    for where, found in (("Redis", run.redis_ids()), ("the lake", run.lake_ids())):
        assert found == expected, (f"{where}: {len(expected - found)} of {len(expected)} signals missing, "
                                   f"{len(found - expected)} unexpected")
    lake_ticks = run.lake_ticks()
    offsets = lake_ticks.column("kafka_offset").to_pylist()
    assert len(offsets) == TICKS and len(set(offsets)) == TICKS, "the lake holds every tick exactly once"


def test_kill_9_five_times_during_a_replay(ticks_file, tmp_path):
    path, ticks = ticks_file
    expected = undisturbed_signal_ids(ticks)
    assert len(expected) > 20, "the input must hold opportunities for the test to mean anything"
    # The market in two parts: the first paced over ~100 s while the job is killed, the rest only after the fifth
    # kill, so every kill falls during the replay (one paced replay ended after the first kill or two, and each
    # later start then waited out its 90 s deadline for a tick to count).
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    first.write_bytes(b"".join(lines[:TICKS * 5 // 6]))
    rest.write_bytes(b"".join(lines[TICKS * 5 // 6:]))
    run = Run(tmp_path, str(tmp_path / "lake"))
    try:
        replay = replay_in_background(run, first, speed=0.25)
        run.start_job()
        chooser = random.Random(11)
        for _ in range(5):
            # let it get going (it is up and has read ticks since this start, while any arrive), then kill it at a
            # random point
            seen, announced = run.ticks_seen(), run.job_started_at()
            deadline = time.monotonic() + 90
            while (run.job_started_at() == announced or run.ticks_seen() <= seen and replay.poll() is None) \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(chooser.uniform(0.5, 4.0))
            run.kill_job()
            run.start_job()
        assert replay.wait(240) == 0
        assert replay_in_background(run, rest, speed=1.0).wait(120) == 0
        assert_nothing_lost_nothing_duplicated(run, expected)
        assert run.starts == 6
    finally:
        run.close()


def run_through_an_outage(run: Run, ticks_file, take_down, bring_back, outage_s: float) -> None:
    """Replay at double speed; a quarter in, take a service down for `outage_s`, then check the outputs."""
    path, ticks = ticks_file
    expected = undisturbed_signal_ids(ticks)
    try:
        replay = replay_in_background(run, path, speed=2.0)
        run.start_job()
        deadline = time.monotonic() + 90
        while run.ticks_seen() < TICKS // 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.ticks_seen() >= TICKS // 4, f"the job read {run.ticks_seen()} ticks in 90 s; see {run.logs}"
        take_down()
        time.sleep(outage_s)  # meanwhile the job's writes block and retry; nothing is dropped
        bring_back()
        assert replay.wait(120) == 0
        assert_nothing_lost_nothing_duplicated(run, expected)
        assert run.starts == 1 and run.job.poll() is None, "the job rode out the outage without a restart"
    finally:
        run.close()


def test_redis_restarted_mid_run(ticks_file, tmp_path):
    run = Run(tmp_path, str(tmp_path / "lake"), redis_dir=tmp_path / "redis-data")

    def restart() -> None:
        run.redis = start_redis(run.logs, run.redis_port, run.redis_dir)

    # a clean shutdown: Redis keeps its data in the append-only file, as a restarted production Redis does
    run_through_an_outage(run, ticks_file, run.redis.stop, restart, outage_s=5)


def test_s3_unavailable_for_10_seconds(ticks_file, tmp_path, s3):
    run = Run(tmp_path, f"s3://{s3.new_bucket()}/lake", extra_env={"ASCEP_S3_ENDPOINT": s3.endpoint})
    run_through_an_outage(run, ticks_file, s3.stop, s3.start, outage_s=10)
