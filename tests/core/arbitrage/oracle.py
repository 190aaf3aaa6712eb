"""Brute-force oracles: every route enumerated from the final quotes, written independently of the detectors.

Each oracle returns (definite, ambiguous): definite maps route -> (profit_bps, size, leg VWAPs or None) for
what must be open; ambiguous holds routes within float noise of a threshold, which either answer may settle.
Sizes with books are found by bisecting the floats on a brute-force walk of the books, level by level.
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


def _judge(route, profit, size, notional, limits, definite, ambiguous, vwaps=None) -> None:
    near = abs(profit - limits.min_profit_bps) < NOISE
    if size is not None:
        near = near or _close(size, limits.min_size) or _close(notional, limits.min_notional)
    if near:
        ambiguous.add(route)
        return
    big_enough = size is None or (size > 0 and size >= limits.min_size and notional >= limits.min_notional)
    if profit > limits.min_profit_bps and big_enough:
        definite[route] = (profit, size, vwaps)


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


def _book(tick: Tick, side: str):
    """What a buy takes (the asks) or a sell takes (the bids): the tick's levels, else its top of book if sized."""
    levels = tick.asks if side == "buy" else tick.bids
    if levels is not None:
        return list(levels)
    price, size = (tick.ask, tick.ask_size) if side == "buy" else (tick.bid, tick.bid_size)
    return None if size is None else [(price, size)]


def _largest(holds, capacity: float) -> float:
    """The largest q in [0, capacity] where `holds`, which holds on an interval [0, Q*], by bisection.

    It bisects the floats themselves rather than [0, capacity]: halving the interval would never
    tell a Q* far below the capacity (a tiny first level, say) from zero.
    """
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


def _largest_size(asks, buy_fee, bids, sell_fee, min_profit_bps) -> float:
    """Bisection on the VWAP profit condition."""
    target = 1.0 + min_profit_bps / 10_000.0
    capacity = min(sum(s for _, s in asks), sum(s for _, s in bids))
    return _largest(lambda q: _filled(bids, q) * (1 - sell_fee) >= target * _filled(asks, q) * (1 + buy_fee),
                    capacity)


def cross_exchange(ticks: list[Tick], limits: Limits):
    """Sizes walk the books the held ticks carry."""
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
        asks, bids = _book(buy, "buy"), _book(sell, "sell")
        size = vwaps = None
        if asks is not None and bids is not None and profit > limits.min_profit_bps:
            size = _largest_size(asks, fb, bids, fs, limits.min_profit_bps)
            if size > 0 and (buy.asks is not None or sell.bids is not None):
                vwaps = [_filled(asks, size) / size, _filled(bids, size) / size]
        route = (f"buy:{buy_venue}:{buy.symbol}", f"sell:{sell_venue}:{sell.symbol}")
        _judge(route, profit, size, 0.0 if size is None else size * buy.ask, limits, definite, ambiguous, vwaps)
    return definite, ambiguous


# --- cycles (direct and triangular) --------------------------------------------------------------

def _walk_leg(amount: float, book, side: str, fee: float):
    """(output, VWAP before fees) of putting `amount` of a leg's input through its book; None past the book."""
    out = base = money = 0.0
    left = amount
    for price, size in book:
        if left <= 0:
            break
        room = size if side == "sell" else size * price * (1 + fee)  # the level in input units
        if room >= left:
            taken, left = (left if side == "sell" else left / (price * (1 + fee))), 0.0
        else:
            taken, left = size, left - room
        base += taken
        money += taken * price
        out += taken * price * (1 - fee) if side == "sell" else taken
    if left > 0:
        return None
    return out, (money / base if base else None)


def _walk_cycle(x: float, books, legs, limits: Limits):
    """What comes back of `x` start units and each leg's VWAP, walking the books; None when a book is too short."""
    amount, vwaps = x, []
    for book, (tick, side) in zip(books, legs):
        walked = _walk_leg(amount, book, side, _fee(limits, tick.venue))
        if walked is None:
            return None
        amount, vwap = walked
        vwaps.append(vwap)
    return amount, vwaps


def _cycle_depth_size(legs, books, limits: Limits):
    target = 1.0 + limits.min_profit_bps / 10_000.0
    first, side = legs[0]
    fee = _fee(limits, first.venue)
    capacity = sum(s if side == "sell" else s * p * (1 + fee) for p, s in books[0])

    def holds(x: float) -> bool:
        walked = _walk_cycle(x, books, legs, limits)
        return walked is not None and walked[0] >= target * x

    size = _largest(holds, capacity)
    walked = _walk_cycle(size, books, legs, limits) if size > 0 else None
    return size, None if walked is None else walked[1]


def _cycle_outcome(legs: list[tuple[Tick, str]], limits: Limits):
    """Profit by converting one start unit; size by clamping a forward pass at each leg's capacity, or, when a
    leg carries its book, by bisection on a walk of every leg's book."""
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
    books = [_book(tick, side) for tick, side in legs]
    booked = any(tick.bids is not None for tick, _ in legs)
    if booked and None not in books:
        size, vwaps = _cycle_depth_size(legs, books, limits) if profit > limits.min_profit_bps else (0.0, None)
    elif not sized or booked:
        return profit, None, 0.0, None
    else:
        size, vwaps = clamped / amount, None
    first, side = legs[0]
    base_quantity = size if side == "sell" else _convert(size, first, "buy", _fee(limits, first.venue))
    return profit, size, base_quantity * (first.bid if side == "sell" else first.ask), vwaps


def _route(legs) -> tuple[str, ...]:
    return tuple(f"{side}:{tick.venue}:{tick.symbol}" for tick, side in legs)


def _judge_cycle(legs, newest, limits, definite, ambiguous) -> None:
    if _fresh([t for t, _ in legs], newest, limits):
        profit, size, notional, vwaps = _cycle_outcome(legs, limits)
        _judge(_route(legs), profit, size, notional, limits, definite, ambiguous, vwaps)


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
