"""`ascep up`: start every part of the product as a real process, supervise them, stop them all.

Each part runs in its own process group so that stopping it (or its crash) takes its children
(the Flink JVM, the ASGI server) with it and nothing is left behind. While it runs, it watches the
dashboard's /api/health and says when the stack degrades and when it recovers. A stop is clean: the
source stops first, then the stack waits until the job has read, and the lake holds, all the source
sent (PROGRESS against TOPIC_ENDS), and only then stops the job and the services.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ascep.commands.ingest import SIMULATED
from ascep.commands.rules import republish_kept
from ascep.services import (
    Service,
    ServiceError,
    port_in_use,
    spawn,
    start_broker,
    start_redis,
    wait_for_port,
)
from clients.kafka import EMBEDDED, create_topics
from core.clock import now_ms
from core.contracts.redis_keys import PROGRESS, TOPIC_ENDS
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from core.progress import behind, read_ends, read_progress
from core.settings import DashboardSettings, Settings
from core.stack_file import StateDirInUse, claim_state_dir, clear_stack, redacted, redis_address, write_stack
from flink_jobs.launcher import python_env, restore_point
from flink_jobs.topology import topic_ids, topics_read


def check_java() -> None:
    java = shutil.which("java")
    if java is None and os.environ.get("JAVA_HOME"):
        java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if java is None or not Path(java).exists():
        raise ServiceError("Java not found: Flink needs Java 17 (install openjdk-17-jre-headless or set JAVA_HOME)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    if 'version "1.' in out or 'version "8' in out:
        raise ServiceError(f"Flink 2.x needs Java 11 or newer, found: {out.splitlines()[0]}")


def ensure_topics(kafka: str, settings: Settings) -> None:
    partitions = settings.job.partitions
    create_topics(kafka, settings.kafka_security, {TICKS_TOPIC: partitions, TRADES_TOPIC: partitions,
                                                   SIGNALS_TOPIC: partitions, DEADLETTER_TOPIC: 1, RULES_TOPIC: 1},
                  compacted=(RULES_TOPIC,))


def wait_for_job(redis_url: str, job: Service, started_ms: int, timeout: float = 180.0) -> None:
    """Until the job's sink has announced itself in Redis: then signals can flow."""
    import redis

    from core.contracts.redis_keys import JOB

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while int(client.hget(JOB, "started_at") or 0) < started_ms:
        if not job.alive():
            raise ServiceError(f"the Flink job exited with code {job.proc.returncode} while starting; "
                               f"see {job.log_path}")
        if time.monotonic() > deadline:
            raise ServiceError(f"the Flink job did not start within {timeout:.0f}s; see {job.log_path}")
        time.sleep(0.2)


SOURCE_BOOK_LEVELS = 5


def source_command(source: str, kafka: str, redis: str) -> list[str] | None:
    cli = [sys.executable, "-m", "ascep.cli"]
    if source == "none":
        return None
    if source in SIMULATED:
        # with books, so the detectors size what they find by walking them, as they do on the venues' feeds
        return [*cli, "ingest", source, "--book-levels", str(SOURCE_BOOK_LEVELS), "--kafka", kafka, "--redis", redis]
    if source.startswith("replay:"):
        path = Path(source.removeprefix("replay:"))
        if not path.is_file():
            raise ServiceError(f"--source {source}: no such file {path}")
        return [*cli, "replay", str(path.resolve()), "--kafka", kafka, "--redis", redis]
    raise ServiceError(f"--source {source!r}: expected {', '.join(SIMULATED)}, replay:FILE or none")


def open_to_all(dashboard: DashboardSettings) -> bool:
    """dashboard.anonymous_read, or when unset: yes on a dashboard that only this machine reaches."""
    if dashboard.anonymous_read is not None:
        return dashboard.anonymous_read
    return dashboard.host in ("127.0.0.1", "localhost", "::1")


def first_login() -> str | None:
    """On a database without users, makes the editor `admin` with a random password, returned to be printed
    once: the stack is then usable at once, and nobody picks (or keeps) a default password. Later runs None."""
    from dashboard.accounts.database import open_database

    open_database()
    from dashboard.accounts.users import first_editor

    return first_editor()


def say_login(say, url: str, anonymous_read: bool, first_password: str | None) -> None:
    reading = "anyone here may read" if anonymous_read else "reading needs a login"
    say(f"login     {url}/accounts/login ({reading}; writing rules needs an editor; users: `ascep users list`)")
    if first_password is not None:
        say(f"login     first run: made the editor admin, password {first_password} (shown this once; "
            f"`ascep users create NAME --role editor` adds others, `ascep users remove admin` removes it)")


