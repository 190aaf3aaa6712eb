"""/metrics: the dashboard's own figures in the Prometheus text format (prometheus_client's default registry).

Requests by route and status with their latency (RequestMetrics, a Django middleware), open WebSocket clients
(count_websockets, around the ASGI WebSocket app), the live relay's counters (read from relay_status() at each
scrape) and the Redis errors the API met. Each process has its own registry: with several dashboard processes,
scrape each one (docs/observability.md). /metrics is a plain Django view, outside the OpenAPI schema.
"""
from __future__ import annotations

import time
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dashboard.live import relay_status

REQUESTS = Counter("ascep_dashboard_requests", "HTTP requests answered, by route pattern and status",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("ascep_dashboard_request_seconds", "Time to answer an HTTP request, by route pattern",
                            ["method", "route"])
WEBSOCKETS = Gauge("ascep_dashboard_websocket_clients", "WebSocket connections accepted and still open")
_open = {"websockets": 0}  # read at scrape time, and by /api/services
WEBSOCKETS.set_function(lambda: _open["websockets"])
REDIS_ERRORS = Counter("ascep_dashboard_redis_errors", "Redis errors that ended a request, by route pattern",
                       ["route"])
UNMATCHED = "(unmatched)"  # a path no route matches: one label for all, so scanners cannot grow the series


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else UNMATCHED


class RequestMetrics:
    """Counts and times every request Django answers (static files are served before Django, and not counted)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("RequestMetrics runs in the ASGI server only")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = await self.get_response(request)
        route = route_of(request)
        REQUEST_SECONDS.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response


def count_websockets(app):
    """The ASGI WebSocket `app`, counting each connection from its accept to its end."""
    async def counted(scope, receive, send) -> None:
        accepted = False

        async def sending(message) -> None:
            nonlocal accepted
            await send(message)
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                _open["websockets"] += 1

        try:
            await app(scope, receive, sending)
        finally:
            if accepted:
                _open["websockets"] -= 1
    return counted


def websocket_clients() -> int:
    return _open["websockets"]


class RelayCollector(Collector):
    """The live relay's status at scrape time: its flags as gauges, its counts as counters (relayed, skipped, and
    any dropped count it keeps), anything else numeric as a gauge."""

    COUNTED = ("relayed", "skipped")

    def collect(self):
        status: dict[str, Any] = relay_status()
        for name, value in sorted(status.items()):
            metric = f"ascep_dashboard_live_relay_{name}"
            if isinstance(value, bool):
                yield GaugeMetricFamily(metric, f"live relay: {name.replace('_', ' ')} (1 yes, 0 no)", value=int(value))
            elif isinstance(value, (int, float)):
                if name in self.COUNTED or "dropped" in name:
                    yield CounterMetricFamily(metric, f"live relay: messages {name.replace('_', ' ')}", value=value)
                else:
                    yield GaugeMetricFamily(metric, f"live relay: {name.replace('_', ' ')}", value=value)


REGISTRY.register(RelayCollector())


async def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
