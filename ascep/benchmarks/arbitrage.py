"""Arbitrage detectors on one core: triangular per-tick cost at 50 vs 1,000 symbols on one venue,
cross-exchange and direct ticks/s.

The venue looks like a large crypto exchange: every asset trades against USDT, BTC and ETH, so
an asset's pair closes two triangles while the three hub pairs close hundreds. Quotes follow a
random walk around consistent prices, with one tick in a hundred mispriced enough to open (and
later close) an opportunity, so the signal path is exercised too.
"""
from __future__ import annotations

import random
import time

from core.contracts.tick import Tick
from core.settings import ArbitrageSettings

T0 = 1_700_000_000_000
HUBS = ("USDT", "BTC", "ETH")


def add_arguments(parser) -> None:
    parser.add_argument("--ticks", type=int, default=200_000, help="measured ticks per case")
    parser.add_argument("--small", type=int, default=50, help="symbols on the small venue")
    parser.add_argument("--large", type=int, default=1_000, help="symbols on the large venue")
    parser.add_argument("--seed", type=int, default=7)


def venue_symbols(count: int) -> tuple[list[str], dict[str, float]]:
    """`count` pairs (rounded to the hub layout) and a USDT value per currency."""
    assets = [f"A{i}" for i in range(max(1, (count - 3) // 3))]
    symbols = ["BTC/USDT", "ETH/USDT", "ETH/BTC"] + [f"{a}/{hub}" for a in assets for hub in HUBS]
    value = {"USDT": 1.0, "BTC": 60_000.0, "ETH": 3_000.0}
    value.update((a, 10 ** random.Random(a).uniform(-2, 2)) for a in assets)
    return symbols, value


def walk(venues: tuple[str, ...], symbols: list[str], value: dict[str, float], count: int,
         rng: random.Random, *, warm: bool) -> list[Tick]:
    """Ticks over random (venue, symbol); `warm` first quotes every pair once, in order."""
    ticks, ts = [], T0
    order = [(v, s) for v in venues for s in symbols] if warm else []
    for i in range(count if not warm else len(order)):
        venue, symbol = order[i] if warm else (rng.choice(venues), rng.choice(symbols))
        base, quote = symbol.split("/")
        value[base] *= 1.0 + rng.gauss(0.0, 0.0002)
        mid = value[base] / value[quote] * (1.0 + (rng.choice((-1, 1)) * 0.006 if rng.random() < 0.01 else 0.0))
        ts += rng.randrange(0, 3)
        ticks.append(Tick(venue, symbol, mid * 0.99995, mid * 1.00005, rng.uniform(0.1, 10), rng.uniform(0.1, 10), ts))
    return ticks


def drive(detector, states: dict, ticks: list[Tick]) -> tuple[float, int]:
    """Seconds spent and signals emitted, keying each tick the way the Flink job does."""
    key_for, state_class, on_tick = detector.key_for, detector.State, detector.on_tick
    signals = 0
    started = time.perf_counter()
    for tick in ticks:
        key = key_for(tick)
        state = states.get(key)
        if state is None:
            state = states[key] = state_class()
        signals += len(on_tick(state, tick, 0))
    return time.perf_counter() - started, signals


def triangular_case(config: ArbitrageSettings, count: int, ticks: int, rng: random.Random) -> dict:
    from core.arbitrage.triangular import TriangularDetector

    detector, states = TriangularDetector(config), {}
    symbols, value = venue_symbols(count)
    drive(detector, states, walk(("binance",), symbols, value, 0, rng, warm=True))
    seconds, signals = drive(detector, states, walk(("binance",), symbols, value, ticks, rng, warm=False))
    cycles = states["binance"].cycles
    return {"symbols": len(symbols), "cycles": sum(map(len, cycles.values())) // 3,
            "cycles_per_tick": sum(map(len, cycles.values())) / len(symbols),
            "most_cycles_one_pair": max(map(len, cycles.values())),
            "us_per_tick": seconds / ticks * 1e6, "signals": signals}


def throughput(detector, venues: tuple[str, ...], symbols: list[str], value: dict[str, float], ticks: int,
               rng: random.Random) -> dict:
    states: dict = {}
    drive(detector, states, walk(venues, symbols, value, 0, rng, warm=True))
    seconds, signals = drive(detector, states, walk(venues, symbols, value, ticks, rng, warm=False))
    return {"ticks_per_s": ticks / seconds, "us_per_tick": seconds / ticks * 1e6, "signals": signals}


def run(args) -> dict:
    from core.arbitrage.cross_exchange import CrossExchangeDetector
    from core.arbitrage.direct import DirectDetector

    rng = random.Random(args.seed)
    config = ArbitrageSettings()
    small = triangular_case(config, args.small, args.ticks, rng)
    large = triangular_case(config, args.large, args.ticks, rng)
    figures: dict = {}
    for name, case in (("small", small), ("large", large)):
        figures.update({f"triangular_{name}_{k}": v for k, v in case.items()})
    figures["triangular_large_vs_small"] = large["us_per_tick"] / small["us_per_tick"]

    symbols, value = venue_symbols(300)
    cross = throughput(CrossExchangeDetector(config), ("binance", "okx", "bybit", "kraken", "coinbase"),
                       symbols, value, args.ticks, rng)
    figures.update({f"cross_exchange_5_venues_{k}": v for k, v in cross.items()})

    currencies = ["USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD"]
    fx_value = {c: rng.uniform(0.5, 2.0) for c in currencies}
    pairs = [f"{a}/{b}" for a in currencies for b in currencies if a != b]
    direct = throughput(DirectDetector(config), ("lmax", "oanda"), pairs, fx_value, args.ticks, rng)
    figures.update({f"direct_2_venues_{k}": v for k, v in direct.items()})
    return figures
