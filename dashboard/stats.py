"""Summary figures over stored signals: plain functions, no I/O, so they are tested directly."""
from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

import numpy as np

PERCENTILES = (50, 90, 95, 99)
DECIMALS = 3  # of a mean or percentile, as lake/figures.py gives them: 36.646, not 36.64645839999999
# Bucket edges in basis points: readable at a glance, and fine where most signals sit (a few bps).
PROFIT_EDGES_BPS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


def distribution(values: list[float]) -> dict:
    """min/mean/max and percentiles (linear interpolation); nulls when there is nothing to summarise. min and
    max are values given; the others are computed, and rounded."""
    if not values:
        return {"count": 0, "min": None, "mean": None, "max": None, **{f"p{p}": None for p in PERCENTILES}}
    array = np.asarray(values, dtype=float)
    cuts = np.percentile(array, PERCENTILES)
    return {"count": len(values), "min": float(array.min()), "mean": round(float(array.mean()), DECIMALS),
            "max": float(array.max()), **{f"p{p}": round(float(c), DECIMALS) for p, c in zip(PERCENTILES, cuts)}}


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
    unreadable: list[str] = []
    for signal in signals:
        try:
            kind, status, profit = signal["type"], signal["status"], float(signal["profit_bps"])
            venues = {leg["venue"] for leg in signal.get("legs", [])}
            symbols = {leg["symbol"] for leg in signal.get("legs", [])}
            latency = signal["detected_at"] - signal["event_time"] if "detected_at" in signal else None
        except (KeyError, TypeError, ValueError) as exc:
            signal_id = signal.get("id", "?") if isinstance(signal, dict) else "?"
            unreadable.append(f"{signal_id}: {type(exc).__name__} {exc}")
            continue
        by_type[kind] += 1
        by_status[status] += 1
        by_venue.update(venues)
        by_symbol.update(symbols)
        profits.append(profit)
        if latency is not None:
            latencies.append(float(latency))
    return {
        "signals": len(profits),
        "by_type": dict(by_type.most_common()),
        "by_status": dict(by_status.most_common()),
        "by_venue": dict(by_venue.most_common()),
        "by_symbol": dict(by_symbol.most_common()),
        "profit_bps": {**distribution(profits), "histogram": histogram(profits)},
        "detection_latency_ms": distribution(latencies),
        # Left out rather than failing the whole summary; the first few say which and why.
        "unreadable": {"count": len(unreadable), "examples": unreadable[:5]},
    }
