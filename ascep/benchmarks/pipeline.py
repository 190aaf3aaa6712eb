"""Ticks/s through the whole pipeline (Kafka -> Flink job -> Redis) and tick->signal latency, for several job
configurations in one run, so that their ratios compare like with like (issue 10).

Each configuration of --configs (CONFIGS: detectors, partitions, parallelism, execution mode) gets a fresh
embedded broker and Redis and its own job, on the local MiniCluster or, with --flink, on a Flink cluster:
1. catch-up: N simulated ticks are loaded first, then the job drains them; ticks/s = N / drain time.
2. live, at each rate of --rates in turn: ticks are produced at that rate with event time = now and planted
   opportunities; latency = the moment a signal is published by Redis to a subscriber - its opening tick's event
   time. The job kept up when it had read every tick produced within --drain-timeout of the end of production
   and read at >= 95% of the rate.
The job's resident memory (its whole process tree: JVM and Python workers) is taken after each phase.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import signal as signals
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from ascep.benchmarks.soak import SignalLatency, percentile
from ascep.services import FlinkCluster, flink_rest, start_broker, start_flink_cluster, start_redis
from clients.kafka import EMBEDDED
from core.clock import now_ms
from core.contracts import redis_keys as keys
from core.settings import load_settings

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Config:
    detectors: tuple[str, ...] | None  # downstream of the tick reader; None: the settings' (every detector)
    partitions: int
    parallelism: int
    execution_mode: str  # Flink's Python execution mode: thread or process


CONFIGS: dict[str, Config] = {
    "cross": Config((), partitions=1, parallelism=1, execution_mode="thread"),  # cross-exchange only
    "default": Config(None, partitions=1, parallelism=1, execution_mode="thread"),
    "arbitrage": Config(("triangular", "direct"), partitions=1, parallelism=1, execution_mode="thread"),  # no rules
    "default-p4": Config(None, partitions=4, parallelism=1, execution_mode="thread"),
    "process-p2": Config(None, partitions=2, parallelism=2, execution_mode="process"),
}
BASELINE = "cross"  # every configuration's catch-up is also given as a multiple of this one's
# Further ratios (numerator, denominator): issue 10 asks process mode at parallelism 2 for at least 1.5x the
# catch-up of thread mode at parallelism 1 in the same run.
VERSUS = (("process-p2", "default"),)
KEPT_UP_FRACTION = 0.95
SETTLE_TIMEOUT_S = 600.0  # after a rate it did not keep up with, how long the job may take to drain its backlog


def _names(text: str) -> list[str]:
    import argparse

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown configuration(s) {', '.join(unknown) or '(none)'}; "
                                         f"known: {', '.join(CONFIGS)}")
    return names


def _rates(text: str) -> list[int]:
    import argparse

    try:
        rates = [int(rate.replace("_", "")) for rate in text.split(",") if rate.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ticks/s: {text!r}") from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"rates must be > 0 ticks/s: {text!r}")
    return rates


def add_arguments(parser) -> None:
    parser.add_argument("--configs", type=_names, default=_names("cross,default"),
                        help="comma-separated job configurations, run one after another (default cross,default): "
                             + "; ".join(f"{name} = {describe(config)}" for name, config in CONFIGS.items()))
    parser.add_argument("--ticks", type=int, default=300_000, help="ticks preloaded for the catch-up phase")
    parser.add_argument("--rates", type=_rates, default=_rates("10000"),
                        help="comma-separated ticks/s of the live phases, each run in turn (default 10000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each live phase")
    parser.add_argument("--drain-timeout", type=float, default=10.0,
                        help="seconds after a live phase's production within which the job must have read it all")
    parser.add_argument("--market", choices=MARKETS, default="sim",
                        help="sim: the simulator's 10 symbols on 3 venues (default); large: 1,000 symbols on 5 "
                             "venues (every asset against USDT, BTC and ETH), for the job's memory at that size")
    parser.add_argument("--flink", metavar="HOST:PORT|local",
                        help="submit each job to this Flink cluster (REST address; it must reach 127.0.0.1, where "
                             "the broker and Redis listen), cancelling it before the next. A TaskManager runs one "
                             "thread-mode job in its life: after one, restart the cluster. 'local' starts a "
                             "standalone cluster here (pyflink/bin) for each configuration. Default: the local "
                             "MiniCluster")


def describe(config: Config) -> str:
    detectors = "settings' detectors" if config.detectors is None else ",".join(config.detectors) or "cross only"
    return f"{detectors}, {config.partitions} partition(s), parallelism {config.parallelism}, {config.execution_mode}"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the job under test: on the MiniCluster (a child process) or on a cluster (submitted) -------------------

class Job(Protocol):
    def check(self) -> None:
        """Raise RuntimeError when the job is no longer running."""

    def rss_mb(self) -> float | None:
        """Resident memory of the job's processes, in MB; None when they cannot be seen from here."""

    def stop(self) -> None: ...


