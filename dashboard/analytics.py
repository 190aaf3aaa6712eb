"""The `ascep analytics` figures for the page and API: the same lake_report(), so both always agree."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from lake.outcomes import NoSignals, outcomes_report
from lake.reader import lake_report
from lake.storage import Lake, configured_lake

BAR_WIDTH = 160  # px of the longest bar in a histogram row


class NoLake(LookupError):
    """No lake address is configured, nothing was written there yet, or it holds nothing of the range asked for;
    the message says which."""


def dashboard_lake() -> Lake:
    """Resolved per request: a lake that `ascep up` or the job creates later shows up without a restart."""
    try:
        return configured_lake(settings.ASCEP_SETTINGS)
    except LookupError as exc:
        raise NoLake(f"no lake configured: {exc}") from None


def lake_figures(gap_ms: int) -> dict[str, Any]:
    lake = dashboard_lake()
    try:
        return lake_report(lake, gap_ms)
    except FileNotFoundError as exc:
        raise NoLake(str(exc)) from None


def lake_outcomes(start_ms: int, end_ms: int, delays: tuple[int, ...], horizon_ms: int) -> dict[str, Any]:
    """`ascep analytics outcomes` of the range, with the job's arbitrage settings (fees, minimum profits)."""
    lake = dashboard_lake()
    try:
        return outcomes_report(lake, settings.ASCEP_SETTINGS.arbitrage, start_ms, end_ms, delays, horizon_ms)
    except (FileNotFoundError, NoSignals) as exc:
        raise NoLake(str(exc)) from None


def with_bars(rows: list[dict[str, Any]], value: str) -> list[dict[str, Any]]:
    """Each row plus `bar`, its `value` scaled to BAR_WIDTH against the largest, for an inline SVG bar."""
    largest = max((row[value] for row in rows), default=0)
    return [{**row, "bar": round(BAR_WIDTH * row[value] / largest, 1) if largest else 0} for row in rows]


def page_context(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures shaped for the template: summary rows as lists, histograms with their bar widths."""
    summary_keys = ("count", "p50", "p90", "p99", "max", "mean")
    return {
        "figures": figures,
        "summary_keys": summary_keys,
        "summaries": [(title, [figures[name].get(k) for k in summary_keys]) for title, name in (
            ("net profit (bps)", "profit_bps"), ("opportunity duration (ms)", "duration_ms"),
            ("detection latency (ms)", "detection_latency_ms"))],
        "profit_histogram": with_bars(figures["profit_bps"]["histogram"], "signals"),
        "signals_by_type_hour": with_bars([r for r in figures["signals_by_hour"] if r["dimension"] == "type"],
                                          "signals"),
        "ticks_by_venue": with_bars(figures["ticks_by_venue"], "ticks"),
        "bar_width": BAR_WIDTH,
    }
