"""Arbitrage detectors on one core: triangular per-tick cost at 50 vs 1,000 symbols on one venue,
cross-exchange and direct ticks/s, and what sizing by walking 20-level books costs (the same ticks with
and without their books: detection, and decoding the JSON the job reads).

The venue looks like a large crypto exchange: every asset trades against USDT, BTC and ETH, so
an asset's pair closes two triangles while the three hub pairs close hundreds. Quotes follow a
random walk around consistent prices, with one tick in a hundred mispriced enough to open (and
later close) an opportunity, so the signal path is exercised too.
"""
from __future__ import annotations

import random
import time

from core.contracts.tick import Tick, decode_tick, with_levels
from core.settings import ArbitrageSettings

T0 = 1_700_000_000_000
HUBS = ("USDT", "BTC", "ETH")


def add_arguments(parser) -> None:
    parser.add_argument("--ticks", type=int, default=200_000, help="measured ticks per case")
    parser.add_argument("--small", type=int, default=50, help="symbols on the small venue")
    parser.add_argument("--large", type=int, default=1_000, help="symbols on the large venue")
    parser.add_argument("--levels", type=int, default=20, help="book levels a side in the depth cases")
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


def with_books(ticks: list[Tick], levels: int, rng: random.Random) -> list[Tick]:
    """The same quotes, each with `levels` levels a side, one basis point apart, of random sizes."""
    out = []
    for tick in ticks:
        bids = [(tick.bid * (1.0 - 1e-4 * k), tick.bid_size if k == 0 else rng.uniform(0.1, 10)) for k in range(levels)]
        asks = [(tick.ask * (1.0 + 1e-4 * k), tick.ask_size if k == 0 else rng.uniform(0.1, 10)) for k in range(levels)]
        out.append(with_levels(tick, bids, asks))
    return out


def depth_case(detector_class, config: ArbitrageSettings, venues: tuple[str, ...], symbols: list[str],
               value: dict[str, float], ticks: int, levels: int, rng: random.Random) -> dict:
    """The same run twice, on fresh states: top-of-book ticks, then the same ticks with their books."""
    warm = walk(venues, symbols, value, 0, rng, warm=True)
    measured = walk(venues, symbols, value, ticks, rng, warm=False)
    out: dict = {}
    for name, run_ticks in (("top", warm + measured), ("books", with_books(warm + measured, levels, rng))):
        states: dict = {}
        drive(detector_class(config), states, run_ticks[:len(warm)])
        seconds, signals = drive(detector_class(config), states, run_ticks[len(warm):])
        out[f"{name}_ticks_per_s"], out[f"{name}_signals"] = ticks / seconds, signals
    out["books_vs_top"] = out["books_ticks_per_s"] / out["top_ticks_per_s"]
    return out


def decode_case(ticks: list[Tick], levels: int, rng: random.Random) -> dict:
    """decode_tick over the JSON the job reads from `ticks`, with and without the books."""
    import orjson

    out: dict = {}
    for name, run_ticks in (("top", ticks), ("books", with_books(ticks, levels, rng))):
        values = [orjson.dumps(tick.to_json_dict()) for tick in run_ticks]
        started = time.perf_counter()
        for value in values:
            decode_tick(value)
        out[f"{name}_ticks_per_s"] = len(values) / (time.perf_counter() - started)
    out["books_vs_top"] = out["books_ticks_per_s"] / out["top_ticks_per_s"]
    return out


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

    from core.arbitrage.triangular import TriangularDetector

    levels = args.levels
    cross_depth = depth_case(CrossExchangeDetector, config, ("binance", "okx", "bybit", "kraken", "coinbase"),
                             symbols, value, args.ticks, levels, rng)
    figures.update({f"cross_exchange_{levels}_levels_{k}": v for k, v in cross_depth.items()})
    small_symbols, small_value = venue_symbols(args.small)
    triangular_depth = depth_case(TriangularDetector, config, ("binance",), small_symbols, small_value, args.ticks,
                                  levels, rng)
    figures.update({f"triangular_small_{levels}_levels_{k}": v for k, v in triangular_depth.items()})
    decoded = decode_case(walk(("binance",), symbols, value, min(args.ticks, 50_000), rng, warm=False), levels, rng)
    figures.update({f"decode_{levels}_levels_{k}": v for k, v in decoded.items()})
    return figures
