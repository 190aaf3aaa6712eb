"""The trailing windows rule functions read (vwap, volatility, zscore...).

Events reach a window in event-time order (the watermark stage in eventtime.py reorders them),
so every aggregate is kept incrementally as events enter and leave.
"""
from __future__ import annotations

import math
from array import array
from collections import deque


class Trailing:
    """The last `duration_ms` of one series, ending at its newest event: what vwap(sym, 1m) reads.

    A deque with running sums, so each event costs O(1) amortised. Prices are summed relative to a
    reference price to keep the variance from cancelling catastrophically, and the sums are
    recomputed from the deque whenever as many events have left as remain (still O(1) amortised),
    so subtraction errors cannot pile up. High/low (monotonic deques) and log returns are kept only
    once a reader asks for them with need().
    """

    __slots__ = ("duration_ms", "events", "ref", "sum_d", "sum_d2", "notional", "volume", "n_ret", "sum_r",
                 "sum_r2", "highs", "lows", "evicted", "extremes", "returns", "added_since", "segments")

    def __init__(self, duration_ms: int, extremes: bool = True, returns: bool = True) -> None:
        self.duration_ms = duration_ms
        self.events: deque[list] = deque()  # [ts, price, qty, log return to the next event or None]
        self.highs: deque[tuple[int, float]] = deque()
        self.lows: deque[tuple[int, float]] = deque()
        self.extremes, self.returns = extremes, returns
        self.added_since: int | None = None  # the time of the first event added since segment_changes()
        self.segments: deque[int] = deque()  # the segments the state holds (segment_changes), oldest first
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
        added_since = self.added_since  # what the state holds does not change
        self.events.clear()
        self.highs.clear()
        self.lows.clear()
        self._reset()
        for ts, price, qty in events:
            self.add(ts, price, qty)
        self.added_since = added_since

    def _resum(self) -> None:
        """The running sums afresh from the events, about the oldest price: the events, their returns and
        high/low stay as they are, so this costs a fifth of _recompute (in a window of ten events it ran
        every tenth add)."""
        events = self.events
        ref = events[0][1] if events else 0.0
        sum_d = sum_d2 = notional = volume = sum_r = sum_r2 = 0.0
        n_ret = 0
        for _, price, qty, r in events:
            d = price - ref
            sum_d += d
            sum_d2 += d * d
            if qty:
                notional += price * qty
                volume += qty
            if r is not None:
                n_ret += 1
                sum_r += r
                sum_r2 += r * r
        self.ref, self.sum_d, self.sum_d2, self.notional, self.volume = ref, sum_d, sum_d2, notional, volume
        self.n_ret, self.sum_r, self.sum_r2, self.evicted = n_ret, sum_r, sum_r2, 0

    def add(self, ts: int, price: float, qty: float = 0.0) -> None:
        """The hot path of every market event a rule reads, in one function (a call costs a tenth of it)."""
        if self.added_since is None:
            self.added_since = ts
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
            d = price - self.ref
        else:
            self._reset()
            self.ref = price
            d = 0.0
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
        cutoff = ts - self.duration_ms
        if events[0][0] <= cutoff:
            self._evict(cutoff)

    def _evict(self, cutoff: int) -> None:
        """Drop events at or before `cutoff`: the window is (newest - duration, newest]."""
        events = self.events
        left = 0.0
        while events and events[0][0] <= cutoff:
            ts, price, qty, r = events.popleft()
            d = price - self.ref
            self.sum_d -= d
            self.sum_d2 -= d * d
            if qty:
                self.notional -= price * qty
                self.volume -= qty
                left += qty
            if r is not None:
                self.n_ret -= 1
                self.sum_r -= r
                self.sum_r2 -= r * r
            self.evicted += 1
        if self.evicted >= len(events):
            self._resum()
        elif left and self.volume < 1e-6 * left:  # nearly all the volume left: the difference is mostly rounding
            self.notional = sum(e[1] * e[2] for e in events)
            self.volume = sum(e[2] for e in events)
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

    def all_segments(self) -> dict[int, tuple[bytes, bytes, bytes]]:
        """Every segment of the window, as segment_changes() gives the changed ones (and without touching
        what it tracks)."""
        size = segment_ms(self.duration_ms)
        segments: dict[int, list[list]] = {}
        for event in self.events:
            segments.setdefault(event[0] // size, []).append(event)
        return {segment: packed(events) for segment, events in segments.items()}


    def segment_changes(self) -> tuple[dict[int, tuple[bytes, bytes, bytes]], list[int]]:
        """The window as state, in segments of segment_ms(duration) by event time: the segments events were
        added to since the last call (whole, packed as snapshot()), and those every event has left. A batch
        then writes the newest segment or two, not the window: a 30-minute window holds thousands of events."""
        if self.added_since is None:
            return {}, []
        size = segment_ms(self.duration_ms)
        first_changed = self.added_since // size
        self.added_since = None
        changed: dict[int, list[list]] = {}
        for event in reversed(self.events):
            segment = event[0] // size
            if segment < first_changed:
                break
            changed.setdefault(segment, []).append(event)
        oldest = self.events[0][0] // size if self.events else first_changed
        segments, gone = self.segments, []
        while segments and segments[0] < oldest:
            gone.append(segments.popleft())
        for segment in sorted(changed):
            if not segments or segment > segments[-1]:
                segments.append(segment)
        return {segment: packed(reversed(events)) for segment, events in changed.items()}, gone

    def restore_segments(self, segments: dict[int, tuple[bytes, bytes, bytes]]) -> None:
        """Add the events of the segments segment_changes() gave, oldest first."""
        for segment in sorted(segments):
            for ts, price, qty in window_events(segments[segment]):
                self.add(ts, price, qty)
            self.segments.append(segment)
        self.added_since = None


def segment_ms(duration_ms: int) -> int:
    return max(250, duration_ms // 64)


def packed(events) -> tuple[bytes, bytes, bytes]:
    """Events as packed arrays (times, prices, quantities): arrays pickle as a copy of memory where lists
    of lists pickle item by item, and the job writes windows to state after every batch."""
    events = list(events)
    return (array("q", [e[0] for e in events]).tobytes(), array("d", [e[1] for e in events]).tobytes(),
            array("d", [e[2] for e in events]).tobytes())


def window_events(snapshot: tuple[bytes, bytes, bytes]) -> zip:
    """(ts, price, qty) of each event of a segment packed()."""
    times, prices, quantities = (array(kind, raw) for kind, raw in zip("qdd", snapshot))
    return zip(times, prices, quantities)