def tree_rss_mb(pids: list[int]) -> float:
    """RSS of the processes `pids` and all their descendants, in MB."""
    import psutil

    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in family:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass  # a worker ended between listing and reading
    return round(total / 2**20, 1)


class MiniClusterJob:
    """`ascep job run` as a child process: the MiniCluster's JVM and, in process mode, its Python workers below it."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(argv, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the Flink job exited with {self.proc.returncode} during the benchmark; see {self.log}")

    def rss_mb(self) -> float | None:
        return tree_rss_mb([self.proc.pid])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signals.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signals.SIGKILL)
                self.proc.wait()


class ClusterJob:
    """The job submitted with `ascep job run --flink` (which returns once it is submitted); cancelled through the
    cluster's REST API. Its memory is the TaskManager's process tree when the cluster was started here."""

    TERMINAL = ("FAILED", "CANCELED", "FINISHED")

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, address: str,
                 cluster: FlinkCluster | None) -> None:
        self.address, self.cluster, self.log = address, cluster, log
        self._checked_at = 0.0
        submitted = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        log.write_text(submitted.stdout + submitted.stderr)
        found = re.search(r"JobID ([0-9a-f]{32})", submitted.stdout)
        if submitted.returncode != 0 or found is None:
            raise RuntimeError(f"submitting the job to {address} failed ({submitted.returncode}); see {log}:\n"
                               + (submitted.stdout + submitted.stderr)[-2000:])
        self.job_id = found.group(1)

    def state(self) -> str:
        return flink_rest(self.address, f"/jobs/{self.job_id}")["state"]

    def check(self) -> None:
        if time.monotonic() - self._checked_at < 1.0:
            return
        self._checked_at = time.monotonic()
        state = self.state()
        if state in self.TERMINAL:
            raise RuntimeError(f"the job {self.job_id} on {self.address} is {state}: {self.root_exception()}")

    def root_exception(self) -> str:
        """The last lines of why the job failed, from the cluster (its whole history: /jobs/<id>/exceptions)."""
        try:
            history = flink_rest(self.address, f"/jobs/{self.job_id}/exceptions")
        except OSError as exc:
            return f"(its exceptions could not be read: {exc})"
        root = (history.get("rootException") or history.get("exceptionHistory", {}).get("entries", [{}])[0]
                .get("stacktrace") or "no exception recorded")
        return "\n".join(root.strip().splitlines()[:3] + ["..."] + root.strip().splitlines()[-12:])

    def rss_mb(self) -> float | None:
        return tree_rss_mb([self.cluster.taskmanager.pid]) if self.cluster is not None else None

    def stop(self) -> None:
        """Cancel, and wait until the job is over and its slots are free again, so the next job starts clean."""
        try:
            if self.state() not in self.TERMINAL:
                flink_rest(self.address, f"/jobs/{self.job_id}?mode=cancel", method="PATCH")
            deadline = time.monotonic() + 120
            while self.state() not in self.TERMINAL or _slots_in_use(self.address):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the job {self.job_id} on {self.address} did not end within 120s of its "
                                       f"cancellation")
                time.sleep(0.5)
        except OSError as exc:
            raise RuntimeError(f"could not cancel the job {self.job_id} on {self.address}: {exc}") from exc


def _slots_in_use(address: str) -> bool:
    overview = flink_rest(address, "/overview")
    return overview["slots-available"] < overview["slots-total"]


# --- producing, counting -------------------------------------------------------------------------------------

def _counter(client: redis.Redis) -> int:
    """Ticks through the whole job: through every detector (`detected`: with several partitions the detection
    buckets lag the readers), or dead-lettered."""
    detected, deadletters = cast("list", client.hmget(keys.COUNTERS, ["detected", "deadletters"]))
    return int(detected or 0) + int(deadletters or 0)


def _wait_counter(client: redis.Redis, target: int, job: Job, timeout: float) -> float | None:
    """The moment (monotonic) the job has read `target` ticks; None if it has not within `timeout`."""
    deadline = time.monotonic() + timeout
    while _counter(client) < target:
        job.check()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    return time.monotonic()


MARKETS = ("sim", "large")
LARGE_VENUES = ("binance", "okx", "kraken", "coinbase", "bybit")


PLANT_EVERY_S, PLANT_FOR_S = 0.5, 0.2  # a planted opportunity this often (event time): ~100 signals a minute


def _market(kind: str, seed: int, rate: float):
    """The simulated market of --market, with planted opportunities often enough that a live phase's p99 rests on
    a hundred signals or more, not on its slowest one or two."""
    from ingestion.sim.market import CRYPTO_ASSETS, Asset, SimulatedMarket

    if kind == "sim":
        return SimulatedMarket(seed=seed, rate=rate, opportunity_every_s=PLANT_EVERY_S,
                               opportunity_duration_s=PLANT_FOR_S)
    hubs = ("USDT", "BTC", "ETH")
    assets = {name: CRYPTO_ASSETS[name] for name in hubs}
    assets.update((f"A{i}", Asset(10 ** ((i % 9) - 4 + 0.37), 0.8)) for i in range(333))
    symbols = ["BTC/USDT", "ETH/USDT", "ETH/BTC"] + [f"A{i}/{hub}" for i in range(333) for hub in hubs]
    return SimulatedMarket(seed=seed, venues=LARGE_VENUES, symbols=symbols, assets=assets, rate=rate,
                           opportunity_every_s=PLANT_EVERY_S, opportunity_duration_s=PLANT_FOR_S,
                           latency_ms=dict.fromkeys(LARGE_VENUES, 20), spread_bps={})


def _preload(bootstrap: str, count: int, seed: int, market_kind: str = "sim") -> int:
    """`count` simulated ticks as fast as possible. Their event times end about now: a tick dated far ahead of
    its Kafka record would be dead-lettered (job.max_future_skew_ms)."""
    from ingestion.producer import TickProducer

    rate = 50_000.0
    market = _market(market_kind, seed, rate)
    sent = 0
    with TickProducer(bootstrap, EMBEDDED, buffer_messages=500_000, linger_ms=5) as producer:
        for tick in market.ticks(now_ms() - int(count / rate * 1000)):
            producer.tick(tick)
            sent += 1
            if sent >= count:
                break
    return sent


def _live_ticks(rate: int, seconds: float, seed: int, market_kind: str = "sim") -> list:
    """The ticks of a live phase, their ts in ms from its start. The simulator is too slow to generate 50,000
    ticks/s and send them too on a shared core, so they are generated before the phase (about 230 bytes each)."""
    market = _market(market_kind, seed, float(rate))
    return list(itertools.islice(market.ticks(0), int(rate * seconds * 1.05) + 1_000))


def _produce_live(bootstrap: str, ticks: list, seconds: float) -> tuple[int, float]:
    """`ticks` on their schedule for `seconds`, each dated when it is sent; returns (sent, seconds taken).

    It sleeps only when it is more than 1 ms ahead of schedule: a sleep per tick (20 us apart at 50,000/s) costs
    more than the gap, and the loop catches up after each late wake-up anyway."""
    from ingestion.producer import TickProducer

    sent = 0
    clock = time.time
    with TickProducer(bootstrap, EMBEDDED, buffer_messages=500_000, linger_ms=5) as producer:
        start = clock()
        for tick in ticks:
            now = clock()
            ahead = start + tick.ts / 1000.0 - now
            if ahead > 0.001:
                time.sleep(ahead)
                now = clock()
            if now - start >= seconds:
                break
            producer.tick(tick._replace(ts=int(now * 1000)))
            sent += 1
        took = clock() - start
    return sent, took


def _ms(value: float) -> float | None:
    return None if value != value else round(value, 1)  # NaN (no signal) -> None, which JSON can carry


class FirstRead(threading.Thread):
    """Watches the job's counter from `before` on: when it first moved, and to what (the job reads in batches)."""

    def __init__(self, client: redis.Redis, before: int) -> None:
        super().__init__(daemon=True)
        self.client, self.before = client, before
        self.at: float | None = None
        self.count = before
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.01):
            count = _counter(self.client)
            if count > self.before:
                self.at, self.count = time.monotonic(), count
                return


