"""What /api/services asks for itself: the broker, Redis and the lake, each probed off the event loop with a short
timeout, and what the job and the connectors last reported; core/services.py makes the entries.

Addresses are resolved per request (settings, then the running `ascep up`), so a stack started after the dashboard
shows up without a restart. Probing is cheap: one metadata request to the broker (its client kept per address), a
PING and INFO to Redis, one listing of the lake's manifests.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psutil
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from django.conf import settings
from redis.exceptions import RedisError

from clients.kafka import kafka_config
from core import services
from core.clock import now_ms
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from core.health import assess
from core.services import Probe
from core.stack_file import redacted, resolve
from dashboard import store
from dashboard.live import relay_status
from dashboard.metrics import websocket_clients
from lake.objects import newest_write
from lake.storage import configured_lake

PROBE_TIMEOUT_S = 2.0
STARTED_AT = int(psutil.Process().create_time() * 1000)  # this process's start, for its uptime
OUR_TOPICS = (TICKS_TOPIC, TRADES_TOPIC, SIGNALS_TOPIC, DEADLETTER_TOPIC, RULES_TOPIC)
_answered: dict[str, int] = {}  # kind -> epoch ms it last answered this process
_admins: dict[str, AdminClient] = {}


def _answer(kind: str) -> int:
    _answered[kind] = now = now_ms()
    return now


def _metadata(address: str) -> dict[str, Any]:
    admin = _admins.get(address)
    if admin is None:  # log_level 0: while the broker is away librdkafka would log each retry; the probe says it
        admin = _admins[address] = AdminClient(kafka_config(address, settings.ASCEP_SETTINGS.kafka_security,
                                                            {"log_level": 0}))
    metadata = admin.list_topics(timeout=PROBE_TIMEOUT_S)
    return {"brokers": sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values()),
            "controller_id": metadata.controller_id,
            "topics": {name: len(metadata.topics[name].partitions) for name in OUR_TOPICS if name in metadata.topics}}


async def broker() -> Probe:
    try:
        address = resolve(settings.ASCEP_SETTINGS, "kafka")
    except LookupError as exc:
        return Probe(None, None, error=str(exc))
    try:
        detail = await asyncio.wait_for(asyncio.to_thread(_metadata, address), PROBE_TIMEOUT_S + 1)
    except KafkaException as exc:
        return Probe(address, False, _answered.get("kafka"), error=exc.args[0].str())
    except TimeoutError:
        return Probe(address, False, _answered.get("kafka"), error=f"no metadata within {PROBE_TIMEOUT_S + 1:g} s")
    return Probe(address, True, _answer("kafka"), detail)


async def redis() -> Probe:
    address = redacted(settings.REDIS_URL)
    started = time.perf_counter()
    try:
        await store.client().ping()
        ping_ms = round((time.perf_counter() - started) * 1000, 3)
        info = await store.client().info("server")
    except RedisError as exc:
        return Probe(address, False, _answered.get("redis"), error=f"redis unavailable: {exc}")
    return Probe(address, True, _answer("redis"), {"ping_ms": ping_ms, "version": info.get("redis_version"),
                                                   "uptime_s": info.get("uptime_in_seconds")})


async def lake() -> tuple[Probe, tuple[str, int] | None]:
    """The lake's address and its newest write; not reachable when the listing failed or took too long."""
    try:
        address = resolve(settings.ASCEP_SETTINGS, "lake")
        where = configured_lake(settings.ASCEP_SETTINGS)
    except LookupError as exc:
        return Probe(None, None, error=str(exc)), None
    except ValueError as exc:  # an address open_lake refuses
        return Probe(None, None, error=str(exc)), None
    try:
        newest = await asyncio.wait_for(asyncio.to_thread(newest_write, where), PROBE_TIMEOUT_S + 1)
    except OSError as exc:
        return Probe(address, False, _answered.get("lake"), error=f"lake unavailable: {exc}"), None
    except TimeoutError:
        return Probe(address, False, _answered.get("lake"), error=f"no listing within {PROBE_TIMEOUT_S + 1:g} s"), None
    return Probe(address, True, _answer("lake")), newest


def this_dashboard(now: int) -> dict[str, Any]:
    own = settings.ASCEP_SETTINGS.dashboard
    return services.dashboard(f"http://{own.host}:{own.port}", os.getpid(), STARTED_AT, now, relay_status(),
                              websocket_clients())


async def entries() -> list[dict[str, Any]]:
    """Every component: the broker, Redis, the job, the lake, this dashboard, then each connector by venue."""
    (kafka, cache, (lake_probe, newest)) = await asyncio.gather(broker(), redis(), lake())
    job_address = settings.ASCEP_SETTINGS.flink
    now = now_ms()
    head = [services.probed("broker", "kafka", kafka), services.probed("redis", "redis", cache)]
    if not cache.reachable:  # what the job and the connectors reported is in Redis
        why = cache.error or "redis unavailable"
        lake_entry = services.probed("lake", "lake", lake_probe)
        return [*head, services.unreported("job", "job", job_address, why), lake_entry, this_dashboard(now)]
    ingest = await store.ingest_metrics()
    facts = await store.health_facts(now, ingest, settings.ASCEP_SETTINGS.dashboard.checkpoints)
    verdict = assess(facts, settings.ASCEP_SETTINGS.health)
    return [*head, services.job(facts, verdict, job_address), services.lake(facts, verdict, lake_probe, newest),
            this_dashboard(now), *services.connectors(facts, verdict, ingest)]
