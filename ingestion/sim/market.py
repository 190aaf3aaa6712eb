"""A seeded, reproducible simulated multi-venue market with planted arbitrage opportunities.

Why simulate: the live exchanges are not reachable from every machine, the recordings hold no
cross-exchange opportunities, and a detector can only be shown to work (and to stay quiet) on a
stream where we know exactly which opportunities exist. So every asset has one true price (a
random walk against the numeraire), every venue's quote of X/Y is derived from P(X)/P(Y), and
the only arbitrage in the stream is what `plant` put there, recorded in `planted`.

Pure: no I/O, no clock, no sleeping. The same seed and arguments give the same ticks.
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from core.contracts.tick import Tick, parse_symbol
from core.settings import ArbitrageSettings

MS_PER_YEAR = 365 * 86_400 * 1_000
PLANT_KINDS = ("cross_exchange", "triangular", "direct")


@dataclass(frozen=True, slots=True)
class Asset:
    price: float  # starting price in the numeraire
    annual_vol: float  # lognormal volatility per year; 0 for the numeraire


CRYPTO_ASSETS = {
    "USDT": Asset(1.0, 0.0),
    "BTC": Asset(60_000.0, 0.6),
    "ETH": Asset(3_000.0, 0.75),
    "SOL": Asset(150.0, 1.0),
    "BNB": Asset(550.0, 0.8),
    "XRP": Asset(0.6, 1.0),
}
CRYPTO_SYMBOLS = ("BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "SOL/BTC", "SOL/ETH",
                  "BNB/USDT", "BNB/BTC", "XRP/USDT", "XRP/BTC")
CRYPTO_VENUES = ("binance", "coinbase", "kraken")
# Exchange-time lag of each venue behind the true price: the skew a detector must tolerate.
CRYPTO_LATENCY_MS = {"binance": 15, "coinbase": 60, "kraken": 120}
# How much wider than the tightest venue each venue quotes.
CRYPTO_SPREAD_FACTOR = {"binance": 1.0, "coinbase": 1.6, "kraken": 2.2}
CRYPTO_SPREAD_BPS = {"BTC/USDT": 1.0, "ETH/USDT": 1.5}  # full spread at factor 1; others get the default
DEFAULT_SPREAD_BPS = 5.0


@dataclass(frozen=True, slots=True)
class Plant:
    """One planted opportunity: `symbol` on `venue` is quoted `factor` times its true price during [start, end)."""

    kind: str  # "cross_exchange", "triangular" or "direct" (the signal type that should find it)
    venue: str  # the venue whose quote is dislocated
    symbol: str  # the dislocated quote
    legs: tuple[tuple[str, str], ...]  # every (venue, symbol) the opportunity trades, dislocated one first
    factor: float
    profit_bps: float  # net of taker fees, at the widest simulated spreads
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Widening:
    """One quote's spread `factor` times its usual during [start, end): what a liquidity gap looks like. It makes
    no arbitrage (a wider spread only costs more), and falls halfway between two plants, so it spoils none."""

    venue: str
    symbol: str
    factor: float
    start_ms: int
    end_ms: int


@dataclass(slots=True)
class _Quoting:
    """Static quoting parameters of one venue's symbol, fixed at construction."""

    venue: str
    symbol: str
    base: str
    quote: str
    half_spread: float  # fraction of mid, before per-tick variation
    tick_size: float
    decimals: int
    latency_ms: int
    notional: float  # typical top-of-book size, in numeraire units


@dataclass(slots=True)
class _Walk:
    log_price: float
    sigma_per_sqrt_ms: float
    updated_ms: float


@dataclass
class _State:
    rng: random.Random
    walks: dict[str, _Walk]
    dislocations: dict[tuple[str, str], float] = field(default_factory=dict)
    widened: dict[tuple[str, str], float] = field(default_factory=dict)
    pending: list = field(default_factory=list)  # heap of (ts, seq, Tick) not yet safe to emit
    seq: itertools.count = field(default_factory=itertools.count)
    depth_rng: random.Random | None = None  # the book levels' own stream, when the market has books


MAX_SPREAD_JITTER = 1.5  # a quote's half spread varies in [1, 1.5] x its base, per tick
WIDENING_FACTOR = (4.0, 8.0)  # a widened quote's spread, times its usual


