"""The trailing windows rule functions read (vwap, volatility, zscore...).

Events reach a window in event-time order (the watermark stage in eventtime.py reorders them),
so every aggregate is kept incrementally as events enter and leave.
"""
from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from itertools import repeat


class Trailing:
    """The last `duration_ms` of one series, ending at its newest event: what vwap(sym, 1m) reads.

    Columns of events (times, prices, and, only where a reader needs them, quantities and log returns)
    with running sums, so each event costs O(1) amortised: the columns are arrays, which hold numbers
    and not objects (a list per event made a 1,000-symbol market's windows megabytes of objects to
    chase), and a batch's state is a slice of them. Events leave by moving `head`; the columns are cut
    when as many have left as remain. Prices are summed relative to a reference price to keep the
    variance from cancelling catastrophically, and the sums are recomputed from the events whenever as
    many have left as remain (still O(1) amortised), so subtraction errors cannot pile up. High/low
    (monotonic deques) and log returns are kept only once a reader asks for them with need(); the
    quantities only once an event has one (a window of quotes has none): a column fewer is an append
    and a read fewer on each of a wide market's events.
    """

    __slots__ = ("duration_ms", "times", "prices", "quantities", "returns_from_last", "head", "ref", "sum_d", "sum_d2",
                 "notional", "volume", "n_ret", "sum_r", "sum_r2", "highs", "lows", "evicted", "extremes", "returns",
                 "added_since", "added_at", "segments", "sized", "logged_from", "last", "oldest")

    def __init__(self, duration_ms: int, extremes: bool = True, returns: bool = True) -> None:
        self.duration_ms = duration_ms
        self.times = array("q")
        self.prices = array("d")
        self.quantities = array("d")  # empty until `sized`
        # an event's log return from the event before it (NaN for none); the head's is not the window's. Empty
        # unless `returns`
        self.returns_from_last = array("d")
        self.head = 0  # the oldest event in the window; those before it have left
        self.highs: deque[tuple[int, float]] = deque()
        self.lows: deque[tuple[int, float]] = deque()
        self.extremes, self.returns = extremes, returns
        self.added_since: int | None = None  # the time of the first event added since segment_changes()
        self.added_at = 0  # and its index in the columns, while added_since is set
        self.segments: list[int] = []  # the segments the state holds (segment_changes), oldest first
        self.sized = False  # whether an event had a quantity, and so the quantities are kept
        self.logged_from = 0  # a market window: the position in the market's log of the first event it lacks in state
        self.last = 0.0  # the newest price and the oldest time in the window, read on every add: prices[-1] and
        self.oldest = 0  # times[head] would box a number each time
        self._reset()

    def __len__(self) -> int:
        return len(self.times) - self.head

    @property
    def events(self) -> list[tuple[int, float, float]]:
        """(ts, price, qty) of each event in the window, oldest first."""
        head = self.head
        quantities = self.quantities[head:] if self.sized else repeat(0.0)
        return list(zip(self.times[head:], self.prices[head:], quantities))

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
        events = self.events
        added_since = self.added_since  # what the state holds does not change
        for column in (self.times, self.prices, self.quantities, self.returns_from_last):
            del column[:]
        self.head = 0
        self.sized = False
        self.highs.clear()
        self.lows.clear()
        self._reset()
        for ts, price, qty in events:
            self.add(ts, price, qty)
        self.added_since = added_since
        if added_since is not None:
            self.added_at = bisect_left(self.times, added_since)

    def _resum(self) -> None:
        """The running sums afresh from the events, about the oldest price: the events, their returns and
        high/low stay as they are, so this costs a fifth of _recompute (in a window of ten events it ran
        every tenth add)."""
        head = self.head
        prices = self.prices[head:]
        ref = prices[0] if prices else 0.0
        sum_d = sum_d2 = notional = volume = sum_r = sum_r2 = 0.0
        n_ret = 0
        for price in prices:
            d = price - ref
            sum_d += d
            sum_d2 += d * d
        if self.sized:
            for price, qty in zip(prices, self.quantities[head:]):
                if qty:
                    notional += price * qty
                    volume += qty
        if self.returns:
            for r in self.returns_from_last[head + 1:]:
                if r == r:  # not NaN
                    n_ret += 1
                    sum_r += r
                    sum_r2 += r * r
        self.ref, self.sum_d, self.sum_d2, self.notional, self.volume = ref, sum_d, sum_d2, notional, volume
        self.n_ret, self.sum_r, self.sum_r2, self.evicted = n_ret, sum_r, sum_r2, 0

    def add(self, ts: int, price: float, qty: float = 0.0) -> None:
        """The hot path of every market event a rule reads, in one function (a call costs a tenth of it)."""
        times = self.times
        if self.added_since is None:
            self.added_since, self.added_at = ts, len(times)
        if len(times) > self.head:
            if self.returns:
                last = self.last
                r = math.log(price / last) if last > 0 and price > 0 else math.nan
                self.returns_from_last.append(r)
                if r == r:  # not NaN
                    self.n_ret += 1
                    self.sum_r += r
                    self.sum_r2 += r * r
            d = price - self.ref
        else:
            self._reset()
            self.ref = price
            self.oldest = ts
            d = 0.0
            if self.returns:
                self.returns_from_last.append(math.nan)
        self.sum_d += d
        self.sum_d2 += d * d
        if qty and not self.sized:
            self.quantities = array("d", bytes(8 * len(times)))  # the events so far had none
            self.sized = True
        if self.sized:
            self.quantities.append(qty)
            if qty:
                self.notional += price * qty
                self.volume += qty
        times.append(ts)
        self.prices.append(price)
        self.last = price
        if self.extremes:
            highs, lows = self.highs, self.lows
            while highs and highs[-1][1] <= price:
                highs.pop()
            highs.append((ts, price))
            while lows and lows[-1][1] >= price:
                lows.pop()
            lows.append((ts, price))
        cutoff = ts - self.duration_ms
        if self.oldest <= cutoff:
            self._evict(cutoff)

    def _evict(self, cutoff: int) -> None:
        """Drop events at or before `cutoff`: the window is (newest - duration, newest]."""
        times, prices = self.times, self.prices
        head = end = self.head
        while times[end] <= cutoff:  # the newest event is not: mostly one step, where bisect costs a call and boxing
            end += 1
        ref = self.ref
        for i in range(head, end):
            d = prices[i] - ref
            self.sum_d -= d
            self.sum_d2 -= d * d
        left = 0.0
        if self.sized:
            quantities = self.quantities
            for i in range(head, end):
                qty = quantities[i]
                if qty:
                    self.notional -= prices[i] * qty
                    self.volume -= qty
                    left += qty
        if self.returns:
            returns = self.returns_from_last
            for i in range(head + 1, end + 1):  # the returns from the events that left; the new head's is one
                r = returns[i]
                if r == r:  # not NaN
                    self.n_ret -= 1
                    self.sum_r -= r
                    self.sum_r2 -= r * r
        self.evicted += end - head
        if 2 * end >= len(times):  # as many left as remain: cut the columns
            for column in (times, prices, self.quantities, self.returns_from_last):
                del column[:end]
            self.added_at = max(self.added_at - end, 0)
            end = 0
        self.head = end
        self.oldest = times[end]
        if self.evicted >= len(times) - end:
            self._resum()
        elif left and self.volume < 1e-6 * left:  # nearly all the volume left: the difference is mostly rounding
            self.notional = sum(p * q for p, q in zip(prices[end:], self.quantities[end:]))
            self.volume = sum(self.quantities[end:])
        highs, lows = self.highs, self.lows
        while highs and highs[0][0] <= cutoff:
            highs.popleft()
        while lows and lows[0][0] <= cutoff:
            lows.popleft()

    # Each reader returns None when the window cannot say (empty, no volume, one price).
    def vwap(self) -> float | None:
        return self.notional / self.volume if self.volume > 1e-12 else None

    def total_volume(self) -> float | None:
        return max(self.volume, 0.0) if len(self.times) > self.head else None

    def change_pct(self) -> float | None:
        prices, head = self.prices, self.head
        if len(prices) <= head:
            return None
        first = prices[head]
        return (self.last / first - 1.0) * 100.0 if first else None

    def mean(self) -> float | None:
        n = len(self.times) - self.head
        return self.ref + self.sum_d / n if n else None

    def stddev(self) -> float | None:
        n = len(self.times) - self.head
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
        return (self.last - (self.ref + self.sum_d / len(self))) / sd  # mean(), of events there are

    def high(self) -> float | None:
        return self.highs[0][1] if self.highs else None

    def low(self) -> float | None:
        return self.lows[0][1] if self.lows else None

    def all_segments(self) -> dict[int, tuple[bytes, bytes, bytes]]:
        """Every segment of the window, as segment_changes() gives the changed ones (and without touching
        what it tracks)."""
        return self._packed_from(self.head, segment_ms(self.duration_ms))

    def segment_changes(self) -> tuple[dict[int, tuple[bytes, bytes, bytes]], list[int]]:
        """The window as state, in segments of segment_ms(duration) by event time: the segments events were
        added to since the last call (whole, packed as snapshot()), and those every event has left. A batch
        then writes the newest segment or two, not the window: a 30-minute window holds thousands of events."""
        added_since = self.added_since
        if added_since is None:
            return {}, []
        self.added_since = None
        size = segment_ms(self.duration_ms)
        times, head = self.times, self.head
        oldest = times[head] // size if len(times) > head else added_since // size
        segments = self.segments
        left = 0
        while left < len(segments) and segments[left] < oldest:
            left += 1
        gone = segments[:left]
        if left:
            del segments[:left]
        start, first = max(self.added_at, head), added_since // size * size
        while start > head and times[start - 1] >= first:  # the rest of the first segment added to
            start -= 1
        changed = self._packed_from(start, size)
        for segment in changed:
            if not segments or segment > segments[-1]:
                segments.append(segment)
        return changed, gone

    def _packed_from(self, i: int, size: int) -> dict[int, tuple[bytes, bytes, bytes]]:
        """The segments (of `size` ms) of the events from the i-th on, oldest first, each as its slice of the
        columns: arrays pickle as a copy of memory, and the job writes windows to state after every batch."""
        times, prices, quantities, sized = self.times, self.prices, self.quantities, self.sized
        out, n = {}, len(times)
        while i < n:
            segment = times[i] // size
            end = (segment + 1) * size
            j = n if times[n - 1] < end else bisect_left(times, end, i)  # mostly the newest segment: no search
            out[segment] = (times[i:j].tobytes(), prices[i:j].tobytes(), quantities[i:j].tobytes() if sized else b"")
            i = j
        return out

    def restore_segments(self, segments: dict[int, tuple[bytes, bytes, bytes]]) -> None:
        """Add the events of the segments segment_changes() gave, oldest first."""
        for segment in sorted(segments):
            for ts, price, qty in window_events(segments[segment]):
                self.add(ts, price, qty)
            self.segments.append(segment)
        self.added_since = None


def segment_ms(duration_ms: int) -> int:
    return max(250, duration_ms // 64)


def window_events(snapshot: tuple[bytes, bytes, bytes]) -> zip:
    """(ts, price, qty) of each event of a segment as segment_changes() packed it (no quantities: all 0)."""
    times, prices, quantities = (array(kind, raw) for kind, raw in zip("qdd", snapshot))
    return zip(times, prices, quantities or repeat(0.0, len(times)))
