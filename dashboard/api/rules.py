"""The CEP rules: what the job runs, and trying a rule on ticks (the same run_rule as `ascep rules test`)."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from ninja import Router, Schema
from pydantic import Field

from core.cep.rules import ParseError, RuleError
from core.cep.trial import TrialLimit, run_rule
from dashboard import store
from dashboard.api.common import Document, Error, error_response, json_response
from dashboard.ratelimit import limited
from dashboard.rule_trial import BadRequest, trial_input

router = Router(tags=["rules"])


class RuleStatsList(Schema):
    rules: list[Document]


class TrialRequest(Schema):
    """Give exactly one of `ticks` and `ticks_jsonl`. Checked by dashboard/rule_trial.py, which names every bad
    tick rather than the first, so the body is read by it, and this schema only describes it."""

    rule: str | dict[str, Any] = Field(description="the rule's text, or its JSON form (docs/rules.md)")
    ticks: list[dict[str, Any]] | None = Field(None, description="tick objects (docs/ticks.md)")
    ticks_jsonl: str | None = Field(None, description="ticks, one JSON object a line")
    out_of_orderness_ms: int = Field(0, ge=0)


class TrialResult(Schema):
    rule_id: str
    ticks: int
    signals: list[Document]
    late: list[Document]
    timed_out: list[Document]


def _described_body(model: type[Schema]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.get("/rules", response={200: RuleStatsList, 503: Error}, summary="The rules' counters in the running job")
async def rules(request):
    return {"rules": await store.rule_stats()}


# Compute only, nothing written: READ, like `ascep rules test` that anyone may run; rate-limited, since a trial
# may spend seconds of CPU.
@router.post("/rules/{rule_id}/test", response={200: TrialResult, 400: Error, 413: Error, 422: Error, 429: Error},
             openapi_extra=_described_body(TrialRequest), summary="The signals a rule would give on posted ticks")
@limited("rule_test")
async def rule_test(request, rule_id: str):
    """run_rule, as `ascep rules test`, under the same limits (settings.rules): past one, 422 naming it."""
    try:
        body = request.body
    except RequestDataTooBig:
        return error_response(413, f"the body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes: "
                                   "send fewer ticks per request")
    try:
        rule, ticks, lag = trial_input(body)
    except BadRequest as exc:
        return error_response(400, str(exc), **exc.details)
    stop = threading.Event()
    try:
        # Off the event loop: a long tick list must not stall the live sockets. When the client disconnects,
        # Django cancels this view; `stop` then ends the trial at its next tick instead of running on for no one.
        result = await asyncio.to_thread(run_rule, rule, ticks, rule_id=rule_id, out_of_orderness_ms=lag,
                                         limits=settings.ASCEP_SETTINGS.rules, cancelled=stop.is_set)
    except TrialLimit as exc:
        return error_response(422, str(exc), limit=exc.limit, value=exc.value)
    except ParseError as exc:
        return error_response(400, f"bad rule: {exc}", line=exc.line, column=exc.column)
    except RuleError as exc:
        return error_response(400, f"bad rule: {exc}", where=exc.where)
    finally:
        stop.set()
    return json_response({"rule_id": rule_id, "ticks": len(ticks), **result})
