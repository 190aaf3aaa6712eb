"""The page and the JSON API. Thin: reading is in store.py, figures in stats.py."""
from __future__ import annotations

import asyncio
import functools
import threading
import time

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from redis.exceptions import RedisError

from core.cep.rules import ParseError, RuleError
from core.cep.trial import TrialLimit, run_rule
from core.clock import now_ms
from core.contracts.redis_keys import SIGNALS_KEPT
from core.health import assess
from dashboard import store
from dashboard.analytics import NoLake, lake_figures, page_context
from dashboard.live import relay_status
from dashboard.rule_trial import BadRequest, trial_input
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
        raise ValueError(f"query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}, "
                         f"got {raw[:40]!r}") from None
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
    """ok, degraded, or down (503), with the reasons and what each component last proved (core/health.py)."""
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
    return json_response({"status": verdict.status, "reasons": verdict.reasons, **verdict.components,
                          "redis": {"reachable": True, "ping_ms": round(ping_ms, 3)}, "counters": counters,
                          **stored, "ingest": ingest, "live_relay": relay_status(), "server_time": now},
                         503 if verdict.status == "down" else 200)


@needs_redis
async def rules(request: HttpRequest) -> HttpResponse:
    return json_response({"rules": await store.rule_stats()})


@csrf_exempt
@require_POST
async def rule_test(request: HttpRequest, rule_id: str) -> HttpResponse:
    """The signals the rule would produce on the posted ticks: run_rule, the same as `ascep rules test`,
    under the same limits (settings.rules): past one, 422 naming it.

    Exempt from CSRF checks: scripts call this JSON API, and the dashboard keeps no session, cookie or
    login a forged cross-site request could borrow; the call only computes, it changes nothing.
    """
    try:
        body = request.body
    except RequestDataTooBig:
        return error_response(413, f"the body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes: "
                                   "send fewer ticks per request")
    try:
        rule, ticks, lag = trial_input(body)
    except BadRequest as exc:
        return json_response({"error": str(exc), **exc.details}, 400)
    stop = threading.Event()
    try:
        # Off the event loop: a long tick list must not stall the live sockets. When the client disconnects,
        # Django cancels this view; `stop` then ends the trial at its next tick instead of running on for no one.
        result = await asyncio.to_thread(run_rule, rule, ticks, rule_id=rule_id, out_of_orderness_ms=lag,
                                         limits=settings.ASCEP_SETTINGS.rules, cancelled=stop.is_set)
    except TrialLimit as exc:
        return json_response({"error": str(exc), "limit": exc.limit, "value": exc.value}, 422)
    except ParseError as exc:
        return json_response({"error": f"bad rule: {exc}", "line": exc.line, "column": exc.column}, 400)
    except RuleError as exc:
        return json_response({"error": f"bad rule: {exc}", "where": exc.where}, 400)
    finally:
        stop.set()
    return json_response({"rule_id": rule_id, "ticks": len(ticks), **result})


def parse_gap_seconds(raw: str | None) -> int:
    """The `gap_seconds` query parameter (default 10, as `ascep analytics`), in ms."""
    if raw is None:
        return 10_000
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 10**9:
        raise ValueError(f"query parameter 'gap_seconds' must be a number of seconds > 0, got {raw[:40]!r}")
    return round(seconds * 1000)


async def _analytics_or_error(request: HttpRequest) -> dict | HttpResponse:
    try:
        gap_ms = parse_gap_seconds(request.GET.get("gap_seconds"))
    except ValueError as exc:
        return error_response(400, str(exc))
    try:
        # DuckDB over Parquet blocks; keep it off the event loop.
        return await asyncio.to_thread(lake_figures, gap_ms)
    except NoLake as exc:
        return error_response(404, str(exc))


@require_GET
async def analytics_api(request: HttpRequest) -> HttpResponse:
    figures = await _analytics_or_error(request)
    return figures if isinstance(figures, HttpResponse) else json_response(figures)


@require_GET
async def analytics_page(request: HttpRequest) -> HttpResponse:
    figures = await _analytics_or_error(request)
    if isinstance(figures, HttpResponse):
        message = orjson.loads(figures.content)["error"]
        return render(request, "dashboard/analytics.html", {"missing": message}, status=figures.status_code)
    return render(request, "dashboard/analytics.html", page_context(figures))


@require_GET
def config(request: HttpRequest) -> HttpResponse:
    return json_response(settings.ASCEP_SETTINGS.arbitrage.model_dump(mode="json"))


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(404, f"no such page: {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(500, "internal error; the dashboard's log on stderr has the details")
