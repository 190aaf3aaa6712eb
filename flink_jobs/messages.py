"""The one message every operator hands to the sinks."""
from __future__ import annotations

from typing import Any, NamedTuple

from core.contracts.tick import Tick


class SinkBatch(NamedTuple):
    """What every operator hands to the sinks: one element per batch, not per tick."""

    signals: list[dict]
    prices: list[Tick] = []
    ticks: int = 0
    deadletters: int = 0
    rule_stats: dict[str, Any] | None = None  # per rule: evaluations, matches, errors, time spent
    counters: dict[str, int] | None = None  # other running counts, e.g. late ticks
    rules_taken: dict[str, bytes | None] | None = None  # rules taken in force (JSON as published) or deleted (None)
    rule_stats_part: int = 0  # the key whose engine counted rule_stats: each bucket counts its own share
    read_at: float | None = None  # epoch ms the tick reader polled the records this batch comes of (core/latency.py)
