"""Event time: watermarks with bounded out-of-orderness, idle sources, and late events kept aside.

Flink's convention: a watermark W promises that no event with ts <= W is still to come. Each
source (a venue, a partition) has its own watermark, newest ts - bound - 1; the stream's watermark
is the minimum over sources that are not idle, so a source that goes quiet for longer than the
idleness timeout (processing time) stops holding everyone back. Events wait in a heap until the
watermark passes them and then leave in event-time order; an event that arrives behind the
watermark is late: it goes to the side output and is counted, never dropped silently.
"""
from __future__ import annotations

import heapq
from collections.abc import Hashable
from itertools import count
from typing import Any, Final

NO_WATERMARK: Final = -(2**63)


class Reorderer:
    def __init__(self, out_of_orderness_ms: int = 0, idle_timeout_ms: int = 5_000, max_late: int = 10_000) -> None:
        if out_of_orderness_ms < 0 or idle_timeout_ms <= 0:
            raise ValueError("out_of_orderness_ms must be >= 0 and idle_timeout_ms > 0")
        self.bound = out_of_orderness_ms
        self.idle_timeout_ms = idle_timeout_ms
        self.watermark = NO_WATERMARK
        self.late: list[Any] = []  # the side output; the host drains it with take_late()
        self.late_count = 0  # every late event, including those beyond max_late the side output had no room for
        self.max_late = max_late
        self._newest: dict[Hashable, int] = {}  # per source: newest event time
        self._arrived: dict[Hashable, int] = {}  # per source: processing time of its last event
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = count()
        self._direct = False  # one source, no bound, nothing held: events pass straight through

    def push(self, source: Hashable, ts: int, event: Any, now_ms: int) -> list[Any]:
        """Accept one event; return the events the watermark now releases, oldest first."""
        if ts <= self.watermark:
            if len(self.late) < self.max_late:
                self.late.append(event)
            self.late_count += 1
            return []
        self._arrived[source] = now_ms
        if self._direct and source in self._newest:
            self._newest[source] = self.watermark = ts  # not late, so the newest: no heap round trip
            self.watermark -= 1
            return [event]
        if ts > self._newest.get(source, NO_WATERMARK):
            self._newest[source] = ts
        heap = self._heap
        self._direct = not heap and self.bound == 0 and len(self._newest) == 1
        if self._direct:  # the common case, one in-order source
            self.watermark = ts - 1
            return [event]
        heapq.heappush(heap, (ts, next(self._seq), event))
        return self.advance(now_ms)

    def passes(self, source: Hashable, ts: int, event: Any, now_ms: int) -> bool:
        """For events the caller has put in event-time order already: whether `event` is on time (the
        watermark follows it), or late (set aside as push() would)."""
        if ts <= self.watermark:
            if len(self.late) < self.max_late:
                self.late.append(event)
            self.late_count += 1
            return False
        self._arrived[source] = now_ms
        if ts > self._newest.get(source, NO_WATERMARK):
            self._newest[source] = ts
        self.watermark = max(self.watermark, ts - self.bound - 1)
        return True

    def advance(self, now_ms: int) -> list[Any]:
        """Move the watermark as far as the sources allow at processing time `now_ms`."""
        active = [newest for source, newest in self._newest.items()
                  if now_ms - self._arrived[source] < self.idle_timeout_ms]
        if active:
            candidate = min(active) - self.bound - 1
        else:  # every source idle: nothing more is expected, so everything held may go
            candidate = max(self._newest.values(), default=NO_WATERMARK)
        if candidate > self.watermark:
            self.watermark = candidate
        out = []
        heap = self._heap
        while heap and heap[0][0] <= self.watermark:
            out.append(heapq.heappop(heap)[2])
        return out

    def take_late(self) -> list[Any]:
        late, self.late = self.late, []
        return late

    def snapshot(self) -> dict:
        return {"bound": self.bound, "idle_timeout_ms": self.idle_timeout_ms, "max_late": self.max_late,
                "watermark": self.watermark,
                "late_count": self.late_count, "newest": list(self._newest.items()),
                "arrived": list(self._arrived.items()), "held": [(ts, e) for ts, _, e in sorted(self._heap)],
                "late": list(self.late)}

    @classmethod
    def restore(cls, snap: dict) -> Reorderer:
        r = cls(snap["bound"], snap["idle_timeout_ms"], snap["max_late"])
        r.watermark, r.late_count = snap["watermark"], snap["late_count"]
        r._newest, r._arrived = dict(snap["newest"]), dict(snap["arrived"])
        r._direct = not snap["held"] and r.bound == 0 and len(r._newest) == 1
        for ts, event in snap["held"]:
            heapq.heappush(r._heap, (ts, next(r._seq), event))
        r.late = list(snap["late"])
        return r
