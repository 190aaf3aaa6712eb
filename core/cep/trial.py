"""Try a rule on recorded ticks without a running job: `ascep rules test` and the dashboard's
POST /api/rules/<id>/test both call run_rule(), under the job's caps on state plus a time budget and
a cap on signals (settings.rules), so a trial ends however heavy the rule."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from core.contracts.signal import Signal
from core.contracts.tick import InvalidTick, Tick, tick_from_dict
from core.settings import RuleSettings

from .engine import RuleEngine
from .rules import Rule


class TrialLimit(Exception):
    """A trial stopped at one of its limits: `limit` is the setting's name in settings.rules, `value` its value."""

    def __init__(self, limit: str, value: int, what: str, ticks_done: int) -> None:
        super().__init__(f"the trial {what} (rules.{limit} = {value:,}) after {ticks_done:,} ticks")
        self.limit, self.value = limit, value


class TrialCancelled(Exception):
    """The caller gave up on the trial (the API's client went away)."""


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
             out_of_orderness_ms: int = 0, limits: RuleSettings | None = None,
             cancelled: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """The signals `rule` would produce on `ticks`, in order, plus what did not count and why.

    Processing time is taken from the ticks themselves so the result is the same on every run.
    Raises RuleError for a bad rule, InvalidTick for a bad tick dict, TrialLimit past a limit of
    `limits` (settings.rules; its defaults when None), and TrialCancelled once `cancelled()` is true,
    which is asked between ticks.
    """
    limits = limits or RuleSettings()
    deadline = time.monotonic() + limits.trial_time_budget_ms / 1000
    engine = RuleEngine(out_of_orderness_ms=out_of_orderness_ms, limits=limits)
    engine.apply(rule_id, rule)
    signals: list[Signal] = []
    for done, item in enumerate(ticks):
        if cancelled():
            raise TrialCancelled
        if time.monotonic() > deadline:
            raise TrialLimit("trial_time_budget_ms", limits.trial_time_budget_ms, "ran out of time", done)
        tick = item if isinstance(item, Tick) else tick_from_dict(item)
        signals.extend(engine.on_tick(tick, now_ms=tick.ts))
        if len(signals) > limits.trial_max_signals:
            raise TrialLimit("trial_max_signals", limits.trial_max_signals, "made too many signals", done + 1)
    signals.extend(engine.finish())
    return {"signals": signals, "late": [t.to_json_dict() for t in engine.take_late()],
            "timed_out": engine.take_timeouts(), "stats": engine.stats()[rule_id]}
