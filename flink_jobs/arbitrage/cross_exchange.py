"""Cross-exchange arbitrage: buy a symbol at one venue's ask, sell it at another's bid.

Only quotes within `max_quote_age_ms` of the symbol's newest quote (event time) are compared, so
a venue whose feed stalled cannot make a phantom opportunity. Profit is net of both taker fees.
"""
from __future__ import annotations

from ascep.settings import ArbitrageSettings
from ascep.signal import Signal
from ascep.tick import Tick

from .lifecycle import OpportunityBook


def net_profit_bps(buy_ask: float, buy_fee: float, sell_bid: float, sell_fee: float) -> float:
    return (sell_bid * (1.0 - sell_fee) / (buy_ask * (1.0 + buy_fee)) - 1.0) * 10_000.0


def executable_size(buy: Tick, sell: Tick) -> float | None:
    if buy.ask_size is None or sell.bid_size is None:
        return None
    return min(buy.ask_size, sell.bid_size)


class SymbolState:
    """Latest quote per venue and the open opportunities of one symbol: the keyed state."""

    __slots__ = ("quotes", "book", "newest")

    def __init__(self) -> None:
        self.quotes: dict[str, Tick] = {}
        self.book = OpportunityBook()
        self.newest = 0


class CrossExchangeDetector:
    def __init__(self, config: ArbitrageSettings) -> None:
        self.config = config
        self._fees: dict[str, float] = {}

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
        oldest_allowed = state.newest - self.config.max_quote_age_ms
        min_profit = self.config.min_profit_bps
        out: list[Signal] = []
        quotes = state.quotes
        for buy_venue, buy in quotes.items():
            for sell_venue, sell in quotes.items():
                if buy_venue == sell_venue:
                    continue
                route = (f"buy:{buy_venue}:{tick.symbol}", f"sell:{sell_venue}:{tick.symbol}")
                fresh = buy.ts >= oldest_allowed and sell.ts >= oldest_allowed
                profit = net_profit_bps(buy.ask, self.fee(buy_venue), sell.bid, self.fee(sell_venue)) if fresh else 0.0
                if fresh and profit > min_profit:
                    legs = [{"venue": buy_venue, "symbol": tick.symbol, "side": "buy", "price": buy.ask},
                            {"venue": sell_venue, "symbol": tick.symbol, "side": "sell", "price": sell.bid}]
                    signal = state.book.profitable("cross_exchange", route, legs, profit,
                                                   executable_size(buy, sell), tick.ts, now_ms)
                else:
                    signal = state.book.unprofitable(route, tick.ts) if state.book.open else None
                if signal is not None:
                    out.append(signal)
        return out
