"""Signals, prices and the figures over them: reads of what the job's RedisSink wrote (dashboard/store.py)."""
from __future__ import annotations

import asyncio

from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from core.contracts.redis_keys import SIGNALS_KEPT
from dashboard import lake_reads, store
from dashboard.analytics import NoLake
from dashboard.api.common import Document, Error
from dashboard.stats import signal_stats

router = Router(tags=["signals"])

MAX_LIMIT = 1000
# The stream keeps about SIGNALS_KEPT entries (XADD MAXLEN ~): a history reads at most twice that.
HISTORY_SCAN = 2 * SIGNALS_KEPT
QUOTES_MARGIN_MS = 30_000
MAX_QUOTES = 20_000


class SignalList(Schema):
    signals: list[Document]


class PriceList(Schema):
    prices: list[Document]


class SignalHistory(Schema):
    signal: Document = Field(description="the latest state (from the stream when the signal itself was trimmed)")
    states: list[Document] = Field(description="every state the job wrote that the stream still holds, oldest first")


class Quotes(Schema):
    ticks: list[Document] = Field(description="ticks of the signal's markets, by event time")
    markets: list[str] = Field(description="venue:symbol of each market read")
    start: int = Field(alias="from", description="epoch ms: 30 s before the signal opened")
    end: int = Field(alias="to", description="epoch ms: 30 s after it closed (or its last update), not included")
    truncated: bool = Field(description=f"more than {MAX_QUOTES:,} ticks: the earliest are given")


class Listing(Schema):
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="how many, newest first")


@router.get("/signals", response={200: SignalList, 400: Error, 503: Error}, summary="The newest signals")
async def signals(request, query: Query[Listing]):
    """Newest first by event time; each is the signal's latest state."""
    return {"signals": await store.latest_signals(query.limit)}


@router.get("/signals/{signal_id}", response={200: Document, 404: Error, 500: Error, 503: Error},
            summary="One signal's latest state")
async def signal_detail(request, signal_id: str):
    found = await _signal(signal_id)
    if found is None:
        raise HttpError(404, f"no signal with id {signal_id!r}")
    return found


async def _signal(signal_id: str) -> dict | None:
    try:
        return await store.one_signal(signal_id)
    except store.UnreadableDocument as exc:
        raise HttpError(500, str(exc)) from None


@router.get("/signals/{signal_id}/history", response={200: SignalHistory, 404: Error, 500: Error, 503: Error},
            summary="Every state the job wrote for one signal")
async def signal_history(request, signal_id: str):
    """From the bounded stream ascep:signals:stream: a signal older than it holds has its latest state only."""
    states = await store.signal_states(signal_id, HISTORY_SCAN)
    found = await _signal(signal_id) or (states[-1] if states else None)
    if found is None:
        raise HttpError(404, f"no signal with id {signal_id!r}")
    return {"signal": found, "states": states}


@router.get("/signals/{signal_id}/quotes", response={200: Quotes, 404: Error, 500: Error, 503: Error},
            by_alias=True, summary="The lake's ticks around one signal")
async def signal_quotes(request, signal_id: str):
    """The ticks of the markets its legs name (a pattern match's: its events'), from 30 s before it opened to
    30 s after it closed, from the lake; 404 when there is no lake."""
    found = await _signal(signal_id)
    if found is None:
        raise HttpError(404, f"no signal with id {signal_id!r}")
    markets = {(leg["venue"], leg["symbol"]) for leg in found.get("legs") or ()} | {
        (tick["venue"], tick["symbol"]) for ticks in (found.get("events") or {}).values() for tick in ticks}
    start = int(found["event_time"]) - QUOTES_MARGIN_MS
    end = int(found.get("closed_at") or found.get("updated_at") or found["event_time"]) + QUOTES_MARGIN_MS + 1
    try:
        ticks, truncated = await asyncio.to_thread(lake_reads.quotes, markets, start, end, MAX_QUOTES)
    except NoLake as exc:
        raise HttpError(404, str(exc)) from None
    return {"ticks": [tick.to_json_dict() for tick in ticks], "markets": sorted(f"{v}:{s}" for v, s in markets),
            "from": start, "to": end, "truncated": truncated}


@router.get("/prices", response={200: PriceList, 503: Error}, summary="The latest tick per venue and symbol")
async def prices(request):
    return {"prices": await store.prices()}


@router.get("/stats", response={200: Document, 503: Error}, summary="Figures over the stored signals")
async def stats(request):
    """Over the newest SIGNALS_KEPT signals, so the cost stays bounded however long the job runs."""
    return signal_stats(await store.latest_signals(SIGNALS_KEPT))
