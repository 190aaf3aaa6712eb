"""The embedded stack under simulated load for N minutes: does reading keep up, and is memory flat?

It runs `ascep up --source none` in a fresh state directory, as a user would, and produces
simulated ticks into its broker at a fixed rate from this process (event time = now, planted
opportunities), so the count produced is exact. Every interval it prints, on stderr: ticks read
against ticks produced, the lag between them, the lake's lag, p50/p99 tick->signal over the
interval, /api/health's status, and the resident memory of each process of the stack. At the
end: the slope of each process's memory over the run, and over its second half (after warm-up).
"""
from __future__ import annotations

import json
import os
import signal as signals
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from ascep.services import free_port
from clients.kafka import EMBEDDED
from core.clock import now_ms
from core.contracts import redis_keys as keys
from core.contracts.topics import TICKS_TOPIC

# `ascep up`'s children, told apart by their command lines; everything below a child counts as that child.
PARTS = (("broker", "tansu"), ("redis", "redis-server"), ("flink-job", " job run"), ("dashboard", " dashboard"))


def add_arguments(parser) -> None:
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--rate", type=int, default=50, help="ticks/s produced (default 50, the simulator's)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between printed lines (default 60)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--template", action="append", default=[], metavar="NAME",
                        help="a built-in rule template to switch on for the whole market while it runs (repeatable)")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def part_of(cmdline: str) -> str:
    return next((name for name, marker in PARTS if marker in cmdline), "other")


def resident_mb(up_pid: int) -> dict[str, float]:
    """RSS per part of the stack rooted at `up_pid` (`ascep up` itself included), in MB."""
    import psutil

    totals: dict[str, float] = {}
    try:
        root = psutil.Process(up_pid)
        totals["ascep-up"] = root.memory_info().rss / 2**20
        for child in root.children():
            name = part_of(" ".join(child.cmdline()))
            family = [child, *child.children(recursive=True)]
            totals[name] = totals.get(name, 0.0) + sum(p.memory_info().rss for p in family) / 2**20
    except psutil.NoSuchProcess:
        pass  # a part ended between listing and reading; the next sample has it again or the run fails
    return totals


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, MB) samples; NaN with fewer than three."""
    if len(samples) < 3:
        return float("nan")
    minutes, mb = zip(*samples)
    return statistics.linear_regression(minutes, mb).slope


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def health_status(dashboard: str) -> str:
    """What the stack's /api/health says (a 503 carries the same JSON): ok, degraded or down."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{dashboard}/api/health", timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except OSError as exc:
        return f"unreachable ({exc})"
    return orjson.loads(body).get("status", "?")


class SignalLatency:
    """Tick->signal latency of signals opened since `since_ms`: the moment Redis publishes a signal's first
    state minus the event time of the tick that made it (`updated_at`), as `ascep bench pipeline` measures
    it. A pattern's match arrives closed, made by its last event: its `event_time` is its first, up to its
    WITHIN earlier. Beside each, the part of it before the job detected the signal (`detected_at`, the job's
    wall clock, minus `updated_at`): Kafka and the job's reading, so the rest is the sink, Redis and this
    subscriber, which tells where a slow signal lost its time."""

    def __init__(self, client, since_ms: int) -> None:
        self.pubsub = client.pubsub()
        self.pubsub.subscribe(keys.LIVE_CHANNEL)
        self.since_ms = since_ms
        self.seen: set[str] = set()
        self.window: list[float] = []
        self.detect_window: list[float] = []
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.running.set()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while self.running.is_set():
            message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is None or not message["data"].startswith(b'{"kind":"signal"'):
                continue
            signal = orjson.loads(message["data"])["data"]
            if signal["event_time"] >= self.since_ms and signal["id"] not in self.seen:
                self.seen.add(signal["id"])
                with self.lock:
                    self.window.append(time.time() * 1000 - signal["updated_at"])
                    self.detect_window.append(signal["detected_at"] - signal["updated_at"])

    def take(self) -> list[float]:
        with self.lock:
            taken, self.window = self.window, []
        return taken

    def take_detect(self) -> list[float]:
        """The tick->detected parts of the latencies seen since the last call."""
        with self.lock:
            taken, self.detect_window = self.detect_window, []
        return taken

    def close(self) -> None:
        self.running.clear()
        self.thread.join()
        self.pubsub.close()


