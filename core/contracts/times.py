"""Times as people read them: an ISO 8601 UTC string beside each epoch-ms field of what the API and analytics give.

Epoch milliseconds stay the contract (exact, sortable, what Kafka, Redis and the lake hold); `<field>_iso`
is added only where a document leaves for a person or a script, and each kind of document names its
time fields once, here, so the dashboard's store, /api/health and the analytics agree.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

_EPOCH = datetime(1970, 1, 1)
ISO_SUFFIX = "_iso"
SIGNAL_TIMES = ("event_time", "updated_at", "closed_at", "detected_at")
TICK_TIMES = ("ts",)
PARTIAL_MATCH_TIMES = ("start_ts", "last_ts")  # a rule's timed-out partial match


def iso_ms(ms: int) -> str:
    """`2025-11-21T04:40:00.123Z`: exact to the millisecond (no float seconds on the way)."""
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """A signal's times, and a page of them, fall in a few seconds: /api/stats reads 10,000 signals."""
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()


def iso_or_none(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def with_iso(doc: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `doc` with `<field>_iso` right after each of `fields` it holds. A stored document is read as it
    is: a time that is null, or no epoch ms (a string, out of range), gets a null string rather than an error."""
    out: dict[str, Any] = {}
    for name, value in doc.items():
        out[name] = value
        if name in fields:
            out[name + ISO_SUFFIX] = _iso_if_time(value)
    return out


def _iso_if_time(value: Any) -> str | None:
    if type(value) is not int:
        return None
    try:
        return iso_ms(value)
    except OverflowError:
        return None


def tick_document(tick: Mapping[str, Any]) -> dict[str, Any]:
    return with_iso(tick, TICK_TIMES)


def signal_document(signal: Mapping[str, Any]) -> dict[str, Any]:
    """A signal with its four times in ISO, and the ticks of a rule match (`events`) with theirs."""
    return _with_event_times(with_iso(signal, SIGNAL_TIMES))


def partial_match_document(partial: Mapping[str, Any]) -> dict[str, Any]:
    """A timed-out partial match with its first and last times in ISO, and its events' ticks with theirs."""
    return _with_event_times(with_iso(partial, PARTIAL_MATCH_TIMES))


def _with_event_times(out: dict[str, Any]) -> dict[str, Any]:
    events = out.get("events")
    if isinstance(events, dict):
        out["events"] = {stage: [tick_document(t) if isinstance(t, dict) else t for t in ticks]
                         if isinstance(ticks, list) else ticks for stage, ticks in events.items()}
    return out