def forget_offsets(redis_url: str) -> None:
    """A new embedded broker numbers offsets from 0 again: an earlier one's progress and ends would poison lag."""
    import redis

    redis.Redis.from_url(redis_url).delete(PROGRESS, TOPIC_ENDS)


class HealthWatch:
    """Polls the dashboard's /api/health every `every_s`; one line when the verdict changes, none per poll."""

    def __init__(self, dashboard_url: str, say, every_s: float = 5.0) -> None:
        self.url = f"{dashboard_url}/api/health"
        self.say = say
        self.every_s = every_s
        self.status = "ok"
        self.due = time.monotonic() + every_s

    def poll(self) -> None:
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.every_s
        try:
            with urllib.request.urlopen(self.url, timeout=3) as reply:
                health = json.load(reply)
        except urllib.error.HTTPError as refused:  # 503: down, or Redis unavailable; the body says why
            if refused.code == 401:  # dashboard.anonymous_read is off: this watch has no credentials
                self.due = float("inf")
                self.say("health    not watched here: the dashboard lets only logged-in users read "
                         "(dashboard.anonymous_read); /api/health shows it")
                return
            health = json.load(refused)
        except (OSError, ValueError):
            return  # the dashboard itself is away: the supervisor sees it die
        status = health.get("status", "unknown")
        if status == self.status:
            return
        self.status = status
        if status == "ok":
            self.say("health    ok again")
        else:
            self.say(f"WARNING   the stack is {status}: " + "; ".join(health.get("reasons") or ["no reason given"]))


