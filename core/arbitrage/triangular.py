"""Triangular arbitrage: on one venue, a cycle A -> B -> C -> A through three of its pairs.

Each hop sells the base of its pair at the bid or buys it at the ask, paying the venue's taker fee
(see cycles.py); the cycle is profitable when the product of the three rates beats 1 + min_profit.
Cycles are found once, when their last pair first ticks, and indexed by pair, so a tick re-prices
only the cycles through its own pair: per-tick cost follows the pair's cycle count, not the venue's
symbol count. Each cycle starts at its alphabetically first currency and is sized in it.
"""
from __future__ import annotations

import heapq

from core.contracts.signal import Side, Signal, route_part
from core.contracts.tick import Tick
from core.settings import ArbitrageSettings

from .cycles import settle_cycle
from .lifecycle import OpportunityBook

SELL, BUY = 1, 2  # index into a mark (ts, sell rate, buy rate)
SIDE_NAME: dict[int, Side] = {SELL: "sell", BUY: "buy"}
Hop = tuple[str, int]  # (symbol, SELL | BUY)
Cycle = tuple[tuple[str, ...], tuple[Hop, ...]]  # (route, hops), three of each


class VenueState:
    """One venue's quotes, its pair graph and cycle index, and its open opportunities: the keyed state."""

    __slots__ = ("quotes", "marks", "links", "cycles", "newest", "book", "expiries")

    def __init__(self) -> None:
        self.quotes: dict[str, Tick] = {}
        self.marks: dict[str, tuple[int, float, float]] = {}  # symbol -> (ts, sell rate, buy rate), fees in
        self.links: dict[str, dict[str, list[str]]] = {}  # currency -> other currency -> symbols joining them
        self.cycles: dict[str, list[Cycle]] = {}  # symbol -> the cycles through it
        self.newest = 0
        self.book = OpportunityBook()
        self.expiries: list[tuple[int, tuple[str, ...]]] = []  # heap: (oldest leg ts when checked, open route)


def _hop(source: str, symbol: str) -> Hop:
    """The trade that turns `source` into the other currency of `symbol`."""
    return (symbol, SELL if symbol.startswith(source + "/") else BUY)


def _cycle(venue: str, path: list[tuple[str, str]]) -> Cycle:
    """`path` is [(source currency, symbol)] per hop; rotate it to start at the first currency."""
    start = min(range(len(path)), key=lambda k: path[k][0])
    hops = tuple(_hop(source, symbol) for source, symbol in path[start:] + path[:start])
    route = tuple(route_part(SIDE_NAME[side], venue, symbol) for symbol, side in hops)
    return route, hops


def link_symbol(state: VenueState, venue: str, symbol: str) -> None:
    """Add a newly quoted pair to the graph and index every 3-cycle it closes."""
    x, y = symbol.split("/")
    links = state.links
    x_links, y_links = links.setdefault(x, {}), links.setdefault(y, {})
    for z in x_links.keys() & y_links.keys():
        for y_z in y_links[z]:
            for z_x in x_links[z]:
                for cycle in (_cycle(venue, [(x, symbol), (y, y_z), (z, z_x)]),
                              _cycle(venue, [(y, symbol), (x, z_x), (z, y_z)])):
                    for hop_symbol, _ in cycle[1]:
                        state.cycles.setdefault(hop_symbol, []).append(cycle)
    x_links.setdefault(y, []).append(symbol)
    y_links.setdefault(x, []).append(symbol)


def mark(tick: Tick, fee: float) -> tuple[int, float, float]:
    return (tick.ts, tick.bid * (1.0 - fee), 1.0 / (tick.ask * (1.0 + fee)))


