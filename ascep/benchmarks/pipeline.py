"""Ticks/s through the whole pipeline (Kafka -> Flink job -> Redis) and tick->signal latency.

Two phases on a fresh embedded broker and Redis, with the job on the local MiniCluster:
1. catch-up: N simulated ticks are loaded first, then the job drains them; ticks/s = N / drain time.
2. live: ticks are produced at a fixed rate with event time = now and planted opportunities;
   latency = the moment a signal is published by Redis to a subscriber - its opening tick's event time.
"""
from __future__ import annotations

import json
import os
import signal as signals
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from ascep.services import start_broker, start_redis
from core.clock import now_ms
from core.contracts import redis_keys as keys
from core.settings import load_settings

if TYPE_CHECKING:
    import redis


def add_arguments(parser) -> None:
    parser.add_argument("--ticks", type=int, default=300_000, help="ticks preloaded for the catch-up phase")
    parser.add_argument("--rate", type=int, default=10_000, help="ticks/s produced in the live phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the live phase")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--detectors", default=None,
                        help="comma-separated downstream detectors (triangular,direct,rules); '' for cross-exchange "
                             "only; default: the settings")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _counter(client: redis.Redis) -> int:
    return int(client.hget(keys.COUNTERS, "ticks") or 0)


def _wait_counter(client: redis.Redis, target: int, job: subprocess.Popen, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while _counter(client) < target:
        if job.poll() is not None:
            raise RuntimeError(f"the Flink job exited with {job.returncode} during the benchmark")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the job processed {_counter(client)} of {target} ticks in {timeout:.0f}s")
        time.sleep(0.05)
    return time.monotonic()


def _produce(bootstrap: str, count: int | None, rate: float | None, seconds: float | None, seed: int) -> int:
    """Produce simulated ticks: `count` as fast as possible, or at `rate` for `seconds` with ts = now."""
    from ingestion.producer import TickProducer
    from ingestion.sim.market import SimulatedMarket

    market = SimulatedMarket(seed=seed, rate=rate or 50_000.0, opportunity_every_s=2.0, opportunity_duration_s=0.5)
    sent = 0
    with TickProducer(bootstrap, buffer_messages=500_000, linger_ms=5) as producer:
        if count is not None:
            for tick in market.ticks(now_ms()):
                producer.tick(tick)
                sent += 1
                if sent >= count:
                    break
            return sent
        start = time.time()
        for tick in market.ticks(int(start * 1000)):
            wait = tick.ts / 1000.0 - time.time()
            if wait > 0:
                time.sleep(wait)
            producer.tick(tick._replace(ts=now_ms()))
            sent += 1
            if time.time() - start >= seconds:
                break
    return sent


def run(args) -> dict:
    import redis

    from ascep.stack import ensure_topics
    from flink_jobs.launcher import python_env

    work = Path(tempfile.mkdtemp(prefix="ascep-bench-"))
    settings = load_settings(state_dir=work / ".ascep")
    settings.job.partitions = args.partitions
    broker, store = start_broker(work / "logs"), start_redis(work / "logs")
    job = None
    try:
        ensure_topics(broker.address, settings)
        client = redis.Redis.from_url(store.address)
        _progress(f"loading {args.ticks:,} ticks ...")
        loaded = _produce(broker.address, args.ticks, None, None, seed=1)
        env = {**python_env(), "ASCEP_STATE_DIR": str(settings.state_dir),
               "ASCEP_JOB__PARTITIONS": str(args.partitions)}
        if args.detectors is not None:
            env["ASCEP_JOB__DETECTORS"] = json.dumps([d for d in args.detectors.split(",") if d])
        job = subprocess.Popen([sys.executable, "-m", "ascep.cli", "job", "run", "--kafka", broker.address,
                                "--redis", store.address],
                               env=env, stdout=open(work / "job.log", "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
        _progress("starting the job and draining ...")
        _wait_counter(client, 1, job, timeout=120)
        first = time.monotonic()
        first_count = _counter(client)
        done = _wait_counter(client, loaded, job, timeout=600)
        catch_up = (loaded - first_count) / max(done - first, 1e-9)

        latencies: list[float] = []
        pubsub = client.pubsub()
        pubsub.subscribe(keys.LIVE_CHANNEL)
        seen: set[str] = set()
        listening = threading.Event()
        listening.set()

        def listen() -> None:
            while listening.is_set():
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is None or not message["data"].startswith(b'{"kind":"signal"'):
                    continue
                signal = orjson.loads(message["data"])["data"]
                if signal["event_time"] >= live_from_ms and signal["id"] not in seen:
                    seen.add(signal["id"])
                    latencies.append(time.time() * 1000 - signal["event_time"])

        live_from_ms = now_ms()  # signals opened by the catch-up phase do not count
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        _progress(f"live phase: {args.rate:,} ticks/s for {args.seconds:.0f}s ...")
        before, started = _counter(client), time.monotonic()
        sent = _produce(broker.address, None, args.rate, args.seconds, seed=2)
        produced_for = time.monotonic() - started
        _wait_counter(client, loaded + sent, job, timeout=120)
        live_rate = (_counter(client) - before) / produced_for
        listening.clear()
        listener.join()
        pubsub.close()
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

        return {"catch_up_ticks_per_s": round(catch_up, 1), "catch_up_ticks": loaded - first_count,
                "live_rate_target": args.rate, "live_ticks_per_s": round(live_rate, 1),
                "signals_opened_live": len(latencies),
                "latency_p50_ms": round(pct(0.50), 1), "latency_p99_ms": round(pct(0.99), 1),
                "partitions": args.partitions, "detectors": env.get("ASCEP_JOB__DETECTORS", "settings"),
                "execution_mode": settings.job.execution_mode, "parallelism": settings.job.parallelism,
                "cores": os.cpu_count()}
    finally:
        if job is not None and job.poll() is None:
            os.killpg(job.pid, signals.SIGTERM)
            job.wait(30)
        broker.stop()
        store.stop()
