"""The trailing window agrees with brute force on random streams."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.cep.windows import Trailing

T0 = 1_700_000_000_000


@st.composite
def streams(draw, max_size=60, qty=st.floats(0, 5), min_size=1):
    gaps = draw(st.lists(st.integers(0, 400), min_size=min_size, max_size=max_size))
    prices = draw(st.lists(st.floats(50, 150), min_size=len(gaps), max_size=len(gaps)))
    qtys = draw(st.lists(qty, min_size=len(gaps), max_size=len(gaps)))
    out, ts = [], T0
    for gap, price, qty in zip(gaps, prices, qtys):
        ts += gap
        out.append((ts, price, qty))
    return out


def brute(events):
    """Textbook definitions, computed from scratch."""
    prices = [p for _, p, _ in events]
    n = len(prices)
    mean = sum(prices) / n
    sd = math.sqrt(sum((p - mean) ** 2 for p in prices) / n)
    rets = [math.log(b / a) for a, b in zip(prices, prices[1:])]
    vol = math.sqrt(sum((r - sum(rets) / len(rets)) ** 2 for r in rets) / len(rets)) if rets else math.nan
    volume = sum(q for _, _, q in events)
    return {"high": max(prices), "low": min(prices), "mean": mean, "stddev": sd, "volatility": vol, "volume": volume,
            "vwap": sum(p * q for _, p, q in events) / volume if volume > 0 else math.nan,
            "returns": prices[-1] / prices[0] - 1}


def close(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 1500))
def test_trailing_window_matches_brute_force_after_every_event(events, duration):
    window = Trailing(duration)
    for i, (ts, price, qty) in enumerate(events):
        window.add(ts, price, qty)
        inside = [e for e in events[: i + 1] if e[0] > ts - duration]
        exp = brute(inside)
        assert window.high() == exp["high"] and window.low() == exp["low"]
        assert close(window.mean(), exp["mean"])
        assert close(window.stddev(), exp["stddev"])
        assert close(window.change_pct(), exp["returns"] * 100)
        assert close(window.volatility() if window.volatility() is not None else math.nan, exp["volatility"])
        assert close(window.total_volume(), exp["volume"])
        vwap = window.vwap()
        assert (vwap is None and not exp["volume"] > 1e-12) or close(vwap, exp["vwap"])


@settings(max_examples=150, deadline=None)
@given(streams(min_size=40, max_size=120, qty=st.one_of(st.just(0.0), st.floats(0, 5))), st.integers(1, 3000),
       st.integers(0, 120), st.integers(0, 60))
def test_a_window_that_keeps_only_what_its_readers_need_still_matches_brute_force(events, duration, asked_at,
                                                                                   sized_from):
    """A window of quotes keeps no quantities until one comes, and no returns or high/low until need() asks (then
    they count what it already holds): each column left out must not change what the others read."""
    events = [(ts, price, qty if i >= sized_from else 0.0) for i, (ts, price, qty) in enumerate(events)]
    window = Trailing(duration, extremes=False, returns=False)
    for i, (ts, price, qty) in enumerate(events):
        if i == asked_at:
            window.need(extremes=True, returns=True)
        window.add(ts, price, qty)
        exp = brute([e for e in events[: i + 1] if e[0] > ts - duration])
        # variances: over 120 events the running sums' rounding (about 1e-12) shows as 1e-6 in a zero stddev's root
        assert close(window.mean(), exp["mean"]) and close(window.stddev() ** 2, exp["stddev"] ** 2)
        assert close(window.change_pct(), exp["returns"] * 100)
        assert close(window.total_volume(), exp["volume"])
        vwap = window.vwap()
        assert (vwap is None and not exp["volume"] > 1e-12) or close(vwap, exp["vwap"])
        if i >= asked_at:
            assert window.high() == exp["high"] and window.low() == exp["low"]
            assert close(window.volatility() if window.volatility() is not None else math.nan, exp["volatility"])
        else:
            assert window.high() is None and window.volatility() is None


def test_a_long_window_is_kept_in_segments_and_a_batch_rewrites_only_the_newest():
    from core.cep.windows import segment_ms

    window = Trailing(30 * 60_000)
    state: dict[int, tuple] = {}
    ts = 0
    for _batch in range(400):
        for _ in range(50):
            ts += 100
            window.add(ts, 100.0 + (ts % 7), 1.0)
        changed, gone = window.segment_changes()
        assert len(changed) <= 2  # 5 s of events: one segment of 28 s, or two across a boundary
        state.update(changed)
        for segment in gone:
            del state[segment]
    assert min(state) == window.events[0][0] // segment_ms(window.duration_ms)
    restored = Trailing(30 * 60_000)
    restored.restore_segments(state)
    assert [e[:3] for e in restored.events] == [e[:3] for e in window.events]
    assert restored.mean() == pytest.approx(window.mean()) and restored.volume == pytest.approx(window.volume)
