"""What every router shares: the orjson renderer, the error shape, and the schemas used in several places."""
from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from ninja import Schema
from ninja.errors import HttpError
from ninja.renderers import BaseRenderer
from pydantic import ConfigDict


class OrjsonRenderer(BaseRenderer):
    """orjson: the signal lists are thousands of floats, which the standard json module renders slowly."""

    media_type = "application/json"

    def render(self, request, data, *, response_status):
        return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


class ApiError(HttpError):
    """An error answer with details beside its message: {"error": message, **details}."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(status, message)
        self.details = details


class Error(Schema):
    error: str
    model_config = ConfigDict(extra="allow")


# What dashboard/access.py and dashboard/ratelimit.py answer before a view runs (no credentials, a viewer or a
# failed CSRF check, over a rate limit), declared on the routes that write or are rate-limited.
REFUSALS = {401: Error, 403: Error, 429: Error}


# A stored document (signal, tick) passed through as the job wrote it; its fields are in docs/signals.md and
# docs/ticks.md. (A Schema with extra="allow" would drop the fields it does not name.)
Document = dict[str, Any]


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def error_response(status: int, message: str, **details: Any) -> HttpResponse:
    return json_response({"error": message, **details}, status)


def validation_message(errors: list[dict[str, Any]]) -> str:
    """The first problem in words, `query parameter 'limit': Input should be a valid integer`, then how many more."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where, *path = [str(part) for part in first.get("loc", ())] or ["request"]
    if where == "body":
        path = path[1:]  # ninja puts the view's parameter name first: ("body", "body", "id")
    kind = {"query": "query parameter", "path": "path parameter", "body": "body field"}.get(where, where)
    name = ".".join(path) or "(whole)"
    more = f"; {len(errors) - 1} more problem(s)" if len(errors) > 1 else ""
    return f"{kind} '{name}': {first.get('msg', 'invalid')}{more}"
