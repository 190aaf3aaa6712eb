"""Brute-force oracles: every route enumerated from the final quotes, written independently of the detectors.

Each oracle returns (definite, ambiguous): definite maps route -> (profit_bps, size) for what must be
open; ambiguous holds routes within float noise of a threshold, which either answer may settle.
"""
from __future__ import annotations

import functools
import itertools
import struct
from dataclasses import dataclass

from core.contracts.tick import Tick

NOISE = 1e-7
SMALLEST_SIZE = 1e-300  # below it, size * price goes subnormal and loses the digits a VWAP comparison needs


@dataclass(frozen=True)
class Limits:
    fees_bps: dict[str, float]
    min_profit_bps: float
    max_quote_age_ms: int
    min_size: float
    min_notional: float


def final_quotes(ticks: list[Tick]) -> dict[tuple[str, str], Tick]:
    """A later tick replaces the held one unless its timestamp is older."""
    held: dict[tuple[str, str], Tick] = {}
    for tick in ticks:
        old = held.get((tick.venue, tick.symbol))
        if old is None or tick.ts >= old.ts:
            held[(tick.venue, tick.symbol)] = tick
    return held


def _fee(limits: Limits, venue: str) -> float:
    return limits.fees_bps[venue] / 10_000.0


def _convert(amount: float, tick: Tick, side: str, fee: float) -> float:
    if side == "sell":
        return amount * tick.bid * (1.0 - fee)
    return amount / tick.ask / (1.0 + fee)


def _close(value: float, minimum: float) -> bool:
    return minimum > 0 and abs(value - minimum) < NOISE * max(1.0, value)


def _judge(route, profit, size, notional, limits, definite, ambiguous) -> None:
    near = abs(profit - limits.min_profit_bps) < NOISE
    if size is not None:
        near = near or _close(size, limits.min_size) or _close(notional, limits.min_notional)
    if near:
        ambiguous.add(route)
        return
    big_enough = size is None or (size > 0 and size >= limits.min_size and notional >= limits.min_notional)
    if profit > limits.min_profit_bps and big_enough:
        definite[route] = (profit, size)


def _fresh(ticks, newest: int, limits: Limits) -> bool:
    return all(t.ts >= newest - limits.max_quote_age_ms for t in ticks)


# --- cross-exchange ------------------------------------------------------------------------------

def _filled(ladder, quantity: float) -> float:
    """Money moved taking `quantity` from a ladder of (price, size), best first."""
    total, left = 0.0, quantity
    for price, size in ladder:
        take = min(left, size)
        total += take * price
        left -= take
    return total


def _float_order(x: float) -> int:
    """Non-negative floats order like their bit patterns, so bisecting these integers reaches every float."""
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _from_order(n: int) -> float:
    return struct.unpack("<d", struct.pack("<q", n))[0]


def _largest_size(asks, buy_fee, bids, sell_fee, min_profit_bps) -> float:
    """Bisection on the VWAP profit condition, which holds on an interval [0, Q*].

    It bisects the floats themselves rather than [0, capacity]: halving the interval would never
    tell a Q* far below the capacity (a tiny first level, say) from zero.
    """
    target = 1.0 + min_profit_bps / 10_000.0
    capacity = min(sum(s for _, s in asks), sum(s for _, s in bids))

    def holds(q: float) -> bool:
        return _filled(bids, q) * (1 - sell_fee) >= target * _filled(asks, q) * (1 + buy_fee)

    if holds(capacity):
        return capacity
    if not holds(SMALLEST_SIZE):
        return 0.0
    low, high = _float_order(SMALLEST_SIZE), _float_order(capacity)
    while high - low > 1:
        middle = (low + high) // 2
        if holds(_from_order(middle)):
            low = middle
        else:
            high = middle
    return _from_order(low)


