"""The lake's figures and the signals' outcomes, as `ascep analytics` prints them (dashboard/analytics.py)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field, field_validator

from core.outcomes import DEFAULT_DELAYS_MS, DEFAULT_HORIZON_MS, parse_delays
from dashboard.analytics import NoLake, lake_figures, lake_outcomes
from dashboard.api.common import Document, Error

router = Router(tags=["analytics"])
OUTCOMES_MAX_HOURS = 24  # a request holds a thread until its range is read; `ascep analytics outcomes` takes any


class Gap(Schema):
    gap_seconds: float = Field(10.0, gt=0, lt=10**9, description="no tick from a venue for this long counts as a gap")


async def figures_or_404(gap_seconds: float) -> dict:
    try:
        # DuckDB over Parquet blocks; keep it off the event loop.
        return await asyncio.to_thread(lake_figures, round(gap_seconds * 1000))
    except NoLake as exc:
        raise HttpError(404, str(exc)) from None


@router.get("/analytics", response={200: Document, 400: Error, 404: Error}, summary="Figures over the lake")
async def analytics(request, query: Query[Gap]):
    return await figures_or_404(query.gap_seconds)


class OutcomeRange(Schema):
    start: datetime = Field(..., description="signals that opened at or after this: ISO 8601 (UTC if no zone) or "
                                             "epoch milliseconds")
    end: datetime = Field(..., description="up to, not including, this")
    delays: str = Field(",".join(map(str, DEFAULT_DELAYS_MS)), max_length=200,
                        description="reaction times after the event time, comma-separated milliseconds")
    horizon_ms: int = Field(DEFAULT_HORIZON_MS, gt=0, le=86_400_000,
                            description="how long after its event time a signal is followed at most")
    limit: int = Field(500, ge=0, le=100_000, description="most outcomes listed (the summary counts them all)")

    @field_validator("delays")
    @classmethod
    def _delays(cls, text: str) -> str:
        parse_delays(text)  # its ValueError names the bad item
        return text


def epoch_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return round(aware.timestamp() * 1000)


@router.get("/analytics/outcomes", response={200: Document, 400: Error, 404: Error},
            summary="Whether each signal of a time range was real: survival and decay (docs/outcomes.md)")
async def outcomes(request, query: Query[OutcomeRange]):
    start, end, delays = epoch_ms(query.start), epoch_ms(query.end), parse_delays(query.delays)
    if end <= start:
        raise HttpError(400, f"empty range: end {query.end.isoformat()} is not after start {query.start.isoformat()}")
    if end - start > OUTCOMES_MAX_HOURS * 3_600_000:
        raise HttpError(400, f"the range is {(end - start) / 3_600_000:,.1f} hours: here at most "
                             f"{OUTCOMES_MAX_HOURS}; `ascep analytics outcomes` takes any range")
    if query.horizon_ms < max(delays):
        raise HttpError(400, f"horizon_ms {query.horizon_ms} is shorter than the longest delay {max(delays)} ms")
    try:
        report = await asyncio.to_thread(lake_outcomes, start, end, delays, query.horizon_ms)
    except NoLake as exc:
        raise HttpError(404, str(exc)) from None
    listed = report["outcomes"]
    return {**report, "outcomes": listed[:query.limit], "outcomes_listed": min(len(listed), query.limit)}
