"""Simulated markets: how fast the pure generators make ticks, so the live rate is never CPU-bound.

`ascep ingest sim` paces ticks to the clock; this measures the generators unpaced, on one core,
with opportunities planted as often as the defaults allow for the worst case.
"""
from __future__ import annotations

import itertools
import time

T0 = 1_700_000_000_000


def add_arguments(parser) -> None:
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks generated per market")
    parser.add_argument("--seed", type=int, default=1)


def run(args) -> dict:
    from ingestion.sim.fx import fx_market
    from ingestion.sim.market import SimulatedMarket

    figures: dict = {}
    for name, market in (("crypto", SimulatedMarket(seed=args.seed, rate=1_000, opportunity_every_s=2,
                                                    opportunity_duration_s=1)),
                         ("fx", fx_market(seed=args.seed, rate=1_000, opportunity_every_s=2,
                                          opportunity_duration_s=1))):
        started = time.perf_counter()
        for _ in itertools.islice(market.ticks(T0), args.ticks):
            pass
        elapsed = time.perf_counter() - started
        figures[f"{name}_ticks_per_s"] = round(args.ticks / elapsed, 1)
        figures[f"{name}_planted"] = len(market.planted)
    return figures
