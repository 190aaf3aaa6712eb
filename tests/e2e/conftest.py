"""A whole `ascep up` stack (real broker, Redis, Flink MiniCluster, dashboard) run through the CLI."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis
import requests
from confluent_kafka import Consumer, TopicPartition

from ascep.services import free_port
from core.cep.rule_records import rule_version


class RunningStack:
    def __init__(self, workdir: Path, proc: subprocess.Popen, port: int, env: dict) -> None:
        self.workdir, self.proc, self.port, self.env = workdir, proc, port, env
        self.info: dict = {}
        self.replayed = 0  # lines replay_lines() sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        stack_file = self.workdir / ".ascep" / "stack.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ascep up exited with {self.proc.returncode}:\n{self.output()}")
            if stack_file.exists():
                self.info = json.loads(stack_file.read_text())
                return
            time.sleep(0.2)
        raise AssertionError(f"ascep up not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return (self.workdir / "up.out").read_text(errors="replace")

    def editor_session(self) -> requests.Session:
        """Logged in as the editor `admin` with the password the first `ascep up` printed, as a browser would:
        the login page's CSRF cookie, then its form; later writes send the token in X-CSRFToken."""
        found = re.search(r"^login     first run: made the editor admin, password (\S+) ", self.output(), re.M)
        assert found, f"ascep up printed no first password:\n{self.output()}"
        session = requests.Session()
        session.get(f"{self.url}/accounts/login", timeout=30).raise_for_status()
        session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
        logged_in = session.post(f"{self.url}/accounts/login", timeout=30, allow_redirects=False,
                                 data={"username": "admin", "password": found.group(1),
                                       "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                                 headers={"Origin": self.url})
        assert logged_in.status_code == 302, logged_in.text
        session.headers["X-CSRFToken"] = session.cookies["csrftoken"]  # rotated by the login
        session.headers["Origin"] = self.url
        return session

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Another `ascep` command, run where the stack runs so it finds the stack without flags."""
        return subprocess.run([sys.executable, "-m", "ascep.cli", *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.info["redis"], decode_responses=True)

    def replay_lines(self, lines: list[str], counter: str = "ticks") -> None:
        """JSONL lines through `ascep replay --max`; returns once the job's `counter` has counted every line
        sent so far."""
        path = self.workdir / f"replayed{self.replayed}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        result = self.cli("replay", str(path), "--max")
        assert result.returncode == 0, result.stderr
        self.replayed += len(lines)
        self.wait_counter(counter, self.replayed)

    def wait_counter(self, name: str, at_least: int, timeout: float = 120) -> int:
        client = self.redis()
        deadline = time.monotonic() + timeout
        value = 0
        while time.monotonic() < deadline:
            value = int(client.hget("ascep:counters", name) or 0)
            if value >= at_least:
                return value
            time.sleep(0.2)
        raise AssertionError(f"counter {name} reached {value}, expected {at_least}, after {timeout}s")

    def add_rule(self, rule_id: str, text: str, timeout: float = 60) -> None:
        """`ascep rules add`, then wait until the job has that version in force (its ascep:rules:stats say so)."""
        result = self.cli("rules", "add", "--id", rule_id, "--text", text)
        assert result.returncode == 0, result.stderr
        version = rule_version(latest_rule_record(self.info["kafka"], rule_id))
        client = self.redis()
        deadline = time.monotonic() + timeout
        while json.loads(client.hget("ascep:rules:stats", rule_id) or "{}").get("version") != version:
            assert time.monotonic() < deadline, f"rule {rule_id} version {version} not in force after {timeout}s"
            time.sleep(0.2)

    def stop(self) -> tuple[int, list[int]]:
        """SIGTERM, as Ctrl-C would; returns the exit code and the pids of descendants still alive."""
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(120)  # a clean stop waits for the lake first (up to 60 s)
        _gone, alive = psutil.wait_procs(children, timeout=15)
        return code, [p.pid for p in alive]


def latest_rule_record(bootstrap: str, rule_id: str) -> bytes | None:
    """The rule as the job receives it: the newest record of `rule_id` on the rules topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "rules-check"})
    consumer.assign([TopicPartition("rules", 0, 0)])
    value = None
    for message in consumer.consume(1000, timeout=5):
        if message.error() is None and message.key() == rule_id.encode():
            value = message.value()
    consumer.close()
    return value


@pytest.fixture
def start_stack(tmp_path):
    started: list[RunningStack] = []

    def _start(*args: str, env: dict | None = None) -> RunningStack:
        port = free_port()
        env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"], **(env or {})}
        env.pop("ASCEP_STATE_DIR", None)
        out = open(tmp_path / "up.out", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "ascep.cli", "up", "--port", str(port), *args], cwd=tmp_path,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        stack = RunningStack(tmp_path, proc, port, env)
        started.append(stack)
        stack.wait_ready()
        return stack

    yield _start
    for stack in started:
        if stack.proc.poll() is None:
            for child in psutil.Process(stack.proc.pid).children(recursive=True):
                child.kill()
            stack.proc.kill()
