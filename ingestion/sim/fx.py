"""A seeded FX market: ten pairs on an ECN, and a dealer that also quotes every pair inverted.

The dealer's inverse quotes (USD/EUR beside EUR/USD) are what a direct A/B vs B/A dislocation
is planted on; the crosses (EUR/JPY, GBP/JPY, EUR/GBP) make triangles with the majors. The same
engine as the crypto market keeps every cross rate equal to the ratio of its legs.
"""
from __future__ import annotations

from core.contracts.tick import parse_symbol

from .market import Asset, SimulatedMarket

FX_ASSETS = {
    "USD": Asset(1.0, 0.0),
    "EUR": Asset(1.08, 0.07),
    "GBP": Asset(1.27, 0.08),
    "JPY": Asset(1 / 150.0, 0.10),
    "CHF": Asset(1 / 0.88, 0.07),
    "AUD": Asset(0.66, 0.10),
    "CAD": Asset(1 / 1.36, 0.06),
    "NZD": Asset(0.61, 0.11),
}
FX_PAIRS = ("EUR/USD", "GBP/USD", "USD/JPY", "EUR/GBP", "USD/CHF", "AUD/USD", "USD/CAD", "NZD/USD",
            "EUR/JPY", "GBP/JPY")
FX_SPREAD_BPS = {"EUR/USD": 0.8, "USD/JPY": 1.0, "GBP/USD": 1.2, "USD/CHF": 1.5, "AUD/USD": 1.5,
                 "USD/CAD": 1.5, "NZD/USD": 2.0}
FX_VENUES = ("fx_ecn", "fx_dealer")
FX_LATENCY_MS = {"fx_ecn": 5, "fx_dealer": 40}
FX_SPREAD_FACTOR = {"fx_ecn": 1.0, "fx_dealer": 2.0}


def inverse(symbol: str) -> str:
    base, quote = parse_symbol(symbol).split("/")
    return f"{quote}/{base}"


def fx_market(seed: int = 0, rate: float = 50.0, pairs: tuple[str, ...] = FX_PAIRS, **options) -> SimulatedMarket:
    """The FX market; `options` are SimulatedMarket's (opportunity_every_s, kinds, profit_bps, ...)."""
    ecn, dealer = FX_VENUES
    venues = {ecn: list(pairs), dealer: [*pairs, *map(inverse, pairs)]}
    spreads = {**FX_SPREAD_BPS, **{inverse(s): bps for s, bps in FX_SPREAD_BPS.items()}}
    options.setdefault("kinds", ("direct", "triangular", "cross_exchange"))
    return SimulatedMarket(seed=seed, venues=venues, rate=rate, assets=FX_ASSETS, latency_ms=FX_LATENCY_MS,
                           spread_bps=spreads, default_spread_bps=3.0, spread_factor=FX_SPREAD_FACTOR,
                           notional=1_000_000.0, **options)
