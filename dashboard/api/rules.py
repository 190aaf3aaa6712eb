"""The CEP rules over HTTP: the rules on the `rules` topic, written as `ascep rules` writes them (one code path:
clients/rules_topic.py), with what the running job has in force; checking rule text as it is typed; the built-in
templates; trying a rule on posted ticks (the same run_rule as `ascep rules test`) or over the lake's ticks (the
same backtest as `ascep rules backtest`).

A write answers with the version it wrote (rule_version of the record); the entry's `in_force` turns true once the
job's per-rule stats (`ascep:rules:stats`) report that version, or for a disabled rule once they report none.
Kafka calls block, so they run in a thread; Kafka away is a 503 naming it.

Writes (add, replace, enable/disable, delete) are WRITE: an editor's (dashboard/access.py), rate-limited as
rule_write. Checking, trying and backtesting write nothing, as `ascep rules test|backtest`, which anyone may run:
READ; a trial and a backtest spend seconds of CPU, so they are rate-limited (rule_test, backtest); checking is
not, the editor checks as you type.
"""
from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from ninja import Path, Router, Schema
from ninja.errors import HttpError
from pydantic import Field, model_validator

from clients.kafka import KafkaUnavailable
from clients.rules_topic import RulesTopic
from core.cep.rule_records import RuleRecord, record_of, record_value
from core.cep.rules import ParseError, Rule, RuleError, load, to_text
from core.cep.templates import TEMPLATES
from core.cep.trial import TrialCancelled, TrialLimit, run_rule
from core.clock import now_ms
from core.contracts.times import iso_ms, partial_match_document, signal_document, tick_document
from core.stack_file import resolve
from dashboard import lake_reads, store
from dashboard.access import WRITE
from dashboard.analytics import NoLake
from dashboard.api.common import REFUSALS, ApiError, Document, Error, error_response, json_response
from dashboard.ratelimit import limited
from dashboard.rule_trial import BadRequest, trial_input

router = Router(tags=["rules"])
T = TypeVar("T")

RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
RULE_ID_WORDS = "1 to 128 letters, digits and . _ : @ -, starting with a letter or digit"
RESERVED_IDS = frozenset({"check", "templates", "stats"})  # paths of their own under /api/rules/
DEFAULT_MINUTES = 15
MILLIS_PER_MINUTE = 60_000
END_OF_TIME_MS = 253_402_300_800_000  # 10000-01-01: times are ISO 8601 too, whose years have four digits


class RuleEntry(Schema):
    id: str
    text: str = Field(description="the rule in the rule language (docs/rules.md)")
    enabled: bool
    version: str = Field(description="rule_version of the record last written for this id")
    in_force_version: str | None = Field(description="the version the running job reports in force; null: none")
    in_force: bool = Field(description="the job runs what was last written: version == in_force_version, or for a "
                                       "disabled rule, the job runs none of it")
    stats: Document | None = Field(description="the job's counters for the rule (evaluations, matches, errors, ...)")


class RuleList(Schema):
    rules: list[RuleEntry]


class RuleSource(Schema):
    """The rule as `text` (the rule language) or as `rule` (its JSON form): exactly one."""

    text: str | None = Field(None, description="the rule's text", max_length=64 * 1024)
    rule: dict[str, Any] | None = Field(None, description="the rule's JSON form (docs/rules.md)")
    enabled: bool | None = Field(None, description="false: on the topic and listed, but not run by the job")


class NewRule(RuleSource):
    id: str = Field(pattern=RULE_ID, description=RULE_ID_WORDS)

    @model_validator(mode="after")
    def _one_source(self) -> NewRule:
        if (self.text is None) == (self.rule is None):
            raise ValueError("give exactly one of 'text' and 'rule'")
        return self


class ReplacedRule(RuleSource):
    """Without `text` and `rule`, the rule stays as it is and only `enabled` changes (404 if there is none)."""

    @model_validator(mode="after")
    def _at_most_one_source(self) -> ReplacedRule:
        if self.text is not None and self.rule is not None:
            raise ValueError("give at most one of 'text' and 'rule'")
        return self


