"""Each detector against a brute-force oracle on random markets, after every tick: the same open routes, and
every signal state carrying the oracle's profit and size at its peak."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.arbitrage.cross_exchange import CrossExchangeDetector
from core.arbitrage.direct import DirectDetector
from core.arbitrage.triangular import TriangularDetector
from core.contracts.signal import route_of

from . import oracle
from .markets import booked, limits, quote, settings_for, times

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CURRENCIES = ("A", "B", "C", "D")


@st.composite
def cross_market(draw, *, arbitrage_free: bool = False):
    venues = draw(st.lists(st.sampled_from("abcd"), min_size=2, max_size=4, unique=True))
    sized = draw(st.booleans())
    lim = draw(limits(venues, 100.0, arbitrage_free=arbitrage_free))
    ticks = []
    for ts in draw(times(draw(st.integers(1, 25)))):
        tick = draw(quote(draw(st.sampled_from(venues)), "X/Y", 100.0, ts, arbitrage_free=arbitrage_free, sized=sized))
        ticks.append(draw(booked(tick)))
    return lim, draw(settings_for("cross_exchange", lim)), ticks


@st.composite
def direct_market(draw, *, arbitrage_free: bool = False):
    venues = draw(st.lists(st.sampled_from("ab"), min_size=1, max_size=2, unique=True))
    sized = draw(st.booleans())
    lim = draw(limits(venues, 1.0, arbitrage_free=arbitrage_free))
    rate = draw(st.floats(0.5, 2.0))
    ticks = []
    for ts in draw(times(draw(st.integers(1, 25)))):
        symbol = draw(st.sampled_from(["EUR/USD", "USD/EUR"]))
        mid = rate if symbol == "EUR/USD" else 1.0 / rate
        venue = draw(st.sampled_from(venues))
        ticks.append(draw(booked(draw(quote(venue, symbol, mid, ts, arbitrage_free=arbitrage_free, sized=sized)))))
    return lim, draw(settings_for("direct", lim)), ticks


@st.composite
def triangular_market(draw, *, arbitrage_free: bool = False):
    sized = draw(st.booleans())
    lim = draw(limits(["v"], 1.0, arbitrage_free=arbitrage_free))
    value = {c: draw(st.floats(0.5, 2.0)) for c in CURRENCIES}
    pairs = [(x, y) for x in CURRENCIES for y in CURRENCIES if x != y]
    symbols = draw(st.lists(st.sampled_from(pairs), min_size=5, max_size=10, unique=True))
    ticks = []
    for ts in draw(times(draw(st.integers(3, 40)))):
        base, quote_currency = draw(st.sampled_from(symbols))
        ticks.append(draw(booked(draw(quote("v", f"{base}/{quote_currency}", value[base] / value[quote_currency], ts,
                                            arbitrage_free=arbitrage_free, sized=sized)))))
    return lim, draw(settings_for("triangular", lim)), ticks


PROFIT_NOISE = 1e-9  # the oracle and the detectors multiply the same rates in different orders
ROUNDING = 5e-7  # signals carry profit_bps rounded to 6 decimals


def replay(detector, states: dict, ticks) -> list[list[dict]]:
    """Run the ticks through keyed states; return the signals each tick emitted."""
    return [detector.on_tick(states.setdefault(detector.key_for(tick), detector.State()), tick, 0) for tick in ticks]


def assert_agrees(detector, states: dict, ticks, oracle_after) -> None:
    """Check every tick's signals against the oracle over the market as it stands after that tick.

    The signals must leave open exactly the routes the oracle says are, each opening or peak must
    carry the oracle's profit, size and leg VWAPs at its tick, and a route that stays open must be updated
    when, and only when, its profit beats the peak it last emitted: so every emitted state is an
    opportunity's peak with the size at that peak. A route within float noise of a threshold
    (the oracle's ambiguous set) may go either way and its values are not checked.
    """
    live: dict[tuple[str, ...], dict] = {}
    for index, signals in enumerate(replay(detector, states, ticks)):
        before = dict(live)
        for signal in signals:
            route = route_of(signal["legs"])
            assert signal["closed_at" if signal["status"] == "closed" else "updated_at"] == ticks[index].ts
            if signal["status"] == "open":
                assert live.setdefault(route, signal)["id"] == signal["id"], "one id per opportunity"
                live[route] = signal
            else:
                assert live.pop(route)["id"] == signal["id"], "a close must follow its open"
        definite, ambiguous = oracle_after(index + 1)
        assert set(live) - ambiguous == set(definite) - ambiguous, index
        peaks = {route_of(s["legs"]): s for s in signals if s["status"] == "open"}
        for route in set(definite) - ambiguous:
            want_profit, want_size, want_vwaps = definite[route]
            if route in before:  # an unchanged route sits up to ROUNDING above the peak it emitted
                last = before[route]["profit_bps"]
                if want_profit > last + ROUNDING + PROFIT_NOISE:
                    assert route in peaks, (index, route, "a new peak must be emitted")
                elif want_profit < last - PROFIT_NOISE:
                    assert route not in peaks, (index, route, "below the peak nothing is emitted")
            if route in peaks:
                size = peaks[route]["size"]
                assert peaks[route]["profit_bps"] == pytest.approx(want_profit, abs=ROUNDING + PROFIT_NOISE), route
                assert (size is None) == (want_size is None), route
                if size is not None:
                    assert size == pytest.approx(want_size, rel=1e-9, abs=1e-12), route
                vwaps = [leg.get("vwap") for leg in peaks[route]["legs"]]
                assert vwaps == ([None] * len(vwaps) if want_vwaps is None else
                                 pytest.approx(want_vwaps, rel=1e-9)), route
    assert set(live) == {route for state in states.values() for route in state.book.open}


@EXAMPLES
@given(cross_market())
def test_cross_exchange_matches_oracle(market):
    lim, config, ticks = market
    expected = lambda n: oracle.cross_exchange(ticks[:n], lim)
    assert_agrees(CrossExchangeDetector(config), {}, ticks, expected)


@EXAMPLES
@given(direct_market())
def test_direct_matches_oracle(market):
    lim, config, ticks = market
    states: dict = {}
    assert_agrees(DirectDetector(config), states, ticks, lambda n: oracle.direct(ticks[:n], lim))
    assert len(states) == 1, "EUR/USD and USD/EUR share one key"


@EXAMPLES
@given(triangular_market())
def test_triangular_matches_oracle(market):
    lim, config, ticks = market
    assert_agrees(TriangularDetector(config), {}, ticks, lambda n: oracle.triangular(ticks[:n], lim))


@EXAMPLES
@given(st.one_of(
    cross_market(arbitrage_free=True).map(lambda m: (CrossExchangeDetector(m[1]), m[2])),
    direct_market(arbitrage_free=True).map(lambda m: (DirectDetector(m[1]), m[2])),
    triangular_market(arbitrage_free=True).map(lambda m: (TriangularDetector(m[1]), m[2])),
))
def test_no_signal_on_arbitrage_free_markets(case):
    detector, ticks = case
    assert all(signals == [] for signals in replay(detector, {}, ticks))