def _live(client: redis.Redis, bootstrap: str, job: Job, rate: int, seconds: float, drain_timeout: float,
          seed: int, market_kind: str = "sim") -> dict:
    """One live phase. The job's rate is its reading rate from its first read of the phase to its last (or to the
    drain timeout), so that the pipeline's latency, which delays both ends alike, does not count as slowness."""
    ticks = _live_ticks(rate, seconds, seed, market_kind)
    latency = SignalLatency(client, since_ms=now_ms())  # signals opened before this phase do not count
    first = FirstRead(client, _counter(client))
    try:
        first.start()
        sent, took = _produce_live(bootstrap, ticks, seconds)
        produced_at = time.monotonic()
        read_all_at = _wait_counter(client, first.before + sent, job, timeout=drain_timeout)
        ended_at = read_all_at or time.monotonic()
        read = _counter(client) - first.before
    finally:
        first.stop.set()
        latency.close()
    job_rate = (first.before + read - first.count) / (ended_at - first.at) if first.at is not None else 0.0
    latencies, detect = latency.take(), latency.take_detect()
    return {"rate": rate, "produced": sent, "produced_ticks_per_s": round(sent / took, 1),
            "live_ticks_per_s": round(job_rate, 1),
            "drain_s": None if read_all_at is None else round(read_all_at - produced_at, 2),
            "behind_after_drain_timeout": sent - read,
            "signals_opened_live": len(latency.seen),
            "latency_p50_ms": _ms(percentile(latencies, 0.50)), "latency_p99_ms": _ms(percentile(latencies, 0.99)),
            "detect_p50_ms": _ms(percentile(detect, 0.50)), "detect_p99_ms": _ms(percentile(detect, 0.99)),
            "kept_up": read_all_at is not None and job_rate >= KEPT_UP_FRACTION * rate}


