"""Order-book depth that rides along with a tick, for sizing an opportunity beyond the top of book.

The Tick stays the one quote contract; a Depth is optional extra data a connector can pass next to
it. Levels are (price, size), best first, and level 0 must be the tick's own top of book so the
two can never disagree about the price an opportunity was found at.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from core.contracts.tick import Tick

Level = tuple[float, float]


class Depth(NamedTuple):
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first


class InvalidDepth(ValueError):
    """Raised with the venue, symbol, side and level that was wrong."""


def depth_for(tick: Tick, bids: Iterable[Iterable[float]], asks: Iterable[Iterable[float]]) -> Depth:
    """Validate levels against the tick they belong to and freeze them."""
    return Depth(_side(tick, "bids", bids, tick.bid, descending=True),
                 _side(tick, "asks", asks, tick.ask, descending=False))


def _side(tick: Tick, name: str, levels: Iterable[Iterable[float]], top: float, *,
          descending: bool) -> tuple[Level, ...]:
    where = f"depth of {tick.venue}:{tick.symbol} {name}"
    out: list[Level] = []
    for index, level in enumerate(levels):
        try:
            price, size = (float(x) for x in level)
        except (TypeError, ValueError):
            raise InvalidDepth(f"{where}[{index}] must be a (price, size) pair of numbers, got {level!r}") from None
        if not (math.isfinite(price) and price > 0 and math.isfinite(size) and size >= 0):
            raise InvalidDepth(f"{where}[{index}] needs price > 0 and size >= 0, got ({price}, {size})")
        if out and (price > out[-1][0] if descending else price < out[-1][0]):
            order = "descending" if descending else "ascending"
            raise InvalidDepth(f"{where}[{index}] price {price} breaks the {order} order")
        out.append((price, size))
    if not out:
        raise InvalidDepth(f"{where} is empty; pass no Depth at all when there is none")
    if out[0][0] != top:
        raise InvalidDepth(f"{where}[0] price {out[0][0]} is not the tick's top of book {top}")
    return tuple(out)


def vwap_size(asks: tuple[Level, ...], buy_fee: float, bids: tuple[Level, ...], sell_fee: float,
              min_profit_bps: float) -> float:
    """Largest base quantity bought up `asks` and sold down `bids` whose VWAP net profit stays >= min.

    The marginal profit only falls as both ladders are walked, so the VWAP profit falls too: walk
    the merged segments and stop inside the first one that would take the average below the target.
    """
    target = 1.0 + min_profit_bps / 10_000.0
    cost = proceeds = quantity = 0.0
    i = j = 0
    ask_left, bid_left = asks[0][1], bids[0][1]
    while True:
        buy_price = asks[i][0] * (1.0 + buy_fee)
        sell_price = bids[j][0] * (1.0 - sell_fee)
        step = min(ask_left, bid_left)
        if sell_price < target * buy_price:
            room = (proceeds - target * cost) / (target * buy_price - sell_price)
            if room < step:
                return quantity + max(room, 0.0)
        cost += step * buy_price
        proceeds += step * sell_price
        quantity += step
        ask_left -= step
        bid_left -= step
        if ask_left <= 0.0:
            i += 1
            if i == len(asks):
                return quantity
            ask_left = asks[i][1]
        if bid_left <= 0.0:
            j += 1
            if j == len(bids):
                return quantity
            bid_left = bids[j][1]
