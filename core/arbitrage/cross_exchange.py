"""Cross-exchange arbitrage: buy a symbol at one venue's ask, sell it at another's bid.

Only quotes within `max_quote_age_ms` of the symbol's newest quote (event time) are compared, so
a venue whose feed stalled cannot make a phantom opportunity. Profit is net of both taker fees and
taken at the top of book; the size is the base quantity whose VWAP profit, walking the books the
quotes carry (or their top of book), stays at or above the minimum profit (core/arbitrage/depth.py).
"""
from __future__ import annotations

from core.contracts.signal import Signal, route_part
from core.contracts.tick import Tick
from core.settings import ArbitrageSettings

from .cycles import legs_of, within_minimums
from .depth import average_price, ladder, vwap_size
from .lifecycle import OpportunityBook


def net_profit_bps(buy_ask: float, buy_fee: float, sell_bid: float, sell_fee: float) -> float:
    return (sell_bid * (1.0 - sell_fee) / (buy_ask * (1.0 + buy_fee)) - 1.0) * 10_000.0


class SymbolState:
    """Latest quote (with its book, if it came with one) per venue and the open opportunities of one symbol:
    the keyed state."""

    __slots__ = ("quotes", "book", "newest")

    def __init__(self) -> None:
        self.quotes: dict[str, Tick] = {}
        self.book = OpportunityBook()
        self.newest = 0

    def __setstate__(self, state: tuple[None, dict]) -> None:
        """Also a state pickled when depth was kept beside the quotes (a "depth" slot, never filled by the job)."""
        for name in self.__slots__:
            setattr(self, name, state[1][name])


class CrossExchangeDetector:
    State = SymbolState

    def __init__(self, config: ArbitrageSettings) -> None:
        self.config = config
        self.limits = config.thresholds("cross_exchange")
        self._fees: dict[str, float] = {}

    @staticmethod
    def key_for(tick: Tick) -> str:
        """The Flink key: all venues of a symbol meet in one state."""
        return tick.symbol

    def fee(self, venue: str) -> float:
        fee = self._fees.get(venue)
        if fee is None:
            fee = self._fees[venue] = self.config.fee(venue)
        return fee

    def on_tick(self, state: SymbolState, tick: Tick, now_ms: int) -> list[Signal]:
        """Apply one tick of the state's symbol and return the signals it opened, peaked or closed."""
        previous = state.quotes.get(tick.venue)
        if previous is not None and previous.ts > tick.ts:
            return []  # an older quote than the one held: the newer one stands
        state.quotes[tick.venue] = tick
        if tick.ts > state.newest:
            state.newest = tick.ts
        limits = self.limits
        oldest_allowed = state.newest - limits.max_quote_age_ms
        out: list[Signal] = []
        quotes = state.quotes
        book = state.book
        for buy_venue, buy in quotes.items():
            for sell_venue, sell in quotes.items():
                if buy_venue == sell_venue:
                    continue
                fresh = buy.ts >= oldest_allowed and sell.ts >= oldest_allowed
                profit = net_profit_bps(buy.ask, self.fee(buy_venue), sell.bid, self.fee(sell_venue)) if fresh else 0.0
                if not book.open and profit <= limits.min_profit_bps:
                    continue  # the common case: nothing open, nothing to open
                route = (route_part("buy", buy_venue, tick.symbol), route_part("sell", sell_venue, tick.symbol))
                if fresh and profit > limits.min_profit_bps:
                    signal = self._profitable(state, buy, sell, route, profit, tick.ts, now_ms)
                else:
                    signal = book.unprofitable(route, tick.ts)
                if signal is not None:
                    out.append(signal)
        return out

    def _profitable(self, state: SymbolState, buy: Tick, sell: Tick, route: tuple[str, str], profit: float,
                    event_time: int, now_ms: int) -> Signal | None:
        asks, bids = ladder(buy, "buy"), ladder(sell, "sell")
        size = vwaps = None
        if asks is not None and bids is not None:
            size = vwap_size(asks, self.fee(buy.venue), bids, self.fee(sell.venue), self.limits.min_profit_bps)
            if size > 0.0 and (buy.asks is not None or sell.bids is not None):  # a book was walked
                vwaps = [average_price(asks, size), average_price(bids, size)]
        if not within_minimums(size, 0.0 if size is None else size * buy.ask, self.limits):
            return state.book.unprofitable(route, event_time)
        legs = legs_of([(buy, "buy", self.fee(buy.venue)), (sell, "sell", self.fee(sell.venue))], vwaps)
        return state.book.profitable("cross_exchange", route, legs, profit, size, event_time, now_ms)
