"""Direct arbitrage between a pair and its inverse (A/B vs B/A), on one venue or across two.

Selling A on A/B and then B on B/A returns bid(A/B)*(1-f1) * bid(B/A)*(1-f2) A per A; buying B on
B/A and then A on A/B returns 1/(ask(B/A)*(1+f2) * ask(A/B)*(1+f1)). Either product above
1 + min_profit is an opportunity. Both cycles start and are sized in A, the alphabetically first
currency, so a route always reads the same way whichever tick opened it.
"""
from __future__ import annotations

from core.contracts.signal import Signal, route_of
from core.contracts.tick import Tick
from core.settings import ArbitrageSettings

from .cycles import Step, cycle_profit_bps, legs_of, settle_cycle
from .lifecycle import OpportunityBook


def pair_key(symbol: str) -> str:
    """A/B and B/A share one key: the currencies in alphabetical order."""
    base, quote = symbol.split("/")
    return symbol if base < quote else f"{quote}/{base}"


class PairState:
    """Latest quote per symbol (A/B, B/A) and venue, and the open opportunities: the keyed state."""

    __slots__ = ("quotes", "newest", "book")

    def __init__(self) -> None:
        self.quotes: dict[str, dict[str, Tick]] = {}
        self.newest = 0
        self.book = OpportunityBook()


class DirectDetector:
    State = PairState

    def __init__(self, config: ArbitrageSettings) -> None:
        self.config = config
        self.limits = config.thresholds("direct")
        self._sides: dict[str, tuple[str, str]] = {}  # symbol -> (A/B, B/A) of its pair, worked out once

    @staticmethod
    def key_for(tick: Tick) -> str:
        return pair_key(tick.symbol)

    def on_tick(self, state: PairState, tick: Tick, now_ms: int) -> list[Signal]:
        """Apply one tick of A/B or B/A and return the signals it opened, peaked or closed."""
        symbol = tick.symbol
        by_venue = state.quotes.get(symbol)
        if by_venue is None:
            by_venue = state.quotes[symbol] = {}
        previous = by_venue.get(tick.venue)
        if previous is not None and previous.ts > tick.ts:
            return []
        by_venue[tick.venue] = tick
        if tick.ts > state.newest:
            state.newest = tick.ts
        sides = self._sides.get(symbol)
        if sides is None:
            forward = pair_key(symbol)
            base, quote = forward.split("/")
            sides = self._sides[symbol] = (forward, f"{quote}/{base}")
        forwards, inverses = state.quotes.get(sides[0]), state.quotes.get(sides[1])
        if not forwards or not inverses:
            return []
        limits = self.limits
        oldest_allowed = state.newest - limits.max_quote_age_ms
        book = state.book
        out: list[Signal] = []
        for ab in forwards.values():
            fee_ab = self.config.fee(ab.venue)
            for ba in inverses.values():
                fee_ba = self.config.fee(ba.venue)
                fresh = ab.ts >= oldest_allowed and ba.ts >= oldest_allowed
                sell_both: list[Step] = [(ab, "sell", fee_ab), (ba, "sell", fee_ba)]
                buy_both: list[Step] = [(ba, "buy", fee_ba), (ab, "buy", fee_ab)]
                for steps in (sell_both, buy_both):
                    profit = cycle_profit_bps(steps)
                    if not book.open and profit <= limits.min_profit_bps:
                        continue  # the common case: nothing open, nothing to open
                    route = route_of(legs_of(steps))
                    if fresh and profit > limits.min_profit_bps:
                        signal = settle_cycle(book, "direct", route, steps, profit, limits, tick.ts, now_ms)
                    else:
                        signal = book.unprofitable(route, tick.ts)
                    if signal is not None:
                        out.append(signal)
        return out
