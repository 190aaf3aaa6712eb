"""Binance's rules for keeping a local book from `depth@100ms` diffs and a REST snapshot.

From "How to manage a local order book correctly" (Binance spot WebSocket streams): buffer the diffs, take a
REST snapshot, drop every buffered diff whose last id `u` <= the snapshot's lastUpdateId, the first diff applied
must straddle it (U <= lastUpdateId + 1 <= u), and each later one must start right after the previous
(U == previous u + 1). Anything else means a diff was lost: the book is wrong and must be rebuilt.

Pure bookkeeping over the ids; the caller holds the diffs' contents and the book itself.
"""
from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

D = TypeVar("D")  # whatever the caller applies for one diff (e.g. its bids and asks)

DEFAULT_MAX_BUFFERED = 1000  # diffs kept while no snapshot is there (10 s of depth@100ms)


class OutOfSequence(ValueError):
    """A diff that does not follow the book: the message names the ids, for the resync's reason."""


class DiffSync(Generic[D]):
    """Where one symbol's book stands: waiting for a snapshot (diffs buffered) or synced at update id `last`."""

    __slots__ = ("_buffer", "last", "_applied")

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        # Oldest dropped when full: if the snapshot is newer than what was dropped nothing is lost, and if not,
        # the first-diff rule fails and the caller resyncs, so a full buffer can never make a wrong book.
        self._buffer: deque[tuple[int, int, D]] = deque(maxlen=max_buffered)
        self.last: int | None = None  # the snapshot's lastUpdateId, then the `u` of the last diff applied
        self._applied = False

    @property
    def synced(self) -> bool:
        return self.last is not None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def reset(self) -> None:
        """Back to waiting for a snapshot, as after a gap."""
        self._buffer.clear()
        self.last = None
        self._applied = False

    def diff(self, first_id: int, last_id: int, payload: D) -> list[D]:
        """The diffs to apply now, in order: none while waiting for a snapshot (it is buffered) or when it is
        older than the book; OutOfSequence (and back to waiting) when one was lost."""
        if first_id > last_id:
            raise OutOfSequence(f"diff U={first_id} > u={last_id}")
        if self.last is None:
            self._buffer.append((first_id, last_id, payload))
            return []
        return [payload] if self._follows(first_id, last_id, self.last) else []

    def snapshot(self, last_update_id: int) -> list[D]:
        """Take the REST snapshot's lastUpdateId; the buffered diffs that follow it, in order, to apply after
        loading the snapshot. OutOfSequence (and back to waiting) when the buffer does not join it."""
        buffered = list(self._buffer)
        self._buffer.clear()
        self.last, self._applied = last_update_id, False
        return [payload for first_id, last_id, payload in buffered
                if self.last is not None and self._follows(first_id, last_id, self.last)]

    def _follows(self, first_id: int, last_id: int, last: int) -> bool:
        """True to apply the diff, False when it is stale (u <= last); raises on a gap."""
        if last_id <= last:
            return False
        if first_id > last + 1 or (self._applied and first_id != last + 1):
            rule = "U == previous u + 1" if self._applied else "U <= lastUpdateId + 1 <= u"
            self.reset()
            raise OutOfSequence(f"diff U={first_id} u={last_id} after update id {last} breaks {rule}")
        self.last, self._applied = last_id, True
        return True
