"""Try a rule on recorded ticks without a running job: `ascep rules test` and the dashboard's
POST /api/rules/<id>/test both call run_rule()."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from core.contracts.tick import InvalidTick, Tick, tick_from_dict

from .engine import RuleEngine
from .rules import Rule


def read_ticks(lines: Iterable[str | bytes]) -> tuple[list[Tick], list[dict[str, Any]]]:
    """JSONL of normalized ticks -> (ticks, problems); each problem names its line and what was wrong."""
    ticks, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ticks.append(tick_from_dict(json.loads(line)))
        except (ValueError, InvalidTick) as exc:
            problems.append({"line": number, "error": str(exc)})
    return ticks, problems


def run_rule(rule: Rule | dict | str, ticks: Iterable[Tick | dict], rule_id: str = "test",
             out_of_orderness_ms: int = 0) -> dict[str, Any]:
    """The signals `rule` would produce on `ticks`, in order, plus what did not count and why.

    Processing time is taken from the ticks themselves so the result is the same on every run.
    Raises RuleError for a bad rule and InvalidTick for a bad tick dict.
    """
    engine = RuleEngine(out_of_orderness_ms=out_of_orderness_ms)
    engine.apply(rule_id, rule)
    signals = []
    for item in ticks:
        tick = item if isinstance(item, Tick) else tick_from_dict(item)
        signals.extend(engine.on_tick(tick, now_ms=tick.ts))
    signals.extend(engine.finish())
    return {"signals": signals, "late": [t.to_json_dict() for t in engine.take_late()],
            "timed_out": engine.take_timeouts(), "stats": engine.stats()[rule_id]}
