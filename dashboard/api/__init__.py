"""The dashboard's JSON API on django-ninja: typed views from which the OpenAPI 3 schema (/api/openapi.json)
and its browsable page (/docs) are generated, so the description can never drift from the code.

Every error is {"error": message, ...details}: a 4xx names what was wrong with the request, a 503 which
service is away (Redis, or Kafka for the rules). One router per area: signals.py (signals, prices, stats),
rules.py, system.py (health, config, services, latency, who you are), analytics.py.

Every route is READ (dashboard/access.py) unless it says `auth=WRITE` (or `auth=None`: /api/ping only).
"""
from __future__ import annotations

from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from redis.exceptions import RedisError

from clients.kafka import KafkaUnavailable
from dashboard.access import READ
from dashboard.api import analytics, rules, signals, system
from dashboard.api.common import ApiError, OrjsonRenderer, error_response, validation_message
from dashboard.metrics import REDIS_ERRORS, route_of
from dashboard.ratelimit import RateLimited

api = NinjaAPI(title="ASCEP dashboard API", version="1", renderer=OrjsonRenderer(), urls_namespace="api", auth=READ,
               description="Signals, prices, rules and health of an ASCEP deployment. Errors are "
                           '`{"error": message}`; times are epoch milliseconds with an ISO 8601 twin (`*_iso`). '
                           "Send an API token (`ascep users token create`) as `Authorization: Bearer <token>`, "
                           "or log in at /accounts/login; rule writes need the editor role.")
api.add_router("", signals.router)
api.add_router("", rules.router)
api.add_router("", system.router)
api.add_router("", analytics.router)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    return error_response(400, validation_message(exc.errors), problems=exc.errors)


@api.exception_handler(RedisError)
def _redis_away(request, exc: RedisError):
    """Redis down is the one failure the dashboard expects: a 503 naming it, not a stack trace."""
    REDIS_ERRORS.labels(route_of(request)).inc()
    return error_response(503, f"redis unavailable: {exc}")


@api.exception_handler(KafkaUnavailable)
def _kafka_away(request, exc: KafkaUnavailable):
    """The rules live on the Kafka topic: without it they can be neither read nor written."""
    return error_response(503, f"kafka unavailable: {exc}")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, ValueError) and exc.status_code == 400:  # ninja's "Cannot parse request body"
        return error_response(400, f"the body is not JSON: {exc.__cause__}")  # where the decoder stopped, and why
    return error_response(exc.status_code, str(exc), **(exc.details if isinstance(exc, ApiError) else {}))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc: AuthenticationError):
    response = error_response(401, "log in first (/accounts/login), or send an API token: "
                                   "Authorization: Bearer <token>")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    response = error_response(429, str(exc), limit=exc.name)
    response["Retry-After"] = str(exc.retry_after_s)
    return response
