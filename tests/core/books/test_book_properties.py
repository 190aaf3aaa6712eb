"""OrderBook against a brute-force model: a plain dict of levels per side, sorted afresh at every look.

Random snapshots, deltas and deletes (size 0, in the venues' several spellings of zero), on a small grid
of prices written in more than one way (the book keys by number, keeps the latest text), with
max_levels small enough that truncation happens all the time.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.books.book import OrderBook

PROPERTIES = settings(max_examples=400, deadline=None, database=None)

prices = st.builds(lambda tick, digits: f"{tick / 4:.{digits}f}", st.integers(1, 40), st.sampled_from([2, 4]))
sizes = st.sampled_from(["0", "0.000", "0.00000000", "1", "2.5", "0.10000000", "3", "12.25"])
levels = st.lists(st.tuples(prices, sizes), max_size=12)
operations = st.lists(st.one_of(
    st.tuples(st.just("snapshot"), levels, levels),
    st.tuples(st.just("bid"), prices, sizes),
    st.tuples(st.just("ask"), prices, sizes),
), max_size=40)


class Model:
    """Each side a dict price -> (price text, size text); the worst level dropped past max_levels."""

    def __init__(self, max_levels: int) -> None:
        self.max_levels = max_levels
        self.sides: dict[str, dict[float, tuple[str, str]]] = {"bid": {}, "ask": {}}
        self.truncated = {"bid": False, "ask": False}

    def set(self, side: str, price: str, size: str) -> None:
        levels = self.sides[side]
        if float(size) == 0:
            levels.pop(float(price), None)
            return
        levels[float(price)] = (price, size)
        if len(levels) > self.max_levels:
            del levels[min(levels) if side == "bid" else max(levels)]
            self.truncated[side] = True

    def snapshot(self, bids, asks) -> None:
        self.sides = {"bid": {}, "ask": {}}
        self.truncated = {"bid": False, "ask": False}
        for price, size in bids:
            self.set("bid", price, size)
        for price, size in asks:
            self.set("ask", price, size)

    def ordered(self, side: str) -> list[float]:
        return sorted(self.sides[side], reverse=side == "bid")

    def top(self, n: int):
        return tuple(tuple((p, float(self.sides[side][p][1])) for p in self.ordered(side)[:n])
                     for side in ("bid", "ask"))

    def text(self, n: int):
        return tuple([self.sides[side][p] for p in self.ordered(side)[:n]] for side in ("bid", "ask"))

    def complete(self, n: int) -> bool:
        bids, asks = self.ordered("bid"), self.ordered("ask")
        if not bids or not asks or bids[0] >= asks[0]:
            return False
        return all(not self.truncated[side] or len(self.sides[side]) >= n for side in ("bid", "ask"))


@PROPERTIES
@given(st.integers(1, 8), operations)
def test_the_book_agrees_with_the_model_after_every_operation(max_levels, ops):
    book, model = OrderBook(max_levels), Model(max_levels)
    for op in ops:
        if op[0] == "snapshot":
            book.snapshot(op[1], op[2])
            model.snapshot(op[1], op[2])
        else:
            (book.set_bid if op[0] == "bid" else book.set_ask)(op[1], op[2])
            model.set(op[0], op[1], op[2])
        assert book.depth() == (len(model.sides["bid"]), len(model.sides["ask"]))
        assert all(n <= max_levels for n in book.depth())
        for n in (1, 3, max_levels, max_levels + 1):
            assert book.top(n) == model.top(n)
            bids, asks = book.text(n)
            assert (bids, asks) == model.text(n)
        for n in range(1, max_levels + 2):
            assert book.complete(n) == model.complete(n), (n, op)


@PROPERTIES
@given(st.integers(1, 8), levels, levels)
def test_clear_then_snapshot_is_the_snapshot(max_levels, bids, asks):
    book = OrderBook(max_levels)
    book.snapshot(asks, bids)
    book.set_bid("1.00", "5")
    book.clear()
    assert book.depth() == (0, 0) and not book.complete(1)
    book.snapshot(bids, asks)
    fresh = OrderBook(max_levels)
    fresh.snapshot(bids, asks)
    assert book.text(max_levels) == fresh.text(max_levels) and book.complete(1) == fresh.complete(1)


@pytest.mark.parametrize("price,size", [("0", "1"), ("-1", "1"), ("nan", "1"), ("inf", "1"), ("1", "-0.5"),
                                        ("1", "nan"), ("1", "inf"), ("x", "1")])
@pytest.mark.parametrize("side", ["set_bid", "set_ask"])
def test_bad_levels_are_rejected_with_their_text(side, price, size):
    book = OrderBook()
    with pytest.raises(ValueError, match="bad book level|could not convert"):
        getattr(book, side)(price, size)
    assert book.depth() == (0, 0)


def test_max_levels_must_be_positive():
    with pytest.raises(ValueError, match="max_levels must be at least 1, got 0"):
        OrderBook(0)
