"""Conversion cycles: a chain of trades that starts and ends in the same currency.

A leg sells the base of its symbol at the bid or buys it at the ask, paying the venue's taker fee:
selling turns 1 base into bid*(1-fee) quote, buying turns 1 quote into 1/(ask*(1+fee)) base. A cycle
is profitable when the product of its legs' rates beats 1 + min_profit. Direct (A/B vs B/A) and
triangular detection are both cycles; cross-exchange is too, but sizes it in base units. When a leg's
tick carries its book, the cycle is sized by walking every leg's book (depth.cycle_depth_size).
"""
from __future__ import annotations

from core.contracts.signal import Leg, Side, Signal, SignalType
from core.contracts.tick import Tick
from core.settings import Thresholds

from .depth import Hop, cycle_depth_size, cycle_vwaps, ladder
from .lifecycle import OpportunityBook

Step = tuple[Tick, Side, float]  # (quote, side, taker fee as a fraction)


def leg_rate(tick: Tick, side: str, fee: float) -> float:
    """Units of the leg's output currency per unit of its input currency."""
    return tick.bid * (1.0 - fee) if side == "sell" else 1.0 / (tick.ask * (1.0 + fee))


def cycle_profit_bps(steps: list[Step]) -> float:
    product = 1.0
    for tick, side, fee in steps:
        product *= leg_rate(tick, side, fee)
    return (product - 1.0) * 10_000.0


def cycle_size(steps: list[Step]) -> float | None:
    """Most start currency the whole cycle can turn over at top of book; None when a size is unknown.

    Each leg's capacity is in its input currency (base when selling, quote when buying) and is
    carried back to start-currency units through the rates of the legs before it.
    """
    size = float("inf")
    start_per_input = 1.0  # input units of the current leg that one start unit becomes
    for tick, side, fee in steps:
        if side == "sell":
            capacity = tick.bid_size
        else:
            capacity = None if tick.ask_size is None else tick.ask_size * tick.ask * (1.0 + fee)
        if capacity is None:
            return None
        size = min(size, capacity / start_per_input)
        start_per_input *= leg_rate(tick, side, fee)
    return size


def first_leg_notional(steps: list[Step], size: float) -> float:
    """The first leg's traded amount in its quote currency, for `size` start units."""
    tick, side, fee = steps[0]
    return size * tick.bid if side == "sell" else size / (1.0 + fee)


def within_minimums(size: float | None, notional: float, limits: Thresholds) -> bool:
    """Unknown sizes pass (FX feeds carry none); a known size must be positive and meet both minimums."""
    return size is None or (size > 0.0 and size >= limits.min_size and notional >= limits.min_notional)


def legs_of(steps: list[Step], vwaps: list[float] | None = None) -> list[Leg]:
    """The legs at top of book; with `vwaps`, each leg's VWAP at the signal's size too."""
    legs: list[Leg] = [{"venue": tick.venue, "symbol": tick.symbol, "side": side,
                        "price": tick.bid if side == "sell" else tick.ask} for tick, side, _ in steps]
    if vwaps is not None:
        for leg, vwap in zip(legs, vwaps):
            leg["vwap"] = vwap
    return legs


def depth_size(steps: list[Step], min_profit_bps: float) -> tuple[float | None, list[float] | None]:
    """(size, each leg's VWAP at it) walking the legs' books; without a book on any leg, the top-of-book
    size as before books came in, and no VWAPs."""
    if all(tick.bids is None for tick, _, _ in steps):
        return cycle_size(steps), None
    hops: list[Hop] = []
    for tick, side, fee in steps:
        levels = ladder(tick, side)
        if levels is None:
            return None, None  # a leg of unknown size: the cycle's is unknown
        hops.append((levels, side, fee))
    size = cycle_depth_size(hops, min_profit_bps)
    return size, (cycle_vwaps(hops, size) if size > 0.0 else None)


def settle_cycle(book: OpportunityBook, signal_type: SignalType, route: tuple[str, ...], steps: list[Step],
                 profit_bps: float, limits: Thresholds, event_time: int, now_ms: int) -> Signal | None:
    """Open or update a cycle already found fresh and above min profit, unless it is too small to trade."""
    size, vwaps = depth_size(steps, limits.min_profit_bps)
    if not within_minimums(size, 0.0 if size is None else first_leg_notional(steps, size), limits):
        return book.unprofitable(route, event_time)
    return book.profitable(signal_type, route, legs_of(steps, vwaps), profit_bps, size, event_time, now_ms)
