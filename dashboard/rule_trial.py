"""The body of POST /api/rules/<id>/test, checked: plain Python, no I/O, so every refusal is tested directly."""
from __future__ import annotations

from typing import Any

import orjson

from core.cep.trial import read_ticks
from core.contracts.tick import InvalidTick, Tick, tick_from_dict

SHAPE = 'the body must be a JSON object {"rule": ..., "ticks": [...]} or {"rule": ..., "ticks_jsonl": "..."}'


class BadRequest(ValueError):
    """A body the trial cannot use; `details` lists every problem found, not just the first."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


def trial_input(body: bytes) -> tuple[dict | str, list[Tick], int]:
    """(rule, ticks, out_of_orderness_ms), or BadRequest naming what is wrong.

    Any bad tick refuses the whole request, listing every bad one: signals computed on a silently
    thinned series answer a different question than the one asked. (`ascep rules test`, read by a
    person watching its stderr, skips them instead.)
    """
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(request, dict) or "rule" not in request:
        raise BadRequest(SHAPE)
    rule = request["rule"]
    if not isinstance(rule, (str, dict)):
        raise BadRequest(f"'rule' must be the rule text or its JSON form, got {type(rule).__name__}")
    lag = request.get("out_of_orderness_ms", 0)
    if type(lag) is not int or lag < 0:
        raise BadRequest(f"'out_of_orderness_ms' must be a whole number >= 0, got {lag!r}")
    if ("ticks" in request) == ("ticks_jsonl" in request):
        raise BadRequest(f"give exactly one of 'ticks' (a list of tick objects) and 'ticks_jsonl' (a string); {SHAPE}")
    ticks, bad = _listed_ticks(request["ticks"]) if "ticks" in request else _jsonl_ticks(request["ticks_jsonl"])
    if bad:
        where = "index" if "index" in bad[0] else "line"
        raise BadRequest(f"{len(bad)} bad tick(s); first at {where} {bad[0][where]}: {bad[0]['error']}", bad_ticks=bad)
    return rule, ticks, lag


def _listed_ticks(items: Any) -> tuple[list[Tick], list[dict[str, Any]]]:
    if not isinstance(items, list):
        raise BadRequest(f"'ticks' must be a list of tick objects, got {type(items).__name__}")
    ticks, bad = [], []
    for index, item in enumerate(items):
        try:
            ticks.append(tick_from_dict(item))
        except InvalidTick as exc:
            bad.append({"index": index, "error": str(exc)})
    return ticks, bad


def _jsonl_ticks(text: Any) -> tuple[list[Tick], list[dict[str, Any]]]:
    """The same reader as `ascep rules test`; problems name their line, counted from 1."""
    if not isinstance(text, str):
        raise BadRequest(f"'ticks_jsonl' must be a string, got {type(text).__name__}")
    return read_ticks(text.splitlines())