class SimulatedMarket:
    def __init__(self, seed: int = 0, venues: Sequence[str] | Mapping[str, Sequence[str]] = CRYPTO_VENUES,
                 symbols: Sequence[str] = CRYPTO_SYMBOLS, rate: float = 50.0, opportunity_every_s: float = 20.0,
                 opportunity_duration_s: float = 3.0, profit_bps: tuple[float, float] = (5.0, 30.0),
                 kinds: Sequence[str] = ("cross_exchange", "triangular"),
                 assets: Mapping[str, Asset] = CRYPTO_ASSETS, latency_ms: Mapping[str, int] = CRYPTO_LATENCY_MS,
                 spread_bps: Mapping[str, float] = CRYPTO_SPREAD_BPS, default_spread_bps: float = DEFAULT_SPREAD_BPS,
                 spread_factor: Mapping[str, float] = CRYPTO_SPREAD_FACTOR, volatility_scale: float = 1.0,
                 notional: float = 25_000.0, fees: ArbitrageSettings | None = None,
                 spread_widenings: bool = False, book_levels: int = 0) -> None:
        """`venues` is a list (each quotes every symbol) or a mapping venue -> its own symbols.

        `rate` is ticks per second over all quotes; a planted opportunity starts every
        `opportunity_every_s` seconds of event time (0 plants none) and lasts `opportunity_duration_s`.
        With `spread_widenings`, one quote's spread widens (WIDENING_FACTOR) for as long, halfway between plants.
        With `book_levels`, every tick carries that many levels of a book behind its quote (level 0 the quote),
        drawn from a random stream of their own: the quotes are those of the market without books.
        """
        if rate <= 0:
            raise ValueError(f"rate must be > 0 ticks per second, got {rate}")
        if opportunity_every_s < 0 or opportunity_duration_s <= 0:
            raise ValueError("opportunity_every_s must be >= 0 and opportunity_duration_s > 0")
        if opportunity_every_s and opportunity_duration_s >= opportunity_every_s:
            raise ValueError(f"opportunity_duration_s ({opportunity_duration_s}) must be shorter than "
                             f"opportunity_every_s ({opportunity_every_s}) so planted opportunities do not overlap")
        if spread_widenings and opportunity_every_s and opportunity_duration_s > opportunity_every_s / 2:
            raise ValueError(f"with spread widenings, opportunity_duration_s ({opportunity_duration_s}) must be at "
                             f"most half of opportunity_every_s ({opportunity_every_s}), so widenings fall between "
                             f"plants")
        if book_levels < 0:
            raise ValueError(f"book_levels must be >= 0, got {book_levels}")
        if not 0 < profit_bps[0] <= profit_bps[1]:
            raise ValueError(f"profit_bps must be a range (low, high) with 0 < low <= high, got {profit_bps}")
        unknown = set(kinds) - set(PLANT_KINDS)
        if unknown:
            raise ValueError(f"unknown opportunity kinds {sorted(unknown)}; known: {list(PLANT_KINDS)}")
        self.seed = seed
        self.rate = rate
        self.every_ms = opportunity_every_s * 1000.0
        self.duration_ms = int(opportunity_duration_s * 1000)
        self.profit_bps = profit_bps
        self.spread_widenings = spread_widenings
        self.book_levels = book_levels
        self.assets = dict(assets)
        self.volatility_scale = volatility_scale
        self.fees = fees or ArbitrageSettings()
        venue_symbols = dict(venues) if isinstance(venues, Mapping) else {v: list(symbols) for v in venues}
        if not venue_symbols:
            raise ValueError("at least one venue is needed")
        self.quoting: list[_Quoting] = []
        for venue, its_symbols in venue_symbols.items():
            if not venue or venue != venue.lower() or ":" in venue:
                raise ValueError(f"venue name {venue!r} must be non-empty lowercase without ':'")
            for symbol in its_symbols:
                self.quoting.append(self._quoting(venue, symbol, latency_ms, spread_bps, default_spread_bps,
                                                  spread_factor, notional))
        self._by_key = {(q.venue, q.symbol): q for q in self.quoting}
        self.opportunities = {kind: self._find_routes(kind) for kind in kinds}
        missing = [kind for kind, routes in self.opportunities.items() if not routes]
        if missing and self.every_ms:
            raise ValueError(f"no route for planted {missing} among these venues and symbols")
        self.planted: list[Plant] = []
        self.widenings: list[Widening] = []

    def _quoting(self, venue, symbol, latency_ms, spread_bps, default_spread_bps, spread_factor, notional) -> _Quoting:
        try:
            base, quote = parse_symbol(symbol).split("/")
        except ValueError as exc:
            raise ValueError(f"venue {venue!r}: {exc}") from None
        for asset in (base, quote):
            if asset not in self.assets:
                raise ValueError(f"symbol {symbol!r}: no starting price for asset {asset!r}; add it to assets=")
        mid = self.assets[base].price / self.assets[quote].price
        exponent = math.floor(math.log10(mid)) - 5  # six significant digits, as exchanges quote
        half_spread = spread_bps.get(symbol, default_spread_bps) * spread_factor.get(venue, 1.5) / 20_000.0
        latency = latency_ms.get(venue)
        if latency is None:  # a stable lag for a venue without one, from its name
            latency = 10 + sum(map(ord, venue)) % 150
        return _Quoting(venue, symbol, base, quote, half_spread, 10.0 ** exponent, max(0, -exponent),
                        int(latency), notional)

    def _find_routes(self, kind: str) -> list[tuple[tuple[str, str], ...]]:
        """Every set of legs an opportunity of `kind` can be planted on; the first leg is the one dislocated."""
        by_venue: dict[str, list[_Quoting]] = {}
        for q in self.quoting:
            by_venue.setdefault(q.venue, []).append(q)
        routes: list[tuple[tuple[str, str], ...]] = []
        if kind == "cross_exchange":
            for a, b in itertools.permutations(by_venue, 2):
                shared = {q.symbol for q in by_venue[a]} & {q.symbol for q in by_venue[b]}
                routes += [((a, s), (b, s)) for s in sorted(shared)]
        elif kind == "direct":
            for venue, qs in by_venue.items():
                pairs = {(q.base, q.quote) for q in qs}
                routes += [((venue, f"{b}/{a}"), (venue, f"{a}/{b}")) for a, b in sorted(pairs) if (b, a) in pairs]
        else:  # triangular: three pairs on one venue that close a cycle of three assets
            for venue, qs in by_venue.items():
                pair_of = {frozenset((q.base, q.quote)): q.symbol for q in qs}
                assets = sorted({a for q in qs for a in (q.base, q.quote)})
                for trio in itertools.combinations(assets, 3):
                    legs = [pair_of.get(frozenset(p)) for p in itertools.combinations(trio, 2)]
                    if all(legs):
                        for first in range(3):  # any leg may be the dislocated one
                            ordered = legs[first:] + legs[:first]
                            routes.append(tuple((venue, s) for s in ordered))
        return routes

    def ticks(self, start_ms: int) -> Iterator[Tick]:
        """An endless stream in event-time order starting at `start_ms`; resets `planted` and `widenings`."""
        rng = random.Random(self.seed)
        walks = {name: _Walk(math.log(asset.price),
                             asset.annual_vol * self.volatility_scale / math.sqrt(MS_PER_YEAR), float(start_ms))
                 for name, asset in self.assets.items()}
        state = _State(rng, walks, depth_rng=random.Random(f"books:{self.seed}") if self.book_levels else None)
        self.planted, self.widenings = [], []
        by_key = self._by_key
        mean_gap_ms = 1000.0 / self.rate
        now = float(start_ms)
        next_plant = start_ms + self.every_ms if self.every_ms else math.inf
        next_widening = start_ms + self.every_ms / 2 if self.every_ms and self.spread_widenings else math.inf
        # Widenings draw from a stream of their own and take no extra quote: the market is the one without them,
        # but for the widened quotes' spreads (each shows from its next tick on).
        widen_rng = random.Random(f"widenings:{self.seed}")
        active: Plant | None = None
        widened: Widening | None = None
        while True:
            now += rng.expovariate(1.0 / mean_gap_ms)
            if active is not None and now >= active.end_ms:
                del state.dislocations[(active.venue, active.symbol)]
                self._quote(state, by_key[(active.venue, active.symbol)], active.end_ms)  # the quote goes back
                active = None
            if widened is not None and now >= widened.end_ms:
                del state.widened[(widened.venue, widened.symbol)]
                widened = None
            if now >= next_widening:
                widened = self._widen(state, widen_rng, int(next_widening))
                self.widenings.append(widened)
                next_widening += self.every_ms
            if now >= next_plant:
                active = self._plant(state, int(next_plant))
                self.planted.append(active)
                for key in active.legs:
                    self._quote(state, by_key[key], active.start_ms)
                next_plant += self.every_ms
            self._quote(state, self.quoting[rng.randrange(len(self.quoting))], now)
            while state.pending and state.pending[0][0] <= now:
                yield heapq.heappop(state.pending)[2]

    def _plant(self, state: _State, start_ms: int) -> Plant:
        rng = state.rng
        kind = rng.choice(sorted(self.opportunities))
        legs = rng.choice(self.opportunities[kind])
        venue, symbol = legs[0]
        profit = rng.uniform(*self.profit_bps)
        # Each leg costs its taker fee and at most the widest half spread; the dislocation must pay for all.
        kept = 1.0
        for leg in legs:
            kept *= (1.0 - self.fees.fee(leg[0])) * (1.0 - self._by_key[leg].half_spread * MAX_SPREAD_JITTER)
        factor = (1.0 + profit / 10_000.0) / kept
        if rng.random() < 0.5:
            factor = 1.0 / factor  # quoted too low instead: the cycle runs the other way round
        state.dislocations[(venue, symbol)] = factor
        return Plant(kind, venue, symbol, legs, factor, profit, start_ms, start_ms + self.duration_ms)

    def _widen(self, state: _State, rng: random.Random, start_ms: int) -> Widening:
        q = rng.choice(self.quoting)
        factor = rng.uniform(*WIDENING_FACTOR)
        state.widened[(q.venue, q.symbol)] = factor
        return Widening(q.venue, q.symbol, factor, start_ms, start_ms + self.duration_ms)

    def _true_price(self, state: _State, asset: str, now: float) -> float:
        walk = state.walks[asset]
        elapsed = now - walk.updated_ms
        if elapsed > 0 and walk.sigma_per_sqrt_ms:
            sigma = walk.sigma_per_sqrt_ms * math.sqrt(elapsed)
            walk.log_price += state.rng.gauss(-0.5 * sigma * sigma, sigma)
            walk.updated_ms = now
        return math.exp(walk.log_price)

    def _quote(self, state: _State, q: _Quoting, now: float) -> None:
        rng = state.rng
        base_value = self._true_price(state, q.base, now)  # in the numeraire, like the notional
        mid = base_value / self._true_price(state, q.quote, now)
        mid *= state.dislocations.get((q.venue, q.symbol), 1.0)
        half = q.half_spread * rng.uniform(1.0, MAX_SPREAD_JITTER) * state.widened.get((q.venue, q.symbol), 1.0)
        bid_steps = math.floor(mid * (1.0 - half) / q.tick_size)
        ask_steps = max(math.ceil(mid * (1.0 + half) / q.tick_size), bid_steps + 1)
        bid = round(bid_steps * q.tick_size, q.decimals)
        ask = round(ask_steps * q.tick_size, q.decimals)
        bid_size = round(q.notional * rng.lognormvariate(0.0, 0.8) / base_value, 6) or 1e-6
        ask_size = round(q.notional * rng.lognormvariate(0.0, 0.8) / base_value, 6) or 1e-6
        ts = int(now) + q.latency_ms
        tick = Tick(q.venue, q.symbol, bid, ask, bid_size, ask_size, ts)
        if state.depth_rng is not None:
            tick = self._with_book(state.depth_rng, q, tick, base_value)
        heapq.heappush(state.pending, (ts, next(state.seq), tick))

    def _with_book(self, rng: random.Random, q: _Quoting, tick: Tick, base_value: float) -> Tick:
        """Levels behind the quote, one to three price steps apart, each about the top's typical size."""
        bids, asks = [(tick.bid, tick.bid_size)], [(tick.ask, tick.ask_size)]
        for _ in range(self.book_levels - 1):
            size = round(q.notional * rng.lognormvariate(0.0, 0.8) / base_value, 6) or 1e-6
            price = round(bids[-1][0] - rng.randint(1, 3) * q.tick_size, q.decimals)
            if price > 0:
                bids.append((price, size))
            size = round(q.notional * rng.lognormvariate(0.0, 0.8) / base_value, 6) or 1e-6
            asks.append((round(asks[-1][0] + rng.randint(1, 3) * q.tick_size, q.decimals), size))
        return tick._replace(bids=tuple(bids), asks=tuple(asks))
