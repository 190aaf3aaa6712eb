"""Signals, prices and the figures over them: reads of what the job's RedisSink wrote (dashboard/store.py)."""
from __future__ import annotations

from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from core.contracts.redis_keys import SIGNALS_KEPT
from dashboard import store
from dashboard.api.common import Document, Error
from dashboard.stats import signal_stats

router = Router(tags=["signals"])

MAX_LIMIT = 1000


class SignalList(Schema):
    signals: list[Document]


class PriceList(Schema):
    prices: list[Document]


class Listing(Schema):
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="how many, newest first")


@router.get("/signals", response={200: SignalList, 400: Error, 503: Error}, summary="The newest signals")
async def signals(request, query: Query[Listing]):
    """Newest first by event time; each is the signal's latest state."""
    return {"signals": await store.latest_signals(query.limit)}


@router.get("/signals/{signal_id}", response={200: Document, 404: Error, 500: Error, 503: Error},
            summary="One signal's latest state")
async def signal_detail(request, signal_id: str):
    try:
        found = await store.one_signal(signal_id)
    except store.UnreadableDocument as exc:
        raise HttpError(500, str(exc)) from None
    if found is None:
        raise HttpError(404, f"no signal with id {signal_id!r}")
    return found


@router.get("/prices", response={200: PriceList, 503: Error}, summary="The latest tick per venue and symbol")
async def prices(request):
    return {"prices": await store.prices()}


@router.get("/stats", response={200: Document, 503: Error}, summary="Figures over the stored signals")
async def stats(request):
    """Over the newest SIGNALS_KEPT signals, so the cost stays bounded however long the job runs."""
    return signal_stats(await store.latest_signals(SIGNALS_KEPT))