class TriangularDetector:
    State = VenueState

    def __init__(self, config: ArbitrageSettings) -> None:
        self.config = config
        self.limits = config.thresholds("triangular")
        self._fees: dict[str, float] = {}  # venue -> taker fee, looked up once

    @staticmethod
    def key_for(tick: Tick) -> str:
        """The Flink key: a cycle trades on one venue, so all its pairs meet in that venue's state."""
        return tick.venue

    def saved(self, state: VenueState) -> tuple:
        """What a venue's state adds to its quotes: the graph, cycles and marks are rebuilt from those."""
        return state.newest, state.book.open, state.expiries

    def restore(self, venue: str, quotes: dict[str, Tick], saved: tuple) -> VenueState:
        """A venue's state from its quotes and saved(); pairs are linked in symbol order, which changes
        only the order in which one tick's signals come out, never which."""
        state = VenueState()
        fee = self.config.fee(venue)
        for symbol in sorted(quotes):
            link_symbol(state, venue, symbol)
            state.quotes[symbol] = quotes[symbol]
            state.marks[symbol] = mark(quotes[symbol], fee)
        state.newest, state.book.open, state.expiries = saved
        return state

    def on_tick(self, state: VenueState, tick: Tick, now_ms: int) -> list[Signal]:
        """Apply one tick of the state's venue and return the signals it opened, peaked or closed."""
        symbol = tick.symbol
        quotes = state.quotes
        previous = quotes.get(symbol)
        if previous is not None and previous.ts > tick.ts:
            return []
        if previous is None:
            link_symbol(state, tick.venue, symbol)
        quotes[symbol] = tick
        fee = self._fees.get(tick.venue)
        if fee is None:
            fee = self._fees[tick.venue] = self.config.fee(tick.venue)
        marks = state.marks
        marks[symbol] = mark(tick, fee)
        advanced = tick.ts > state.newest
        if advanced:
            state.newest = tick.ts
        limits = self.limits
        oldest_allowed = state.newest - limits.max_quote_age_ms
        min_profit = limits.min_profit_bps
        book = state.book
        out: list[Signal] = []
        for route, ((s0, i0), (s1, i1), (s2, i2)) in state.cycles.get(symbol, ()):
            m0, m1, m2 = marks[s0], marks[s1], marks[s2]
            profit = (m0[i0] * m1[i1] * m2[i2] - 1.0) * 10_000.0
            if profit > min_profit and m0[0] >= oldest_allowed and m1[0] >= oldest_allowed and m2[0] >= oldest_allowed:
                if route not in book.open:
                    heapq.heappush(state.expiries, (min(m0[0], m1[0], m2[0]), route))
                steps = [(quotes[s0], SIDE_NAME[i0], fee), (quotes[s1], SIDE_NAME[i1], fee),
                         (quotes[s2], SIDE_NAME[i2], fee)]
                signal = settle_cycle(book, "triangular", route, steps, profit, limits, tick.ts, now_ms)
            elif route in book.open:
                signal = book.unprofitable(route, tick.ts)
            else:
                continue
            if signal is not None:
                out.append(signal)
        if advanced and state.expiries and state.expiries[0][0] < oldest_allowed:
            out.extend(self._close_stale(state, oldest_allowed, tick.ts))
        return out

    @staticmethod
    def _close_stale(state: VenueState, oldest_allowed: int, event_time: int) -> list[Signal]:
        """Time moved on: an open cycle whose pairs did not tick may now hold a stale leg.

        The heap yields only routes whose oldest leg was old when last checked; a leg that ticked
        since pushes the route back with its new oldest time, a closed route just drops out.
        """
        expiries, marks, book = state.expiries, state.marks, state.book
        closed: list[Signal] = []
        while expiries and expiries[0][0] < oldest_allowed:
            _, route = heapq.heappop(expiries)
            signal = book.open.get(route)
            if signal is None:
                continue
            oldest_leg = min(marks[leg["symbol"]][0] for leg in signal["legs"])
            if oldest_leg < oldest_allowed:
                closed.append(book.close(route, event_time))
            else:
                heapq.heappush(expiries, (oldest_leg, route))
        return closed
