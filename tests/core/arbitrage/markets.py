"""Hypothesis strategies for random markets: quotes around reference prices, some crossed, some stale.

With `arbitrage_free`, every quote brackets its reference mid (bid <= mid <= ask) and the mids are
consistent across pairs, so no route can beat a non-negative fee and a positive minimum profit.
"""
from __future__ import annotations

from hypothesis import strategies as st

from core.contracts.tick import Tick, with_levels
from core.settings import ArbitrageSettings

from .oracle import Limits

T0 = 1_700_000_000_000
DETECTIONS = ("cross_exchange", "direct", "triangular")

positive_sizes = st.floats(0.01, 10.0)
sizes = st.one_of(st.none(), st.just(0.0), positive_sizes)


@st.composite
def limits(draw, venues: list[str], notional_scale: float, *, arbitrage_free: bool = False) -> Limits:
    return Limits(
        fees_bps={v: draw(st.one_of(st.sampled_from([0.0, 10.0]), st.floats(0.0, 30.0))) for v in venues},
        min_profit_bps=draw(st.floats(0.001, 5.0) if arbitrage_free else st.one_of(st.just(0.0), st.floats(0.0, 20.0))),
        max_quote_age_ms=draw(st.sampled_from([300, 2_000, 10**9, 10**9])),
        min_size=draw(st.sampled_from([0.0, 0.5, 2.0])),
        min_notional=draw(st.sampled_from([0.0, 0.5 * notional_scale, 3.0 * notional_scale])),
    )


@st.composite
def settings_for(draw, detection: str, limits: Limits) -> ArbitrageSettings:
    """Put the thresholds either at the top level or in the detection's own section over decoys."""
    own = {"min_profit_bps": limits.min_profit_bps, "max_quote_age_ms": limits.max_quote_age_ms,
           "min_size": limits.min_size, "min_notional": limits.min_notional}
    common = {"taker_fees_bps": limits.fees_bps, "default_taker_fee_bps": 500.0}
    if draw(st.booleans()):
        return ArbitrageSettings(**common, **own)
    decoy = {"min_profit_bps": 10_000.0, "max_quote_age_ms": 0, "min_size": 1e9, "min_notional": 1e9}
    others = {name: decoy for name in DETECTIONS if name != detection}
    return ArbitrageSettings(**common, **decoy, **{detection: own}, **others)


@st.composite
def times(draw, count: int) -> list[int]:
    """Mostly forward in time, sometimes backwards (late ticks), sometimes far apart (stale quotes)."""
    out, now = [], T0
    for _ in range(count):
        now = max(T0, now + draw(st.integers(-400, 1_500)))
        out.append(now)
    return out


@st.composite
def quote(draw, venue: str, symbol: str, mid: float, ts: int, *, arbitrage_free: bool, sized: bool) -> Tick:
    """`sized` quotes always carry positive sizes, so multi-leg routes get sized too."""
    if not arbitrage_free:
        mid *= 1.0 + draw(st.floats(-0.01, 0.01))
    bid = mid * (1.0 - draw(st.floats(0.0, 0.004)))
    ask = mid * (1.0 + draw(st.floats(0.0, 0.004)))
    size = positive_sizes if sized else sizes
    return Tick(venue, symbol, bid, ask, draw(size), draw(size), ts)


@st.composite
def booked(draw, tick: Tick) -> Tick:
    """The tick, sometimes with a book of up to 20 levels a side (sizes spread over three magnitudes so a
    walk stops on a thin level as well as a thick one); never on a top of size 0, which no book has."""
    if tick.bid_size == 0.0 or tick.ask_size == 0.0 or not draw(st.booleans()):
        return tick
    return with_levels(tick, draw(_side(tick.bid, tick.bid_size, -1)), draw(_side(tick.ask, tick.ask_size, +1)))


@st.composite
def _side(draw, top_price: float, top_size: float | None, direction: int) -> list[tuple[float, float]]:
    """Levels from the top outwards: bids go down (direction -1), asks go up (+1)."""
    level_size = st.floats(0.001, 5.0)
    out = [(top_price, top_size if top_size is not None else draw(level_size))]
    for _ in range(draw(st.integers(0, 19))):
        out.append((out[-1][0] * (1.0 + direction * draw(st.floats(1e-6, 0.003))), draw(level_size)))
    return out