def drain(redis_url: str, say, stop_now: Callable[[], bool], timeout_s: float = 60.0, settle_s: float = 2.0,
          say_every_s: float = 5.0) -> bool:
    """Wait until the job has read, and the lake made durable, every record the producers had acknowledged.

    Caught up must hold, unchanged, for `settle_s`: signals of the last ticks are written after the reader
    reports them read. False when it gives up (after `timeout_s`, Redis away, or `stop_now()`)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2, decode_responses=True)
    started = time.monotonic()
    said_at = seen = settled_since = None
    while True:
        now = time.monotonic()
        try:
            progress, ends = read_progress(client.hgetall(PROGRESS)), read_ends(client.hgetall(TOPIC_ENDS))
        except (redis.RedisError, ValueError) as exc:
            say(f"WARNING   cannot tell what the job has read ({exc}): stopping without waiting")
            return False
        left = behind(progress, ends)
        behind_by = ", ".join(f"{stage} {topic}:{partition} by {count}"
                              for (stage, topic, partition), count in left.items())
        state = ({key: p.next for key, p in progress.items()}, ends)
        settled_since = None if left else (settled_since if state == seen else now)
        seen = state
        if settled_since is not None and now - settled_since >= settle_s:
            say(f"drained   in {now - started:.1f}s: the job has read, and the lake holds, all the producers sent")
            return True
        if now - started > timeout_s:
            say(f"WARNING   gave up waiting after {timeout_s:.0f}s, still behind: {behind_by}")
            return False
        if said_at is None or now - said_at >= say_every_s:
            said_at = now
            say(f"draining  {'behind: ' + behind_by if left else 'caught up, settling'}")
        if stop_now():
            say(f"WARNING   stopped waiting (asked twice, or the job ended); behind: {behind_by or 'nothing'}")
            return False
        time.sleep(0.5)


@dataclass
class Stack:
    settings: Settings
    log_dir: Path
    services: list[Service] = field(default_factory=list)
    finished_ok: set[str] = field(default_factory=set)  # parts allowed to end (a replay that is done)

    def child(self, name: str, argv: list[str], address: str = "") -> Service:
        proc, log_path = spawn(name, argv, self.log_dir, env=python_env())
        service = Service(name, address, proc, log_path)
        self.services.append(service)
        return service

    def embedded_unless_given(self, name: str, address: str | None, start, what: str, say) -> str:
        """The given address, or that of an embedded service started (and later stopped) here."""
        if address is not None:
            say(f"{name:<9} {redacted(address)}  (given)")
            return address
        service = start(self.log_dir)
        self.services.append(service)
        say(f"{name:<9} {service.address}  ({what})")
        return service.address

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        clear_stack(self.settings.state_dir)

    def dead(self) -> Service | None:
        for service in self.services:
            if not service.alive():
                if service.name in self.finished_ok and service.proc.returncode == 0:
                    continue
                return service
        return None


def up(settings: Settings, kafka: str | None, redis: str | None, port: int, source: str, restore: bool,
       say=lambda line: print(line, flush=True)) -> int:
    """Runs until SIGINT/SIGTERM; refuses a state directory another `ascep up` holds, before starting anything."""
    started = time.monotonic()
    try:
        claim = claim_state_dir(settings.state_dir)
    except StateDirInUse as exc:
        raise ServiceError(str(exc)) from None
    try:
        return _run(settings, kafka, redis, port, source, restore, say, started)
    finally:
        claim.close()


def _run(settings: Settings, kafka: str | None, redis: str | None, port: int, source: str, restore: bool,
         say, started: float) -> int:
    state_dir = settings.state_dir
    log_dir = state_dir / "logs"
    check_java()
    if port_in_use(port, settings.dashboard.host):
        raise ServiceError(f"dashboard port {port} is already in use: pass --port or stop what listens there")
    source_command(source, kafka="", redis="")  # a bad --source fails here, before anything starts
    if kafka is None and settings.kafka_security != EMBEDDED:
        raise ServiceError(f"ASCEP_KAFKA_SECURITY__PROTOCOL={settings.kafka_security.protocol} but no Kafka is given "
                           f"(ASCEP_KAFKA or --kafka): the embedded broker speaks plaintext only")
    if redis is not None:
        redis = redis_address(redis, settings.redis_ca_file)
    stack = Stack(settings, log_dir)
    stop_requests = 0

    def on_signal(signum, _frame):
        nonlocal stop_requests
        stop_requests += 1

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        new_broker = kafka is None
        kafka = stack.embedded_unless_given("kafka", kafka, start_broker, "embedded Tansu broker, in memory", say)
        ensure_topics(kafka, settings)
        redis = stack.embedded_unless_given(
            "redis", redis, lambda logs: start_redis(logs, data_dir=state_dir / "redis"),
            f"embedded, append-only file in {state_dir / 'redis'}", say)
        if new_broker:
            forget_offsets(redis)
        republished = republish_kept(kafka, settings.kafka_security, redis)
        if republished:
            say(f"rules     {', '.join(republished)} re-published from Redis to the `{RULES_TOPIC}` topic")
        lake = settings.lake or str((state_dir / "lake").resolve())
        checkpoints = str((state_dir / "checkpoints").resolve())
        job_argv = [sys.executable, "-m", "ascep.cli", "job", "run", "--kafka", kafka, "--redis", redis, "--lake", lake,
                    "--checkpoints", checkpoints]
        if restore:  # refused here, before the job starts, when the checkpoint's topics are gone
            ids = topic_ids(kafka, settings.kafka_security, topics_read(settings, lake))
            checkpoint = restore_point(Path(checkpoints), "latest", ids)
            job_argv += ["--restore", str(checkpoint)] if checkpoint else []
        job = stack.child("flink-job", job_argv, "local MiniCluster")
        say(f"lake      {lake}")
        anonymous_read = open_to_all(settings.dashboard)
        first_password = first_login()
        dashboard = stack.child("dashboard", [sys.executable, "-m", "ascep.cli", "dashboard",
                                              "--host", settings.dashboard.host, "--port", str(port),
                                              "--redis", redis, "--kafka", kafka, "--lake", lake,
                                              "--checkpoints", checkpoints,
                                              "--anonymous-read" if anonymous_read else "--no-anonymous-read"])
        wait_for_port(port, dashboard.proc, "dashboard", timeout=60, host=settings.dashboard.host)
        url = f"http://{settings.dashboard.host}:{port}"
        say(f"dashboard {url}")
        say_login(say, url, anonymous_read, first_password)
        wait_for_job(redis, job, started_ms=now_ms() - int((time.monotonic() - started) * 1000))
        say(f"flink     job running on the local MiniCluster (checkpoints in {checkpoints})")
        source_argv = source_command(source, kafka, redis)
        feed = None
        if source_argv is not None:
            feed = stack.child("source", source_argv)
            if source.startswith("replay:"):
                stack.finished_ok.add("source")
        say(f"source    {source}")
        write_stack(state_dir, {"kafka": kafka, "redis": redis, "dashboard": url, "lake": lake,
                                "s3_endpoint": settings.s3_endpoint, "logs": str(log_dir.resolve())})
        say(f"ready in {time.monotonic() - started:.1f}s; logs in {log_dir}; Ctrl-C stops everything")
        health = HealthWatch(url, say)
        while not stop_requests:
            dead = stack.dead()
            if dead is not None:
                raise ServiceError(dead.death())
            health.poll()
            time.sleep(0.5)
        say("stopping  the source first, then waiting (60 s at most) until the job and the lake hold what it sent; "
            "Ctrl-C again stops at once")
        if feed is not None:
            feed.stop()
        if job.alive():
            drain(redis, say, stop_now=lambda: stop_requests > 1 or not job.alive())
        return 0
    finally:
        stack.stop()
