"""Several simulated markets as one stream: the default source of `ascep up`, crypto and FX together.

The crypto market plants cross-exchange and triangular opportunities; only the FX market, whose dealer
quotes every pair inverted as well, has direct (A/B vs B/A) ones. Each market keeps its own seed, rate and
plants, so it behaves exactly as it does alone; here their ticks are merged in event-time order.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from operator import attrgetter

from core.contracts.tick import Tick

from .fx import fx_market
from .market import Plant, SimulatedMarket, Widening


class MergedMarkets:
    def __init__(self, markets: Sequence[SimulatedMarket]) -> None:
        if not markets:
            raise ValueError("at least one market is needed")
        self.markets = list(markets)

    def ticks(self, start_ms: int) -> Iterator[Tick]:
        """Endless, in event-time order; ticks of one millisecond in the order of `markets`."""
        return heapq.merge(*(market.ticks(start_ms) for market in self.markets), key=attrgetter("ts"))

    @property
    def planted(self) -> list[Plant]:
        return sorted((plant for market in self.markets for plant in market.planted), key=attrgetter("start_ms"))

    @property
    def widenings(self) -> list[Widening]:
        return sorted((w for market in self.markets for w in market.widenings), key=attrgetter("start_ms"))


def crypto_and_fx(seed: int = 0, rate: float = 100.0, spread_widenings: bool = True, **options) -> MergedMarkets:
    """The crypto and the FX market, each at half of `rate` (ticks per second in all), with spread widenings
    between their plants unless told otherwise; `options` go to both (SimulatedMarket's opportunity_every_s,
    opportunity_duration_s, fees, ...)."""
    return MergedMarkets([SimulatedMarket(seed=seed, rate=rate / 2, spread_widenings=spread_widenings, **options),
                          fx_market(seed=seed, rate=rate / 2, spread_widenings=spread_widenings, **options)])
