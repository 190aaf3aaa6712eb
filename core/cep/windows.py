"""Keyed event-time windows and the trailing windows rule functions read.

Events reach a window in event-time order (the watermark stage in eventtime.py reorders them),
so every aggregate is incremental: open/close are the first/last event, and volatility (the
standard deviation of log returns between consecutive prices) can be merged pane by pane.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any


class Stats:
    """Mergeable, order-aware aggregate of (ts, price, qty) events; Chan's merge keeps variance stable."""

    __slots__ = ("count", "first_ts", "last_ts", "open", "high", "low", "close", "mean", "m2",
                 "n_ret", "ret_mean", "ret_m2", "notional", "volume")

    def __init__(self) -> None:
        self.count = 0
        self.first_ts = self.last_ts = 0
        self.open = self.high = self.low = self.close = math.nan
        self.mean = self.m2 = 0.0
        self.n_ret = 0
        self.ret_mean = self.ret_m2 = 0.0
        self.notional = self.volume = 0.0

    def add(self, ts: int, price: float, qty: float = 0.0) -> None:
        one = Stats()
        one.count, one.first_ts, one.last_ts = 1, ts, ts
        one.open = one.high = one.low = one.close = one.mean = price
        one.notional, one.volume = price * qty, qty
        self.merge(one)

    def merge(self, later: Stats) -> None:
        """Append `later`, whose events all come after this one's."""
        if later.count == 0:
            return
        if self.count == 0:
            for name in Stats.__slots__:
                setattr(self, name, getattr(later, name))
            return
        if self.close > 0 and later.open > 0:
            _chan(self, "n_ret", "ret_mean", "ret_m2", 1, math.log(later.open / self.close), 0.0)
        _chan(self, "n_ret", "ret_mean", "ret_m2", later.n_ret, later.ret_mean, later.ret_m2)
        _chan(self, "count", "mean", "m2", later.count, later.mean, later.m2)
        self.last_ts, self.close = later.last_ts, later.close
        self.high, self.low = max(self.high, later.high), min(self.low, later.low)
        self.notional += later.notional
        self.volume += later.volume

    @property
    def vwap(self) -> float:
        return self.notional / self.volume if self.volume > 0 else math.nan

    @property
    def returns(self) -> float:
        """Simple return from the first to the last price of the window, as a fraction."""
        return self.close / self.open - 1.0 if self.count and self.open else math.nan

    @property
    def stddev(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else math.nan

    @property
    def volatility(self) -> float:
        return math.sqrt(self.ret_m2 / self.n_ret) if self.n_ret else math.nan

    @property
    def zscore(self) -> float:
        """How many standard deviations the latest price sits from the window's mean."""
        sd = self.stddev
        return (self.close - self.mean) / sd if sd > 0 else math.nan



def _chan(acc: Stats, n_name: str, mean_name: str, m2_name: str, n_b: int, mean_b: float, m2_b: float) -> None:
    """Merge (n_b, mean_b, m2_b) into acc's running count/mean/M2 (Chan et al.)."""
    if n_b == 0:
        return
    n_a, mean_a, m2_a = getattr(acc, n_name), getattr(acc, mean_name), getattr(acc, m2_name)
    n = n_a + n_b
    delta = mean_b - mean_a
    setattr(acc, mean_name, mean_a + delta * n_b / n)
    setattr(acc, m2_name, m2_a + m2_b + delta * delta * n_a * n_b / n)
    setattr(acc, n_name, n)


def stats_of(events: Iterable[tuple[int, float, float]]) -> Stats:
    acc = Stats()
    for ts, price, qty in events:
        acc.add(ts, price, qty)
    return acc


@dataclass(frozen=True, slots=True)
class WindowResult:
    key: Hashable
    start: int  # inclusive, epoch ms (for count windows: ts of the first event)
    end: int  # exclusive, epoch ms (for count windows: ts of the last event + 1)
    stats: Stats


@dataclass(frozen=True, slots=True)
class Tumbling:
    size_ms: int

    def __post_init__(self) -> None:
        _positive(self.size_ms, "tumbling window size")


@dataclass(frozen=True, slots=True)
class Sliding:
    size_ms: int
    slide_ms: int

    def __post_init__(self) -> None:
        _positive(self.size_ms, "sliding window size")
        _positive(self.slide_ms, "sliding window slide")


@dataclass(frozen=True, slots=True)
class Session:
    gap_ms: int

    def __post_init__(self) -> None:
        _positive(self.gap_ms, "session gap")


@dataclass(frozen=True, slots=True)
class Count:
    size: int
    slide: int | None = None  # None: tumbling count windows

    def __post_init__(self) -> None:
        _positive(self.size, "count window size")
        if self.slide is not None:
            _positive(self.slide, "count window slide")


def _positive(value: int, what: str) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


class KeyedWindows:
    """A keyed window operator. Feed events in event-time order per key; results come out as the
    watermark passes each window's end (count windows fire as soon as they are full).

    Tumbling and sliding windows share panes of gcd(size, slide) so each event is aggregated once.
    """

    def __init__(self, assigner: Tumbling | Sliding | Session | Count) -> None:
        self.assigner = assigner
        if isinstance(assigner, (Tumbling, Sliding)):
            self.size = assigner.size_ms
            self.slide = assigner.slide_ms if isinstance(assigner, Sliding) else assigner.size_ms
            self.pane = math.gcd(self.size, self.slide)
        self._state: dict[Hashable, Any] = {}

    def add(self, key: Hashable, ts: int, price: float, qty: float = 0.0) -> list[WindowResult]:
        a = self.assigner
        if isinstance(a, Count):
            return self._add_count(key, ts, price, qty)
        if isinstance(a, Session):
            out: list[WindowResult] = []
            session = self._state.get(key)
            if session is not None and ts >= session.last_ts + a.gap_ms:
                out.append(WindowResult(key, session.first_ts, session.last_ts + a.gap_ms, session))
                session = None
            if session is None:
                session = self._state[key] = Stats()
            session.add(ts, price, qty)
            return out
        panes: deque = self._state.setdefault(key, deque())
        start = ts - ts % self.pane
        if not panes or panes[-1][0] != start:
            panes.append((start, Stats()))
        panes[-1][1].add(ts, price, qty)
        return []

    def _add_count(self, key: Hashable, ts: int, price: float, qty: float) -> list[WindowResult]:
        size, slide = self.assigner.size, self.assigner.slide or self.assigner.size
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = [deque(maxlen=size), 0]
        events, seen = state
        events.append((ts, price, qty))
        state[1] = seen = seen + 1
        if seen % slide:
            return []
        if self.assigner.slide is None:
            window = list(events)
            events.clear()
        else:
            window = list(events)
        return [WindowResult(key, window[0][0], window[-1][0] + 1, stats_of(window))]

    def on_watermark(self, watermark: int) -> list[WindowResult]:
        """Fire every window whose last instant (end - 1) the watermark has reached, oldest first."""
        a = self.assigner
        out: list[WindowResult] = []
        if isinstance(a, Count):
            return out
        if isinstance(a, Session):
            for key, session in list(self._state.items()):
                end = session.last_ts + a.gap_ms
                if watermark >= end - 1:
                    out.append(WindowResult(key, session.first_ts, end, session))
                    del self._state[key]
            return out
        for key, panes in list(self._state.items()):
            out.extend(self._fire_panes(key, panes, watermark))
            if not panes:
                del self._state[key]
        return out

    def _fire_panes(self, key: Hashable, panes: deque, watermark: int) -> list[WindowResult]:
        out: list[WindowResult] = []
        end = self._first_end(panes[0][0])
        while panes and watermark >= end - 1:
            start = end - self.size
            acc = Stats()
            for pane_start, pane in panes:
                if pane_start >= end:
                    break
                if pane_start >= start:
                    acc.merge(pane)
            if acc.count:
                out.append(WindowResult(key, start, end, acc))
            end += self.slide
            while panes and panes[0][0] < end - self.size:
                panes.popleft()
            if panes:  # jump over a gap with no events rather than stepping through empty windows
                end = max(end, self._first_end(panes[0][0]))
        return out

    def _first_end(self, pane_start: int) -> int:
        """End of the earliest window that can hold the pane: windows start at multiples of the slide."""
        earliest = pane_start - self.size
        return earliest - earliest % self.slide + self.slide + self.size


class Trailing:
    """The last `duration_ms` of one series, ending at its newest event: what vwap(sym, 1m) reads.

    A deque with running sums, so each event costs O(1) amortised. Prices are summed relative to a
    reference price to keep the variance from cancelling catastrophically, and the sums are
    recomputed from the deque whenever as many events have left as remain (still O(1) amortised),
    so subtraction errors cannot pile up. High/low (monotonic deques) and log returns are kept only
    once a reader asks for them with need().
    """

    __slots__ = ("duration_ms", "events", "ref", "sum_d", "sum_d2", "notional", "volume", "n_ret", "sum_r",
                 "sum_r2", "highs", "lows", "evicted", "extremes", "returns")

    def __init__(self, duration_ms: int, extremes: bool = True, returns: bool = True) -> None:
        self.duration_ms = duration_ms
        self.events: deque[list] = deque()  # [ts, price, qty, log return to the next event or None]
        self.highs: deque[tuple[int, float]] = deque()
        self.lows: deque[tuple[int, float]] = deque()
        self.extremes, self.returns = extremes, returns
        self._reset()

    def need(self, extremes: bool = False, returns: bool = False) -> None:
        """Start keeping high/low or returns; what the window already holds is taken into account."""
        if (extremes and not self.extremes) or (returns and not self.returns):
            self.extremes, self.returns = self.extremes or extremes, self.returns or returns
            self._recompute()

    def _reset(self) -> None:
        self.ref = 0.0
        self.sum_d = self.sum_d2 = self.notional = self.volume = 0.0
        self.n_ret = 0
        self.sum_r = self.sum_r2 = 0.0
        self.evicted = 0

    def _recompute(self) -> None:
        events = [e[:3] for e in self.events]
        self.events.clear()
        self.highs.clear()
        self.lows.clear()
        self._reset()
        for ts, price, qty in events:
            self._append(ts, price, qty)

    def add(self, ts: int, price: float, qty: float = 0.0) -> None:
        self._append(ts, price, qty)
        cutoff = ts - self.duration_ms
        if self.events[0][0] <= cutoff:
            self._evict(cutoff)

    def _append(self, ts: int, price: float, qty: float) -> None:
        events = self.events
        if events:
            if self.returns:
                last = events[-1]
                if last[1] > 0 and price > 0:
                    r = math.log(price / last[1])
                    last[3] = r
                    self.n_ret += 1
                    self.sum_r += r
                    self.sum_r2 += r * r
        else:
            self._reset()
            self.ref = price
        d = price - self.ref
        self.sum_d += d
        self.sum_d2 += d * d
        if qty:
            self.notional += price * qty
            self.volume += qty
        events.append([ts, price, qty, None])
        if self.extremes:
            highs, lows = self.highs, self.lows
            while highs and highs[-1][1] <= price:
                highs.pop()
            highs.append((ts, price))
            while lows and lows[-1][1] >= price:
                lows.pop()
            lows.append((ts, price))

    def _evict(self, cutoff: int) -> None:
        """Drop events at or before `cutoff`: the window is (newest - duration, newest]."""
        events = self.events
        while events and events[0][0] <= cutoff:
            ts, price, qty, r = events.popleft()
            d = price - self.ref
            self.sum_d -= d
            self.sum_d2 -= d * d
            if qty:
                self.notional -= price * qty
                self.volume -= qty
            if r is not None:
                self.n_ret -= 1
                self.sum_r -= r
                self.sum_r2 -= r * r
            self.evicted += 1
        if self.evicted >= len(events):
            self._recompute()
        highs, lows = self.highs, self.lows
        while highs and highs[0][0] <= cutoff:
            highs.popleft()
        while lows and lows[0][0] <= cutoff:
            lows.popleft()

    # Each reader returns None when the window cannot say (empty, no volume, one price).
    def vwap(self) -> float | None:
        return self.notional / self.volume if self.volume > 1e-12 else None

    def total_volume(self) -> float | None:
        return max(self.volume, 0.0) if self.events else None

    def change_pct(self) -> float | None:
        events = self.events
        return (events[-1][1] / events[0][1] - 1.0) * 100.0 if events and events[0][1] else None

    def mean(self) -> float | None:
        return self.ref + self.sum_d / len(self.events) if self.events else None

    def stddev(self) -> float | None:
        n = len(self.events)
        if not n:
            return None
        m = self.sum_d / n
        return math.sqrt(max(self.sum_d2 / n - m * m, 0.0))

    def volatility(self) -> float | None:
        n = self.n_ret
        if not n:
            return None
        m = self.sum_r / n
        return math.sqrt(max(self.sum_r2 / n - m * m, 0.0))

    def zscore(self) -> float | None:
        sd = self.stddev()
        if not sd or sd < 1e-12:
            return None
        return (self.events[-1][1] - self.mean()) / sd

    def high(self) -> float | None:
        return self.highs[0][1] if self.highs else None

    def low(self) -> float | None:
        return self.lows[0][1] if self.lows else None

    def snapshot(self) -> list:
        return [list(e[:3]) for e in self.events]
