"""What the control room watches: health of the whole pipeline, the detection settings in force, who is asking,
and a ping for load balancers."""
from __future__ import annotations

import time

from django.conf import settings
from ninja import Router, Schema
from pydantic import Field
from redis.exceptions import RedisError

from core.clock import now_ms
from core.health import assess
from dashboard import store
from dashboard.api.common import Document, json_response
from dashboard.live import relay_status

router = Router(tags=["system"])


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
