"""Summary figures over stored signals: plain functions, no I/O, so they are tested directly."""
from __future__ import annotations

import bisect
from collections import Counter
from typing import Iterable

import numpy as np

PERCENTILES = (50, 90, 95, 99)
# Bucket edges in basis points: readable at a glance, and fine where most signals sit (a few bps).
PROFIT_EDGES_BPS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


def distribution(values: list[float]) -> dict:
    """min/mean/max and percentiles (linear interpolation); nulls when there is nothing to summarise."""
    if not values:
        return {"count": 0, "min": None, "mean": None, "max": None, **{f"p{p}": None for p in PERCENTILES}}
    array = np.asarray(values, dtype=float)
    cuts = np.percentile(array, PERCENTILES)
    return {"count": len(values), "min": float(array.min()), "mean": float(array.mean()), "max": float(array.max()),
            **{f"p{p}": float(c) for p, c in zip(PERCENTILES, cuts)}}


def histogram(values: Iterable[float], edges: tuple[float, ...] = PROFIT_EDGES_BPS) -> list[dict]:
    """Counts per [lo, hi) bucket; the first bucket catches everything below edges[0], the last is open-ended."""
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect.bisect_right(edges, value)] += 1
    bounds = [None, *edges, None]
    return [{"lo": bounds[i], "hi": bounds[i + 1], "count": n} for i, n in enumerate(counts)]


def signal_stats(signals: list[dict]) -> dict:
    """Counts by type/venue/symbol, the profit distribution and detection latency of `signals`.

    A signal counts once for each distinct venue and symbol among its legs. Detection latency is
    detected_at (wall clock) minus event_time (exchange clock), so it includes any clock skew.
    """
    by_type: Counter = Counter()
    by_venue: Counter = Counter()
    by_symbol: Counter = Counter()
    by_status: Counter = Counter()
    profits: list[float] = []
    latencies: list[float] = []
    for signal in signals:
        by_type[signal["type"]] += 1
        by_status[signal["status"]] += 1
        legs = signal.get("legs", [])
        by_venue.update({leg["venue"] for leg in legs})
        by_symbol.update({leg["symbol"] for leg in legs})
        profits.append(float(signal["profit_bps"]))
        if "detected_at" in signal:
            latencies.append(float(signal["detected_at"] - signal["event_time"]))
    return {
        "signals": len(signals),
        "by_type": dict(by_type.most_common()),
        "by_status": dict(by_status.most_common()),
        "by_venue": dict(by_venue.most_common()),
        "by_symbol": dict(by_symbol.most_common()),
        "profit_bps": {**distribution(profits), "histogram": histogram(profits)},
        "detection_latency_ms": distribution(latencies),
    }
