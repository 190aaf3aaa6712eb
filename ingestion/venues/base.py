"""The one interface a venue implements: parse a frame into ticks and trades.

Everything else (connecting, subscribing, retries, watchdog, Kafka production) is shared code that
only needs the data a venue declares here. Every frame ends in exactly one of three places: ticks
and/or trades, an ignore with a documented reason (subscription acks, heartbeats, channels we do
not use), or a dead letter with the reason. Nothing is dropped without a trace.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ascep.tick import Tick


@dataclass(slots=True)
class Trade:
    venue: str
    symbol: str
    price: float
    size: float
    side: str | None  # "buy" or "sell" (taker side) when the venue says
    ts: int  # epoch ms, exchange time
    trade_id: str | None = None


@dataclass(slots=True)
class Parsed:
    """What one frame became. Exactly one of: some ticks/trades, `ignored`, or `deadletter`."""

    ticks: list[Tick] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    ignored: str | None = None  # documented reason, e.g. "subscription ack"
    deadletter: str | None = None  # reason the frame is bad
    sequence: tuple[str, int] | None = None  # (stream, sequence number) where the venue gives one


class Venue(Protocol):
    name: str  # lowercase venue name used in ticks

    def stream_url(self, symbols: list[str]) -> str: ...

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]: ...

    def parse(self, frame: str | bytes, received_ms: int) -> Parsed: ...
