"""Sizing an opportunity by walking the books its ticks carry (Tick.bids / Tick.asks, docs/ticks.md).

A tick without levels stands for a one-level book at its top of book when it has a size there, and
for no book at all when it has none: then nothing is sized, as before books came in. Every walk below
relies on one fact: taking more from a book only gets worse prices, so the average profit of a route
falls as its size grows and the sizes that meet the minimum profit form an interval [0, Q*].
"""
from __future__ import annotations

from core.contracts.tick import Levels, Tick


def ladder(tick: Tick, side: str) -> Levels | None:
    """The book a trade on `side` ("buy" takes the asks, "sell" the bids) walks; None when no size is known."""
    if side == "buy":
        if tick.asks is not None:
            return tick.asks
        return None if tick.ask_size is None else ((tick.ask, tick.ask_size),)
    if tick.bids is not None:
        return tick.bids
    return None if tick.bid_size is None else ((tick.bid, tick.bid_size),)


def average_price(levels: Levels, quantity: float) -> float:
    """The VWAP of taking `quantity` (base, > 0, within the book) from `levels`, best first."""
    money, left = 0.0, quantity
    for price, size in levels:
        take = size if size < left else left
        money += take * price
        left -= take
        if left <= 0.0:
            break
    return money / quantity


def vwap_size(asks: Levels, buy_fee: float, bids: Levels, sell_fee: float, min_profit_bps: float) -> float:
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


Hop = tuple[Levels, str, float]  # (the book the leg walks, "buy" | "sell", taker fee as a fraction)


def _rate(price: float, side: str, fee: float) -> float:
    """Output units of a leg per input unit at one level: quote per base selling, base per quote buying."""
    return price * (1.0 - fee) if side == "sell" else 1.0 / (price * (1.0 + fee))


def _room(price: float, size: float, side: str, fee: float) -> float:
    """A level's capacity in the leg's input units: base when selling, quote (fees in) when buying."""
    return size if side == "sell" else size * price * (1.0 + fee)


def cycle_depth_size(hops: list[Hop], min_profit_bps: float) -> float:
    """Largest start quantity a cycle can turn over, walking every leg's book, whose VWAP profit (what
    comes back over what went in, net of fees) stays >= min.

    Each leg's output is a concave, piecewise-linear function of its input, so the cycle's is too: walk
    the segments where no leg crosses a level, each linear with slope the product of the legs' current
    rates, and stop inside the first one that takes the average below the target, or where a book ends.
    """
    target = 1.0 + min_profit_bps / 10_000.0
    legs = range(len(hops))
    level = [0] * len(hops)
    left = [_room(levels[0][0], levels[0][1], side, fee) for levels, side, fee in hops]  # per leg, input units
    rates = [_rate(levels[0][0], side, fee) for levels, side, fee in hops]  # at each leg's current level
    start = back = 0.0
    while True:
        step, binding, slope = float("inf"), 0, 1.0  # slope: leg k's input per start unit, then the cycle's
        for k in legs:
            room = left[k] / slope
            if room < step:
                step, binding = room, k
            slope *= rates[k]
        if slope < target:
            room = (back - target * start) / (target - slope)
            if room < step:
                return start + max(room, 0.0)
        start += step
        back += step * slope
        per_input = 1.0
        for k in legs:
            left[k] = 0.0 if k == binding else left[k] - step * per_input
            per_input *= rates[k]
            if left[k] <= 0.0:
                levels, side, fee = hops[k]
                level[k] += 1
                if level[k] == len(levels):
                    return start
                price, size = levels[level[k]]
                left[k], rates[k] = _room(price, size, side, fee), _rate(price, side, fee)


def cycle_vwaps(hops: list[Hop], size: float) -> list[float]:
    """Each leg's VWAP (quote per base, before fees) when the cycle turns over `size` (> 0) start units."""
    out = []
    amount = size  # the current leg's input
    for levels, side, fee in hops:
        if side == "sell":
            price = average_price(levels, amount)
            out.append(price)
            amount *= price * (1.0 - fee)
        else:
            base = _spend(levels, amount / (1.0 + fee))
            out.append(amount / (1.0 + fee) / base)
            amount = base
    return out


def _spend(levels: Levels, money: float) -> float:
    """Base bought spending `money` (quote, before fees) up `levels`; a book that ends first gives its all."""
    base, left = 0.0, money
    for price, size in levels:
        cost = size * price
        if cost >= left:
            return base + left / price
        base += size
        left -= cost
    return base