# --- one configuration, then all of them ---------------------------------------------------------------------

def job_env(config: Config, settings_detectors: list[str]) -> dict[str, str]:
    detectors = list(config.detectors) if config.detectors is not None else settings_detectors
    return {"ASCEP_JOB__DETECTORS": json.dumps(detectors), "ASCEP_JOB__PARTITIONS": str(config.partitions),
            "ASCEP_JOB__PARALLELISM": str(config.parallelism), "ASCEP_JOB__EXECUTION_MODE": config.execution_mode}


def rerun_command(name: str, args) -> str:
    """The command line that runs configuration `name` alone with the same figures."""
    argv = ["ascep", "bench", "pipeline", "--configs", name, "--ticks", str(args.ticks),
            "--seconds", f"{args.seconds:g}", "--rates", ",".join(map(str, args.rates))]
    if args.drain_timeout != 10.0:
        argv += ["--drain-timeout", f"{args.drain_timeout:g}"]
    if args.market != "sim":
        argv += ["--market", args.market]
    if args.flink:
        argv += ["--flink", args.flink]
    return shlex.join(argv)


def run_config(name: str, config: Config, args, flink: str | None, cluster: FlinkCluster | None) -> dict:
    import redis

    from ascep.stack import ensure_topics
    from flink_jobs.launcher import python_env

    work = Path(tempfile.mkdtemp(prefix=f"ascep-bench-{name}-"))
    settings = load_settings(state_dir=work / ".ascep")
    settings.job.partitions = config.partitions  # the topics are created with the configuration's partitions
    variables = job_env(config, settings.job.detectors)
    figures: dict = {"detectors": json.loads(variables["ASCEP_JOB__DETECTORS"]), "partitions": config.partitions,
                     "parallelism": config.parallelism, "execution_mode": config.execution_mode,
                     "command": rerun_command(name, args),
                     "job_env": " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())}
    broker, store = start_broker(work / "logs"), start_redis(work / "logs")
    job: Job | None = None
    try:
        ensure_topics(broker.address, settings)
        client = redis.Redis.from_url(store.address)
        _progress(f"{name}: loading {args.ticks:,} ticks ...")
        loaded = _preload(broker.address, args.ticks, seed=1, market_kind=args.market)
        env = {**python_env(), "ASCEP_STATE_DIR": str(settings.state_dir), **variables}
        argv = [sys.executable, "-m", "ascep.cli", "job", "run", "--kafka", broker.address, "--redis", store.address]
        if flink:
            _progress(f"{name}: submitting the job to {flink} ...")
            job = ClusterJob([*argv, "--flink", flink], env, work / "job.log", flink, cluster)
        else:
            _progress(f"{name}: starting the job ...")
            job = MiniClusterJob(argv, env, work / "job.log")
        started = time.monotonic()
        if _wait_counter(client, 1, job, timeout=240) is None:
            raise RuntimeError(f"the job read nothing within 240s; see {work / 'job.log'}")
        first, first_count = time.monotonic(), _counter(client)
        if first_count >= loaded:
            raise RuntimeError(f"{name}: the job had read all {loaded:,} ticks by its first report, so there is no "
                               f"catch-up to time: give more --ticks (its reports come a poll of "
                               f"{settings.job.poll_batch:,} records at a time, or less often)")
        _progress(f"{name}: draining (the job read its first ticks after {first - started:.1f}s) ...")
        done = _wait_counter(client, loaded, job, timeout=600 + args.ticks / 1_000)
        if done is None:
            raise RuntimeError(f"the job read {_counter(client):,} of {loaded:,} ticks; see {work / 'job.log'}")
        figures.update(catch_up_ticks_per_s=round((loaded - first_count) / max(done - first, 1e-9), 1),
                       catch_up_ticks=loaded - first_count, rss_mb_after_catch_up=job.rss_mb(), live=[])
        _progress(f"{name}: catch-up {figures['catch_up_ticks_per_s']:,.0f} ticks/s")
        for index, rate in enumerate(args.rates):
            _progress(f"{name}: live phase, {rate:,} ticks/s for {args.seconds:g}s ...")
            phase = _live(client, broker.address, job, rate, args.seconds, args.drain_timeout, seed=2 + index,
                          market_kind=args.market)
            figures["live"].append(phase)
            _progress(f"{name}: produced {phase['produced_ticks_per_s']:,.0f}/s, the job read "
                      f"{phase['live_ticks_per_s']:,.0f}/s, p50/p99 {phase['latency_p50_ms']}/"
                      f"{phase['latency_p99_ms']} ms, kept up: {phase['kept_up']}")
            if phase["behind_after_drain_timeout"] and index + 1 < len(args.rates):
                _progress(f"{name}: {phase['behind_after_drain_timeout']:,} ticks behind; waiting for the job to "
                          f"catch up before the next rate ...")
                if _wait_counter(client, loaded + sum(p["produced"] for p in figures["live"]), job,
                                 timeout=SETTLE_TIMEOUT_S) is None:
                    figures["live_skipped"] = f"still behind {SETTLE_TIMEOUT_S:.0f}s after the {rate:,}/s phase"
                    break
        figures["rss_mb_after_live"] = job.rss_mb()
        return figures
    finally:
        try:
            if job is not None:
                job.stop()
        finally:
            broker.stop()
            store.stop()


def ratios(configs: dict[str, dict]) -> dict[str, float]:
    """Catch-up of each configuration over the baseline's, and the VERSUS pairs, of configurations that ran."""
    rate = {name: figures["catch_up_ticks_per_s"] for name, figures in configs.items()
            if figures.get("catch_up_ticks_per_s")}
    pairs = [(name, BASELINE) for name in rate if name != BASELINE] + list(VERSUS)
    return {f"{top}/{bottom}": round(rate[top] / rate[bottom], 2) for top, bottom in pairs
            if top in rate and bottom in rate}


def run(args) -> dict:
    results: dict[str, dict] = {}
    logs = Path(tempfile.mkdtemp(prefix="ascep-bench-flink-")) if args.flink == "local" else None
    for number, name in enumerate(args.configs, 1):
        config = CONFIGS[name]
        _progress(f"[{number}/{len(args.configs)}] {name}: {describe(config)}")
        cluster = None
        try:
            if logs is not None:
                # A cluster of its own for each configuration: a TaskManager runs a thread-mode job once only (the
                # next one fails loading pemja's native library in its new class loader), and memory starts clean.
                slots = max(2, config.parallelism)
                _progress(f"{name}: starting a standalone Flink cluster ({slots} slots; logs in {logs / name}) ...")
                cluster = start_flink_cluster(logs / name, slots=slots)
            results[name] = run_config(name, config, args, cluster.address if cluster else args.flink, cluster)
        except (RuntimeError, OSError) as exc:  # the other configurations still run and report
            _progress(f"{name}: failed: {exc}")
            results[name] = {"error": str(exc), "command": rerun_command(name, args)}
        finally:
            if cluster is not None:
                cluster.stop()
    return {"configs": results, "ratios": ratios(results), "ticks": args.ticks, "seconds": args.seconds,
            "rates": args.rates, "flink": args.flink or "minicluster", "cores": os.cpu_count()}


# --- the printed report --------------------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(headers: list[str], rows: list[list]) -> list[str]:
    cells = [headers, *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in
                      enumerate(zip(row, widths))) for row in cells]