class PacedProducer(threading.Thread):
    """Simulated ticks at `rate`/s with event time = now, into the stack's broker; `sent` counts acknowledged."""

    def __init__(self, bootstrap: str, rate: int, seed: int, ends_to: str | None = None) -> None:
        """`ends_to`: the stack's Redis, to which it reports the topic's ends as the product's producers do."""
        super().__init__(daemon=True)
        self.bootstrap, self.rate, self.seed, self.ends_to = bootstrap, rate, seed, ends_to
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from ingestion.producer import TickProducer
        from ingestion.sim.market import SimulatedMarket
        from ingestion.sim.runner import paced

        try:
            market = SimulatedMarket(seed=self.seed, rate=float(self.rate), opportunity_every_s=2.0,
                                     opportunity_duration_s=0.5)
            with TickProducer(self.bootstrap, EMBEDDED, buffer_messages=500_000, ends_to=self.ends_to) as producer:
                for tick in paced(market.ticks(now_ms()), self.stop):
                    producer.tick(tick)
                    self.sent, self.failed = producer.counts.ticks - producer.counts.failed, producer.counts.failed
                producer.flush(30)
                self.sent, self.failed = producer.counts.ticks - producer.counts.failed, producer.counts.failed
        except BaseException as exc:  # noqa: BLE001 - reported by the main loop, which then stops
            self.error = exc


def _start_stack(work: Path, port: int) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "ASCEP_STATE_DIR": str(work / ".ascep"), "ASCEP_DASHBOARD__PORT": str(port)}
    up = subprocess.Popen([sys.executable, "-m", "ascep.cli", "up", "--source", "none", "--port", str(port)],
                          env=env, stdout=open(work / "up.log", "wb"), stderr=subprocess.STDOUT,
                          start_new_session=True, cwd=work)
    stack_file = work / ".ascep" / "stack.json"
    deadline = time.monotonic() + 240
    try:
        while not stack_file.exists():
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ascep up did not start (see {work / 'up.log'}):\n"
                                   + (work / "up.log").read_text(errors="replace")[-2000:])
            time.sleep(0.5)
        return up, json.loads(stack_file.read_text())
    except BaseException:  # Ctrl-C while it starts, too: never leave a stack behind
        stop_stack(up)
        raise


def stop_stack(up: subprocess.Popen) -> None:
    """As Ctrl-C would: `ascep up` stops its parts; killed if it has not within two minutes."""
    if up.poll() is None:
        os.killpg(up.pid, signals.SIGINT)
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signals.SIGKILL)
            up.wait()


def rule_evaluations(client) -> int:
    """Evaluations counted by every rule engine of the job (one hash per detection bucket)."""
    total = 0
    for name in [keys.RULE_STATS, *client.scan_iter(match=f"{keys.RULE_STATS}:*")]:
        for doc in client.hvals(name):
            total += json.loads(doc).get("evaluations", 0)
    return total


def lake_behind(client) -> int | None:
    """How many `ticks` records the lake does not hold durably yet, from the archiver's progress against the
    topic's ends (records, not ticks: producers' watermark records count too); None before it reports."""
    from core.progress import read_ends, read_progress, unread_by_stage

    unread, _ = unread_by_stage(
        read_progress({field.decode(): doc for field, doc in client.hgetall(keys.PROGRESS).items()}),
        read_ends({field.decode(): value for field, value in client.hgetall(keys.TOPIC_ENDS).items()}),
        {"lake": (TICKS_TOPIC,)})
    return unread.get("lake")