class Deleted(Schema):
    id: str
    deleted: bool


class CheckRequest(Schema):
    text: str = Field(max_length=64 * 1024, description="rule text (or JSON form) as typed so far")


class Problem(Schema):
    message: str
    line: int | None = Field(description="from 1; null for a problem of the whole rule")
    column: int | None = Field(description="from 1; null for a problem of the whole rule")


class CheckResult(Schema):
    ok: bool
    errors: list[Problem] = Field(default_factory=list)


class TemplateParam(Schema):
    name: str
    default: str | float | list[str]


class Template(Schema):
    name: str
    doc: str
    params: list[TemplateParam]
    partitioned: bool = Field(description="takes `covers`: runs for every symbol they cover")
    text: str = Field(description="the rule text with the defaults")


class TemplateList(Schema):
    templates: list[Template]


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


class BacktestRequest(Schema):
    """The range is [from, to): `to` defaults to now, `from` to `minutes` before `to`."""

    text: str | None = Field(None, max_length=64 * 1024,
                             description="the rule to try; without it, the rule on the topic with this id")
    minutes: int | None = Field(None, ge=1, le=10**7, description=f"the last N minutes (default {DEFAULT_MINUTES})")
    start: int | None = Field(None, alias="from", ge=0, lt=END_OF_TIME_MS, description="epoch ms")
    end: int | None = Field(None, alias="to", ge=1, lt=END_OF_TIME_MS, description="epoch ms, not included")
    model_config = {"populate_by_name": True}


class BacktestResult(Schema):
    rule_id: str
    signals: list[Document] = Field(description="every signal state, as the job would have written them")
    ticks: int
    trades: int = Field(description="trades read: only for a rule that reads trades (vwap, volume, event.…)")
    late: int = Field(description="ticks behind the newest event time, not evaluated")
    timed_out: int = Field(description="partial matches that timed out")
    partitions: int
    lake: str
    start: int = Field(alias="from")
    end: int = Field(alias="to")
    from_iso: str
    to_iso: str