def table(figures: dict) -> str:
    """What `ascep bench pipeline` prints without --json."""
    configs = figures["configs"]
    ran = {name: f for name, f in configs.items() if "error" not in f}
    lines = [f"job on: {figures['flink']}; {figures['ticks']:,} ticks preloaded; live phases of "
             f"{figures['seconds']:g}s; {figures['cores']} cores", ""]
    baseline = ran.get(BASELINE, {}).get("catch_up_ticks_per_s")
    lines += _table(["config", "detectors", "partitions", "parallelism", "mode", "catch-up ticks/s",
                     f"x {BASELINE}", "RSS MB after catch-up", "after live"],
                    [[name, ",".join(f["detectors"]) or "(cross only)", f["partitions"], f["parallelism"],
                      f["execution_mode"], f["catch_up_ticks_per_s"],
                      f"{f['catch_up_ticks_per_s'] / baseline:.2f}" if baseline else None,
                      f["rss_mb_after_catch_up"], f.get("rss_mb_after_live")] for name, f in ran.items()])
    lines += [""] + _table(["config", "target/s", "produced/s", "job read/s", "drain s", "signals", "p50 ms",
                            "p99 ms", "detect p50", "detect p99", "kept up"],
                           [[name, p["rate"], p["produced_ticks_per_s"], p["live_ticks_per_s"], p["drain_s"],
                             p["signals_opened_live"], p["latency_p50_ms"], p["latency_p99_ms"], p.get("detect_p50_ms"),
                             p.get("detect_p99_ms"), p["kept_up"]]
                            for name, f in ran.items() for p in f["live"]])
    lines += [f"  {name}: {f['live_skipped']}" for name, f in ran.items() if "live_skipped" in f]
    if figures["ratios"]:
        goals = {f"{top}/{bottom}": " (issue 10's goal: >= 1.5)" for top, bottom in VERSUS}
        lines += ["", "catch-up ratios: " + ", ".join(f"{pair} = {value:.2f}{goals.get(pair, '')}"
                                                      for pair, value in figures["ratios"].items())]
    lines += ["", "each configuration alone (the job's settings after ':'):"]
    lines += [f"  {f['command']}" + (f"  : {f['job_env']}" if "job_env" in f else "") for f in configs.values()]
    lines += [f"{name} FAILED: {f['error']}" for name, f in configs.items() if "error" in f]
    return "\n".join(lines)
