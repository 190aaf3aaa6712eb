"""The page and the JSON API. Thin: reading is in store.py, figures in stats.py."""
from __future__ import annotations

import functools
import time

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError

from ascep.redis_keys import SIGNALS_KEPT
from dashboard import store
from dashboard.live import relay_status
from dashboard.stats import signal_stats

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def json_response(data, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def error_response(status: int, message: str) -> HttpResponse:
    return json_response({"error": message}, status)


def needs_redis(view):
    """Redis down is the one failure the dashboard expects: say so with a 503, not a stack trace."""
    @functools.wraps(view)
    async def wrapped(request, *args, **kwargs):
        try:
            return await view(request, *args, **kwargs)
        except RedisError as exc:
            return error_response(503, f"redis unavailable: {exc}")
    return require_GET(wrapped)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise ValueError(f"query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}, got {raw[:40]!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"query parameter 'limit' must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/index.html")


@needs_redis
async def signals(request: HttpRequest) -> HttpResponse:
    try:
        limit = parse_limit(request.GET.get("limit"))
    except ValueError as exc:
        return error_response(400, str(exc))
    return json_response({"signals": await store.latest_signals(limit)})


@needs_redis
async def signal_detail(request: HttpRequest, signal_id: str) -> HttpResponse:
    try:
        found = await store.one_signal(signal_id)
    except store.UnreadableDocument as exc:
        return error_response(500, str(exc))
    if found is None:
        return error_response(404, f"no signal with id {signal_id!r}")
    return json_response(found)


@needs_redis
async def prices(request: HttpRequest) -> HttpResponse:
    return json_response({"prices": await store.prices()})


@needs_redis
async def stats(request: HttpRequest) -> HttpResponse:
    """Over the newest SIGNALS_KEPT signals, so the cost stays bounded however long the job runs."""
    return json_response(signal_stats(await store.latest_signals(SIGNALS_KEPT)))


@require_GET
async def health(request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    try:
        await store.client().ping()
        ping_ms = (time.perf_counter() - started) * 1000
        counters = await store.counters()
        stored = await store.overview()
    except RedisError as exc:
        return json_response({"status": "unavailable", "redis": {"reachable": False, "error": str(exc)},
                              "live_relay": relay_status()}, 503)
    return json_response({"status": "ok", "redis": {"reachable": True, "ping_ms": round(ping_ms, 3)},
                          "counters": counters, **stored, "live_relay": relay_status(),
                          "server_time": int(time.time() * 1000)})


@require_GET
def config(request: HttpRequest) -> HttpResponse:
    return json_response(settings.ASCEP_SETTINGS.arbitrage.model_dump(mode="json"))


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(404, f"no such page: {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(500, "internal error; the dashboard's log on stderr has the details")
