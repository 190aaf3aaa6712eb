"""What the rules editor and the signal page read from the lake: a rule backtested over a time range, and the
quotes around a signal. Both block (Parquet reads), so the API runs them in a thread; both are bounded.

The lake is the source of past ticks: Redis holds only the latest tick per venue and symbol
(`ascep:price:<venue>:<symbol>`), so "the last N minutes of ticks" can only come from the lake.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from core.cep.rules import Rule
from core.cep.trial import TrialCancelled, TrialLimit
from core.contracts.tick import Tick
from core.settings import RuleSettings
from dashboard.analytics import NoLake, dashboard_lake
from lake.backtest import RangeBacktest, tick_streams


def backtest(rule_id: str, rule: Rule, start_ms: int, end_ms: int, bound_ms: int, limits: RuleSettings,
             cancelled: Callable[[], bool]) -> dict[str, Any]:
    """The signal states the rule gives over the lake's ticks of [start_ms, end_ms), as the job would have given
    them (lake.backtest.RangeBacktest), under the trial limits of `limits`: TrialLimit past one, TrialCancelled
    once `cancelled()`; NoLake when nothing was written to the lake."""
    lake = dashboard_lake()
    run = RangeBacktest(lake, rule_id, rule, start_ms, end_ms, None, bound_ms, limits)
    deadline = time.monotonic() + limits.trial_time_budget_ms / 1000
    signals: list[dict[str, Any]] = []
    try:
        for found in run.run():
            signals.extend(item.signal for item in found)
            if cancelled():
                raise TrialCancelled
            if len(signals) > limits.trial_max_signals:
                raise TrialLimit("trial_max_signals", limits.trial_max_signals, "made too many signals",
                                 run.ticks_read)
            if time.monotonic() > deadline:
                raise TrialLimit("trial_time_budget_ms", limits.trial_time_budget_ms, "ran out of time",
                                 run.ticks_read)
    except FileNotFoundError as exc:
        raise NoLake(str(exc)) from None
    return {"signals": signals, "ticks": run.ticks, "trades": run.trades, "late": run.late, "timed_out": run.timeouts,
            "partitions": run.partitions, "lake": lake.uri}


def quotes(markets: Collection[tuple[str, str]], start_ms: int, end_ms: int, limit: int) -> tuple[list[Tick], bool]:
    """The lake's ticks of `markets` (venue, symbol) in [start_ms, end_ms), by event time, at most `limit` of them
    (about the earliest: a partition is read in offset order, and no further than `limit` ticks past the range's
    start): (ticks, whether some were left out). NoLake when nothing was written to the lake."""
    wanted = set(markets)
    found: list[Tick] = []
    try:
        for _, streams in tick_streams(dashboard_lake(), start_ms, end_ms, {symbol for _, symbol in wanted}):
            for chunks in streams.values():
                taken = 0
                for chunk in chunks:
                    mine = [tick for tick in chunk.ticks if (tick.venue, tick.symbol) in wanted]
                    found.extend(mine)
                    taken += len(mine)
                    if taken > limit:
                        break
    except FileNotFoundError as exc:
        raise NoLake(str(exc)) from None
    found.sort(key=lambda tick: (tick.ts, tick.venue, tick.symbol))
    return found[:limit], len(found) > limit
