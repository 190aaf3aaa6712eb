"""OrderBook refuses levels a tick could not carry (core/books/book.py)."""
from __future__ import annotations

import pytest

from core.books.book import OrderBook


@pytest.mark.parametrize("price,size", [("-1", "1"), ("0", "1"), ("NaN", "1"), ("inf", "1"), ("1", "-1"),
                                        ("1", "NaN"), ("1", "inf"), ("-inf", "1")])
@pytest.mark.parametrize("side", ["bid", "ask"])
def test_a_level_no_tick_could_carry_is_refused(side, price, size):
    book = OrderBook()
    with pytest.raises(ValueError, match="bad book level"):
        getattr(book, f"set_{side}")(price, size)
    assert book.depth() == (0, 0)


def test_good_levels_sort_best_first_and_size_zero_deletes():
    book = OrderBook()
    book.snapshot([("99", "1"), ("100", "2")], [("102", "1"), ("101", "3")])
    book.set_bid("99", "0")
    assert book.top(5) == (((100.0, 2.0),), ((101.0, 3.0), (102.0, 1.0)))
    assert book.text(1) == ([("100", "2")], [("101", "3")])
