"""What the control room watches: health of the whole pipeline, each component and each stage's latency, the
detection settings in force, who is asking, and a ping for load balancers."""
from __future__ import annotations

import time
from typing import Any, Literal

from django.conf import settings
from ninja import Field, Router, Schema
from redis.exceptions import RedisError

from core.clock import now_ms
from core.contracts.tick import iso_ms
from core.health import assess
from core.latency import WINDOW_S
from dashboard import latency as latencies
from dashboard import services as components
from dashboard import store
from dashboard.api.common import Document, json_response
from dashboard.live import relay_status
from dashboard.metrics import REDIS_ERRORS, route_of

router = Router(tags=["system"])


class LatencyStage(Schema):
    stage: Literal["exchange_ingest", "ingest_kafka", "kafka_job", "job", "job_redis", "redis_websocket"]
    start: str = Field(description="where the stage's latency starts")
    end: str = Field(description="where it ends")
    measures: str = Field(description="which two timestamps it compares (docs/observability.md)")
    count: int = Field(description="samples over the window, each weighed by the records it stands for")
    p50_ms: float | None = Field(description="median, ms; null without samples")
    p99_ms: float | None
    max_ms: float | None
    writers: list[str] = Field(description="the processes whose samples were merged (ascep:latency:<writer>)")


class LatencyReport(Schema):
    window_s: int
    server_time: int
    server_time_iso: str
    stages: list[LatencyStage] = Field(description="in pipeline order")


class Service(Schema):
    name: str = Field(description="broker, redis, job, lake, dashboard, or a connector's venue")
    kind: Literal["kafka", "redis", "job", "lake", "dashboard", "connector"]
    address: str | None = Field(description="where it is, as far as the dashboard knows (passwords redacted)")
    status: Literal["up", "down", "degraded", "unknown"]
    last_heartbeat: int | None = Field(description="epoch ms: a probed service's last answer to this dashboard, "
                                                   "the job's or a connector's latest report")
    last_heartbeat_iso: str | None
    detail: dict[str, Any]


class ServicesReport(Schema):
    server_time: int
    server_time_iso: str
    services: list[Service]


@router.get("/health", response={200: Document, 503: Document}, summary="ok, degraded or down, with the reasons")
async def health(request):
    """What each component last proved (core/health.py); 503 when down, so a load balancer can act on it."""
    started = time.perf_counter()
    try:
        await store.client().ping()
        ping_ms = (time.perf_counter() - started) * 1000
        counters = await store.counters()
        stored = await store.overview()
        ingest = await store.ingest_metrics()
        now = now_ms()
        facts = await store.health_facts(now, ingest, settings.ASCEP_SETTINGS.dashboard.checkpoints)
    except RedisError as exc:
        REDIS_ERRORS.labels(route_of(request)).inc()
        return json_response({"status": "unavailable", "reasons": [f"redis unavailable: {exc}"],
                              "redis": {"reachable": False, "error": str(exc)}, "live_relay": relay_status()}, 503)
    verdict = assess(facts, settings.ASCEP_SETTINGS.health)
    body = {"status": verdict.status, "reasons": verdict.reasons, **verdict.components,
            "redis": {"reachable": True, "ping_ms": round(ping_ms, 3)}, "counters": counters,
            **stored, "ingest": ingest, "live_relay": relay_status(), "server_time": now}
    return (503 if verdict.status == "down" else 200), body


@router.get("/config", response=Document, summary="The arbitrage settings in force")
def config(request):
    return settings.ASCEP_SETTINGS.arbitrage.model_dump(mode="json")


@router.get("/latency", response=LatencyReport, summary="p50 and p99 of each pipeline stage over the last minute")
async def latency(request):
    """exchange -> ingest -> Kafka -> job -> Redis -> WebSocket, from the histograms each writer keeps in Redis and
    this process's live relay (core/latency.py); a stage nothing measured has a count of 0."""
    now = now_ms()
    return {"window_s": WINDOW_S, "server_time": now, "server_time_iso": iso_ms(now),
            "stages": await latencies.report(now)}


@router.get("/services", response=ServicesReport, summary="Every component: address, status, last heartbeat")
async def services(request):
    """The broker, Redis, the job, the lake, this dashboard and each connector. Redis away does not fail it: Redis
    is then down, and what only Redis knows (the job, the connectors) unknown."""
    found = await components.entries()
    now = now_ms()
    return {"server_time": now, "server_time_iso": iso_ms(now), "services": found}


class Me(Schema):
    name: str = Field(description='the user\'s name; "" when not logged in')
    role: str = Field(description="editor, viewer or anonymous")
    via: str = Field(description="token, session or anonymous")


@router.get("/me", response=Me, summary="Who the request is from, and its role")
async def me(request):
    return {"name": request.auth.name, "role": request.auth.role, "via": request.auth.via}


# Open to all: a load balancer's health check, which has no credentials; /api/health may need them, and goes
# "down" with the job, when the dashboard is needed most.
@router.get("/ping", auth=None, response=Document, summary="The dashboard serves (no credentials needed)")
async def ping(request):
    return {"ok": True}