def _described_body(model: type[Schema]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _topic() -> RulesTopic:
    """Resolved per request, as the CLI resolves it: a stack started later is found without a restart."""
    ascep = settings.ASCEP_SETTINGS
    try:
        return RulesTopic(resolve(ascep, "kafka"), ascep.kafka_security)
    except LookupError as exc:
        raise KafkaUnavailable(str(exc)) from None


async def _kafka(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(call, *args, **kwargs)


async def _rules() -> dict[str, RuleRecord]:
    return (await _kafka(_topic().fold)).rules


async def _entries(records: dict[str, RuleRecord]) -> list[dict[str, Any]]:
    stats = {found.pop("rule_id"): found for found in await store.rule_stats()}
    return [_entry(rule_id, records[rule_id], stats.get(rule_id)) for rule_id in sorted(records)]


def _entry(rule_id: str, record: RuleRecord, stats: dict[str, Any] | None) -> dict[str, Any]:
    running = stats.get("version") if stats else None
    return {"id": rule_id, "text": to_text(record.rule), "enabled": record.enabled, "version": record.version,
            "in_force_version": running, "in_force": running == record.version if record.enabled else running is None,
            "stats": stats}


def _bad_rule(exc: RuleError) -> ApiError:
    """400 saying where the rule is wrong: line and column of its text, or the JSON path of its JSON form."""
    where = {"line": exc.line, "column": exc.column} if isinstance(exc, ParseError) else {"where": exc.where}
    return ApiError(400, f"bad rule: {exc}", **where)


def _rule_of(source: RuleSource) -> Rule:
    try:
        return load(source.text if source.text is not None else source.rule or {})
    except RuleError as exc:
        raise _bad_rule(exc) from None


async def _write(rule_id: str, rule: Rule, enabled: bool) -> dict[str, Any]:
    try:
        record = await _kafka(_topic().put, rule_id, rule, enabled)
    except RuleError as exc:  # a record too large for the job
        raise _bad_rule(exc) from None
    return (await _entries({rule_id: record}))[0]


@router.get("/rules", response={200: RuleList, 503: Error}, summary="The rules on the topic, and what the job runs")
async def rules(request):
    return {"rules": await _entries(await _rules())}


@router.post("/rules", response={201: RuleEntry, 400: Error, 409: Error, 503: Error, **REFUSALS}, auth=WRITE,
             summary="Add a rule")
@limited("rule_write")
async def add_rule(request, body: NewRule):
    """Writes it to the `rules` topic as `ascep rules add` does; 409 when a rule with that id exists."""
    if body.id in RESERVED_IDS:
        raise HttpError(400, f"body field 'id': {body.id!r} is a path of its own under /api/rules/; choose another")
    rule = _rule_of(body)
    if body.id in await _rules():
        raise HttpError(409, f"rule {body.id!r} exists: PUT /api/rules/{body.id} replaces it")
    return 201, await _write(body.id, rule, body.enabled is not False)


@router.post("/rules/check", response={200: CheckResult, 400: Error}, summary="Check rule text as it is typed")
def check_rule(request, body: CheckRequest):
    """Parse and check without writing anything: where the text is wrong, with line and column from 1."""
    try:
        record_of(record_value(load(body.text)))  # as the job will judge it: its size too
    except ParseError as exc:
        return {"ok": False, "errors": [{"message": exc.reason, "line": exc.line, "column": exc.column}]}
    except RuleError as exc:
        return {"ok": False, "errors": [{"message": str(exc), "line": None, "column": None}]}
    return {"ok": True, "errors": []}


@router.get("/rules/templates", response=TemplateList, summary="The built-in rule templates")
def templates(request):
    return {"templates": [_template(name, make) for name, make in TEMPLATES.items()]}


def _template(name: str, make: Callable[..., str]) -> dict[str, Any]:
    params = inspect.signature(make).parameters.values()
    return {"name": name, "doc": inspect.getdoc(make) or "", "text": make(), "partitioned": "covers" in
            {p.name for p in params},
            "params": [{"name": p.name, "default": list(p.default) if isinstance(p.default, tuple) else p.default}
                       for p in params]}


@router.get("/rules/stats", response={200: RuleStatsList, 503: Error},
            summary="The job's per-rule counters, for every rule it runs")
async def rule_counters(request):
    """Summed over the detection buckets; each with its rule_id and the version in force."""
    return {"rules": await store.rule_stats()}


@router.get("/rules/{rule_id}", response={200: RuleEntry, 404: Error, 503: Error}, summary="One rule")
async def rule(request, rule_id: str):
    found = (await _rules()).get(rule_id)
    if found is None:
        raise HttpError(404, f"no rule {rule_id!r}")
    return (await _entries({rule_id: found}))[0]


@router.put("/rules/{rule_id}", response={200: RuleEntry, 400: Error, 404: Error, 503: Error, **REFUSALS},
            auth=WRITE, summary="Add or replace a rule, or enable or disable it")
@limited("rule_write")
async def put_rule(request, body: ReplacedRule, rule_id: str = Path(..., pattern=RULE_ID, description=RULE_ID_WORDS)):
    """With `text` or `rule`: creates or replaces (enabled unless `enabled` is false). Without: the rule stays,
    `enabled` switches it (404 when there is no rule with that id)."""
    if rule_id in RESERVED_IDS:
        raise HttpError(400, f"path parameter 'rule_id': {rule_id!r} is a path of its own under /api/rules/")
    if body.text is None and body.rule is None:
        found = (await _rules()).get(rule_id)
        if found is None:
            raise HttpError(404, f"no rule {rule_id!r}: give its 'text' to create it")
        return await _write(rule_id, found.rule, found.enabled if body.enabled is None else body.enabled)
    return await _write(rule_id, _rule_of(body), body.enabled is not False)


@router.delete("/rules/{rule_id}", response={200: Deleted, 404: Error, 503: Error, **REFUSALS}, auth=WRITE,
               summary="Delete a rule")
@limited("rule_write")
async def delete_rule(request, rule_id: str):
    """A tombstone on the topic, as `ascep rules rm` writes."""
    if rule_id not in await _rules():
        raise HttpError(404, f"no rule {rule_id!r}")
    await _kafka(_topic().delete, rule_id)
    return {"id": rule_id, "deleted": True}


@router.post("/rules/{rule_id}/test", response={200: TrialResult, 400: Error, 413: Error, 422: Error, **REFUSALS},
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
    try:
        result = await _off_the_loop(run_rule, rule, ticks, rule_id=rule_id, out_of_orderness_ms=lag,
                                     limits=settings.ASCEP_SETTINGS.rules)
    except RuleError as exc:
        raise _bad_rule(exc) from None
    return json_response({"rule_id": rule_id, "ticks": len(ticks), **result,
                          "signals": [signal_document(s) for s in result["signals"]],
                          "late": [tick_document(t) for t in result["late"]],
                          "timed_out": [partial_match_document(p) for p in result["timed_out"]]})


@router.post("/rules/{rule_id}/backtest", response={200: BacktestResult, 400: Error, 404: Error, 422: Error,
                                                     503: Error, **REFUSALS}, by_alias=True,
             summary="The signals a rule would have given over the lake's ticks")
@limited("backtest")
async def rule_backtest(request, rule_id: str, body: BacktestRequest):
    """As `ascep rules backtest`: the lake's ticks of the range in the order the job reads them. The lake, not
    Redis, is the source: Redis keeps only the latest tick per venue and symbol. Bounded by settings.rules
    (trial_max_minutes of range, trial_time_budget_ms, trial_max_signals): past one, 400 or 422 naming it."""
    limits = settings.ASCEP_SETTINGS.rules
    end = body.end if body.end is not None else now_ms()
    start = body.start if body.start is not None else max(
        0, end - (body.minutes or DEFAULT_MINUTES) * MILLIS_PER_MINUTE)
    if start >= end:
        raise HttpError(400, f"empty range: 'to' {iso_ms(end)} is not after 'from' {iso_ms(start)}")
    if end - start > limits.trial_max_minutes * MILLIS_PER_MINUTE:
        raise HttpError(400, f"the range is {(end - start) / MILLIS_PER_MINUTE:,.1f} minutes: a backtest here reads "
                             f"at most rules.trial_max_minutes = {limits.trial_max_minutes:,} (`ascep rules backtest` "
                             f"reads any range)")
    if body.text is not None:
        try:
            rule = load(body.text)
        except RuleError as exc:
            raise _bad_rule(exc) from None
    else:
        found = (await _rules()).get(rule_id)
        if found is None:
            raise HttpError(404, f"no rule {rule_id!r} on the topic: give the rule's 'text' to try it")
        rule = found.rule
    try:
        result = await _off_the_loop(lake_reads.backtest, rule_id, rule, start, end,
                                     settings.ASCEP_SETTINGS.job.out_of_orderness_ms, limits)
    except NoLake as exc:
        raise HttpError(404, str(exc)) from None
    return {"rule_id": rule_id, **result, "signals": [signal_document(s) for s in result["signals"]],
            "from": start, "to": end, "from_iso": iso_ms(start), "to_iso": iso_ms(end)}


async def _off_the_loop(call: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A trial in a thread, so a long one does not stall the live sockets. When the client disconnects, Django
    cancels the view; `stop` then ends the trial at its next step instead of running on for no one. Past a
    limit: 422 naming it."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(call, *args, **kwargs, cancelled=stop.is_set)
    except TrialLimit as exc:
        raise ApiError(422, str(exc), limit=exc.limit, value=exc.value) from None
    except TrialCancelled:
        raise HttpError(499, "the client went away") from None
    finally:
        stop.set()