def run(args) -> dict:
    import redis

    work = Path(tempfile.mkdtemp(prefix="ascep-soak-"))
    port = free_port()
    _say(f"soak: {args.minutes:g} min at {args.rate:,} ticks/s; stack in {work}")
    up, stack = _start_stack(work, port)
    client = redis.Redis.from_url(stack["redis"])
    for name in args.template:  # through the CLI, as a user would
        added = subprocess.run([sys.executable, "-m", "ascep.cli", "rules", "add", "--template", name, "--id", name],
                               cwd=work, env=os.environ | {"ASCEP_STATE_DIR": str(work / ".ascep")},
                               capture_output=True, text=True, timeout=120)
        if added.returncode != 0:
            stop_stack(up)
            raise RuntimeError(f"could not add template {name}: {added.stderr.strip()}")
    latency = SignalLatency(client, since_ms=now_ms())
    producer = PacedProducer(stack["kafka"], args.rate, args.seed, ends_to=stack["redis"])
    memory: dict[str, list[tuple[float, float]]] = {}
    lags: list[int] = []
    latencies: list[float] = []
    statuses: list[str] = []
    started = time.monotonic()
    producer.start()
    try:
        _say(f"{'min':>6} {'produced':>10} {'read':>10} {'lag':>8} {'lake lag':>9} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'health':>8} {'rule evals':>10}  RSS MB per process")
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            time.sleep(min(args.interval, max(0.0, args.minutes * 60 - elapsed)))
            if up.poll() is not None:
                raise RuntimeError(f"ascep up exited with {up.returncode} during the soak; see {work / 'up.log'}")
            if producer.error is not None:
                raise RuntimeError(f"the load generator failed: {producer.error}")
            minute = (time.monotonic() - started) / 60
            counters = client.hgetall(keys.COUNTERS)
            read = int(counters.get(b"ticks", 0)) + int(counters.get(b"deadletters", 0))
            produced = producer.sent
            lags.append(produced - read)
            lake_lag = lake_behind(client)
            status = health_status(stack["dashboard"])
            statuses.append(status)
            rss = resident_mb(up.pid)
            evaluations = rule_evaluations(client)
            interval_latencies = latency.take()
            latencies.extend(interval_latencies)
            for name, mb in rss.items():
                memory.setdefault(name, []).append((minute, mb))
            _say(f"{minute:6.1f} {produced:10,} {read:10,} {produced - read:8,} "
                 f"{'-' if lake_lag is None else f'{lake_lag:,}':>9} "
                 f"{percentile(interval_latencies, 0.5):7.1f} {percentile(interval_latencies, 0.99):7.1f} {status:>8} "
                 f"{evaluations:10,}  "
                 + " ".join(f"{name}={mb:.0f}" for name, mb in sorted(rss.items())))
        producer.stop.set()
        producer.join(60)
        figures: dict = {"minutes": args.minutes, "rate": args.rate, "produced": producer.sent,
                         "produce_failures": producer.failed, "lag_max_ticks": max(lags, default=0),
                         "lag_last_ticks": lags[-1] if lags else 0,
                         "signals_opened": len(latency.seen), "latency_p50_ms": round(percentile(latencies, 0.5), 1),
                         "latency_p99_ms": round(percentile(latencies, 0.99), 1),
                         "intervals_not_ok": sum(status != "ok" for status in statuses),
                         "rule_evaluations": rule_evaluations(client),
                         "cores": os.cpu_count()}
        for name, samples in sorted(memory.items()):
            half = [s for s in samples if s[0] >= args.minutes / 2]
            figures[f"rss_{name}_last_mb"] = round(samples[-1][1], 1)
            figures[f"rss_{name}_slope_mb_per_min"] = round(slope_mb_per_min(samples), 3)
            figures[f"rss_{name}_slope_2nd_half_mb_per_min"] = round(slope_mb_per_min(half), 3)
        return figures
    finally:
        producer.stop.set()
        latency.close()
        stop_stack(up)
