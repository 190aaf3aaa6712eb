"""The signal: what detectors emit and what the sinks and the dashboard serve.

A signal stands for one opportunity over its lifetime (open → updates → closed), not one tick.
Its id is a hash of what opened it, so replaying the same input yields the same ids and the
sinks can write idempotently.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

SignalType = Literal["cross_exchange", "triangular", "direct", "rule"]
Side = Literal["buy", "sell"]


class Leg(TypedDict):
    venue: str
    symbol: str
    side: Side
    price: float  # top of book: the ask buying, the bid selling
    vwap: NotRequired[float]  # the average price (before fees) of the leg at the signal's size, when a book was walked


class Signal(TypedDict, total=False):
    id: str
    type: SignalType
    legs: list[Leg]
    profit_bps: float  # net of taker fees, at the opportunity's peak
    size: float | None  # executable quantity when sizes are known: cross_exchange in the symbol's base
    # currency; direct and triangular in the cycle's start currency
    event_time: int  # epoch ms (exchange time) when the opportunity opened
    updated_at: int  # epoch ms (exchange time) of the latest tick that changed it
    closed_at: int | None  # epoch ms (exchange time) when it stopped being profitable
    status: Literal["open", "closed"]
    detected_at: int  # epoch ms by the wall clock, when first detected
    rule_id: str
    name: str  # rule signals: the rule's THEN name
    key: str  # partitioned rule signals: the key that fired, "BTC/USDT" or "BTC/USDT@binance"
    events: dict[str, list[dict[str, Any]]]  # rule pattern matches: the ticks each stage took


def signal_id(signal_type: str, route: tuple[str, ...], event_time: int) -> str:
    """Deterministic from the route (venue/symbol/side of each leg) and the opening event time."""
    material = "|".join((signal_type, *route, str(event_time))).encode()
    return hashlib.blake2b(material, digest_size=10).hexdigest()


def route_part(side: str, venue: str, symbol: str) -> str:
    """One leg of a route, the text signal ids hash: every detector builds routes with this."""
    return f"{side}:{venue}:{symbol}"


def route_of(legs: list[Leg]) -> tuple[str, ...]:
    return tuple(route_part(leg["side"], leg["venue"], leg["symbol"]) for leg in legs)


def places(signal: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The symbols and venues a signal names: its legs', a pattern match's events' ticks', a partitioned
    rule's key ("BTC/USDT" or "BTC/USDT@binance"). A condition rule that is not partitioned names none."""
    legs = signal.get("legs", ())
    ticks = [tick for stage in signal.get("events", {}).values() for tick in stage]
    symbols = {leg["symbol"] for leg in legs} | {tick["symbol"] for tick in ticks}
    venues = {leg["venue"] for leg in legs} | {tick["venue"] for tick in ticks}
    if "key" in signal:
        symbol, _, venue = signal["key"].partition("@")
        symbols.add(symbol)
        if venue:
            venues.add(venue)
    return symbols, venues


def public_view(signal: dict[str, Any]) -> dict[str, Any]:
    """Drop keys with a None value so the JSON stays small and stable."""
    return {k: v for k, v in signal.items() if v is not None}
