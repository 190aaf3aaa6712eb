"""Windows agree with brute force on random streams."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from core.cep.windows import Count, KeyedWindows, Session, Sliding, Stats, Trailing, Tumbling

T0 = 1_700_000_000_000


@st.composite
def streams(draw, max_size=60):
    gaps = draw(st.lists(st.integers(0, 400), min_size=1, max_size=max_size))
    prices = draw(st.lists(st.floats(50, 150), min_size=len(gaps), max_size=len(gaps)))
    qtys = draw(st.lists(st.floats(0, 5), min_size=len(gaps), max_size=len(gaps)))
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
    return {"count": n, "open": prices[0], "close": prices[-1], "high": max(prices), "low": min(prices),
            "mean": mean, "stddev": sd, "volatility": vol, "volume": volume,
            "vwap": sum(p * q for _, p, q in events) / volume if volume > 0 else math.nan,
            "returns": prices[-1] / prices[0] - 1, "zscore": (prices[-1] - mean) / sd if sd > 0 else math.nan}


def close(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-6)


def assert_stats(stats: Stats, events):
    expected = brute(events)
    for name, value in expected.items():
        got = getattr(stats, name)
        if name == "zscore" and expected["stddev"] < 1e-6:
            continue  # numerically undefined
        assert close(got, value), (name, got, value)


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


def fire_all(windows: KeyedWindows, events):
    out = []
    for ts, price, qty in events:
        out.extend(windows.add("k", ts, price, qty))
    out.extend(windows.on_watermark(2**62))
    return out


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 20).map(lambda n: n * 50), st.integers(1, 20).map(lambda n: n * 50))
def test_sliding_and_tumbling_windows_match_brute_force(events, size, slide):
    for assigner, slide_ms in ((Sliding(size, slide), slide), (Tumbling(size), size)):
        results = fire_all(KeyedWindows(assigner), events)
        first, last = events[0][0], events[-1][0]
        expected = []
        start = (first - size) - (first - size) % slide_ms
        while start <= last:
            inside = [e for e in events if start <= e[0] < start + size]
            if inside:
                expected.append((start, start + size, inside))
            start += slide_ms
        assert [(r.start, r.end) for r in results] == [(s, e) for s, e, _ in expected]
        for result, (_, _, inside) in zip(results, expected):
            assert_stats(result.stats, inside)


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 600))
def test_session_windows_match_brute_force(events, gap):
    results = fire_all(KeyedWindows(Session(gap)), events)
    sessions, current = [], [events[0]]
    for event in events[1:]:
        if event[0] - current[-1][0] >= gap:
            sessions.append(current)
            current = []
        current.append(event)
    sessions.append(current)
    assert [(r.start, r.end) for r in results] == [(s[0][0], s[-1][0] + gap) for s in sessions]
    for result, inside in zip(results, sessions):
        assert_stats(result.stats, inside)


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 7), st.one_of(st.none(), st.integers(1, 7)))
def test_count_windows_match_brute_force(events, size, slide):
    results = fire_all(KeyedWindows(Count(size, slide)), events)
    step = slide or size
    expected = [events[max(0, i + 1 - size): i + 1] for i in range(len(events)) if (i + 1) % step == 0]
    if slide is None:
        expected = [events[i - size + 1: i + 1] for i in range(size - 1, len(events), size)]
    assert len(results) == len(expected)
    for result, inside in zip(results, expected):
        assert_stats(result.stats, inside)


def test_windows_fire_only_when_the_watermark_passes_their_end():
    windows = KeyedWindows(Tumbling(1000))
    windows.add("k", T0 + 10, 100.0)
    windows.add("k", T0 + 990, 101.0)
    assert windows.on_watermark(T0 + 998) == []
    [result] = windows.on_watermark(T0 + 999)
    assert (result.start, result.end, result.stats.open, result.stats.close) == (T0, T0 + 1000, 100.0, 101.0)


def test_keys_are_kept_apart():
    windows = KeyedWindows(Tumbling(1000))
    windows.add("a", T0, 1.0)
    windows.add("b", T0, 2.0)
    results = sorted(windows.on_watermark(T0 + 5000), key=lambda r: r.key)
    assert [(r.key, r.stats.close) for r in results] == [("a", 1.0), ("b", 2.0)]