def cross_exchange(ticks: list[Tick], depths: dict[int, tuple], limits: Limits):
    """`depths` maps a tick's index in `ticks` to its (bids, asks) levels."""
    held_index: dict[str, int] = {}
    for index, tick in enumerate(ticks):
        old = held_index.get(tick.venue)
        if old is None or tick.ts >= ticks[old].ts:
            held_index[tick.venue] = index
    newest = max(t.ts for t in ticks)
    definite, ambiguous = {}, set()
    for buy_venue, sell_venue in itertools.permutations(held_index, 2):
        buy, sell = ticks[held_index[buy_venue]], ticks[held_index[sell_venue]]
        if not _fresh((buy, sell), newest, limits):
            continue
        fb, fs = _fee(limits, buy_venue), _fee(limits, sell_venue)
        profit = (_convert(_convert(1.0, buy, "buy", fb), sell, "sell", fs) - 1.0) * 10_000.0
        asks = depths[held_index[buy_venue]][1] if held_index[buy_venue] in depths else \
            (None if buy.ask_size is None else [(buy.ask, buy.ask_size)])
        bids = depths[held_index[sell_venue]][0] if held_index[sell_venue] in depths else \
            (None if sell.bid_size is None else [(sell.bid, sell.bid_size)])
        size = None
        if asks is not None and bids is not None and profit > limits.min_profit_bps:
            size = _largest_size(asks, fb, bids, fs, limits.min_profit_bps)
        route = (f"buy:{buy_venue}:{buy.symbol}", f"sell:{sell_venue}:{sell.symbol}")
        _judge(route, profit, size, 0.0 if size is None else size * buy.ask, limits, definite, ambiguous)
    return definite, ambiguous


# --- cycles (direct and triangular) --------------------------------------------------------------

def _cycle_outcome(legs: list[tuple[Tick, str]], limits: Limits):
    """Profit by converting one start unit, size by clamping a forward pass at each leg's capacity."""
    amount, clamped = 1.0, float("inf")
    sized = True
    for tick, side in legs:
        fee = _fee(limits, tick.venue)
        amount = _convert(amount, tick, side, fee)
        capacity = tick.bid_size if side == "sell" else \
            (None if tick.ask_size is None else tick.ask_size * tick.ask * (1 + fee))
        if capacity is None:
            sized = False
        else:
            clamped = min(clamped, capacity)
        clamped = _convert(clamped, tick, side, fee)
    profit = (amount - 1.0) * 10_000.0
    if not sized:
        return profit, None, 0.0
    size = clamped / amount
    first, side = legs[0]
    base_quantity = size if side == "sell" else _convert(size, first, "buy", _fee(limits, first.venue))
    return profit, size, base_quantity * (first.bid if side == "sell" else first.ask)


def _route(legs) -> tuple[str, ...]:
    return tuple(f"{side}:{tick.venue}:{tick.symbol}" for tick, side in legs)


def _judge_cycle(legs, newest, limits, definite, ambiguous) -> None:
    if _fresh([t for t, _ in legs], newest, limits):
        profit, size, notional = _cycle_outcome(legs, limits)
        _judge(_route(legs), profit, size, notional, limits, definite, ambiguous)


def direct(ticks: list[Tick], limits: Limits):
    quotes = final_quotes(ticks)
    newest = max(t.ts for t in ticks)
    definite, ambiguous = {}, set()
    for first, second in itertools.permutations(quotes.values(), 2):
        a, b = first.symbol.split("/")
        if second.symbol != f"{b}/{a}" or a > b:
            continue  # first must be A/B with A the smaller currency, second its inverse
        _judge_cycle([(first, "sell"), (second, "sell")], newest, limits, definite, ambiguous)
        _judge_cycle([(second, "buy"), (first, "buy")], newest, limits, definite, ambiguous)
    return definite, ambiguous


def _hop(symbol: str, side: str) -> tuple[str, str]:
    base, quote = symbol.split("/")
    return (base, quote) if side == "sell" else (quote, base)


@functools.lru_cache(maxsize=1024)
def _cycles(keys: tuple[tuple[str, str], ...]) -> list[tuple[tuple[tuple[str, str], str], ...]]:
    """Every ordered triple of distinct pairs with every choice of sides; keep real 3-currency cycles.

    Cached by which (venue, symbol) pairs are quoted, so the oracle run after every tick of a
    replay enumerates each set of pairs once.
    """
    cycles = []
    for triple in itertools.permutations(keys, 3):
        for sides in itertools.product(("buy", "sell"), repeat=3):
            hops = [_hop(symbol, s) for (_, symbol), s in zip(triple, sides)]
            currencies = [source for source, _ in hops]
            chained = all(hops[k][1] == hops[(k + 1) % 3][0] for k in range(3))
            if chained and len(set(currencies)) == 3 and currencies[0] == min(currencies):
                cycles.append(tuple(zip(triple, sides)))
    return cycles


def triangular(ticks: list[Tick], limits: Limits):
    quotes = final_quotes(ticks)
    newest = max(t.ts for t in ticks)
    definite, ambiguous = {}, set()
    for cycle in _cycles(tuple(quotes)):
        _judge_cycle([(quotes[key], side) for key, side in cycle], newest, limits, definite, ambiguous)
    return definite, ambiguous
