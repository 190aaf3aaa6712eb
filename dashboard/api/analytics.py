"""The lake's figures, as `ascep analytics` prints them (dashboard/analytics.py)."""
from __future__ import annotations

import asyncio

from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from dashboard.analytics import NoLake, lake_figures
from dashboard.api.common import Document, Error

router = Router(tags=["analytics"])


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
