"""One venue's L2 book of one symbol: sorted price levels kept from a snapshot and the deltas after it.

Levels keep the venue's own text of price and size beside the numbers, because the venues' checksums
(core/books/checksums.py) are computed over that text, not over floats.

Memory is bounded: each side keeps at most `max_levels`, dropping the ones furthest from the top
(Kraken asks clients to truncate to the subscribed depth; OKX sends 400 levels). A side that was
truncated and then drains below the levels the tick carries could be missing levels a venue never
re-sends, so `complete(n)` turns false and the venue parser resynchronizes instead of emitting it.
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from sortedcontainers import SortedDict

from core.contracts.tick import Levels

DEFAULT_MAX_LEVELS = 1000
_INF = float("inf")
TextLevel = tuple[str, str]  # (price, size) as the venue wrote them


class OrderBook:
    """Levels as price -> (size, price text, size text); bids keyed by -price so both sides iterate best first."""

    __slots__ = ("_bids", "_asks", "max_levels", "_truncated")

    def __init__(self, max_levels: int = DEFAULT_MAX_LEVELS) -> None:
        if max_levels < 1:
            raise ValueError(f"max_levels must be at least 1, got {max_levels}")
        self.max_levels = max_levels
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._truncated = [False, False]  # bids, asks

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._truncated = [False, False]

    def snapshot(self, bids: Iterable[TextLevel], asks: Iterable[TextLevel]) -> None:
        """Replace the whole book; levels as the venue's (price, size) text, size "0" levels skipped."""
        self.clear()
        for price, size in bids:
            self.set_bid(price, size)
        for price, size in asks:
            self.set_ask(price, size)

    def set_bid(self, price: str, size: str) -> None:
        """Set (size > 0) or delete (size 0) the bid level at `price`."""
        self._set(self._bids, 0, -float(price), price, size)

    def set_ask(self, price: str, size: str) -> None:
        self._set(self._asks, 1, float(price), price, size)

    def _set(self, side: SortedDict, index: int, key: float, price: str, size: str) -> None:
        amount = float(size)
        # key is -price for bids, +price for asks: the price must be > 0 and finite, the size >= 0 and finite
        # (written so that NaN fails every comparison), or a tick would carry what the contract rejects.
        if not (0 <= amount < _INF and 0 < (key if index else -key) < _INF):
            raise ValueError(f"bad book level: price {price!r}, size {size!r}")
        if amount == 0:
            side.pop(key, None)
            return
        side[key] = (amount, price, size)
        if len(side) > self.max_levels:
            side.popitem()  # the furthest from the top
            self._truncated[index] = True

    def top(self, n: int) -> tuple[Levels, Levels]:
        """The best `n` levels of each side as (price, size) floats, best first."""
        bids = tuple((-key, value[0]) for key, value in islice(self._bids.items(), n))
        asks = tuple((key, value[0]) for key, value in islice(self._asks.items(), n))
        return bids, asks

    def text(self, n: int) -> tuple[list[TextLevel], list[TextLevel]]:
        """The best `n` levels of each side as the venue wrote them, for checksums."""
        bids = [(value[1], value[2]) for value in islice(self._bids.values(), n)]
        asks = [(value[1], value[2]) for value in islice(self._asks.values(), n)]
        return bids, asks

    def depth(self) -> tuple[int, int]:
        """How many levels each side holds (bids, asks)."""
        return len(self._bids), len(self._asks)

    def complete(self, n: int) -> bool:
        """Whether the top `n` levels are surely the venue's: both sides hold some, the book is not crossed,
        and a side that was truncated still holds at least `n`."""
        bids, asks = self._bids, self._asks
        if not bids or not asks:
            return False
        if -bids.peekitem(0)[0] >= asks.peekitem(0)[0]:
            return False
        return all(not truncated or len(side) >= n for truncated, side in zip(self._truncated, (bids, asks)))
