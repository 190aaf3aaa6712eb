"""Book levels through the tick contract: the fast path for plainly valid books and the full checks agree."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contracts.tick import InvalidTick, Tick, decode_tick, with_levels

T = 1_700_000_000_000
TOP = Tick("binance", "BTC/USDT", 100.0, 100.1, 1.0, 2.0, T)


@st.composite
def books(draw):
    """Levels as JSON sends them, sometimes spoiled in one place (a type, a value, the order, level 0)."""
    depth = draw(st.integers(1, 20))
    bids = [[100.0 - 0.01 * k, 1.0 if k == 0 else draw(st.floats(0.001, 9.0))] for k in range(depth)]
    asks = [[100.1 + 0.01 * k, 2.0 if k == 0 else draw(st.floats(0.001, 9.0))] for k in range(depth)]
    side, k = draw(st.sampled_from([bids, asks])), draw(st.integers(0, depth - 1))
    spoil = draw(st.sampled_from([None, "int", "negative", "zero", "order", "bool", "short", "string"]))
    if spoil == "int":
        side[k][0] = int(side[k][0]) or 1
    elif spoil == "negative":
        side[k][1] = -side[k][1]
    elif spoil == "zero":
        side[k][1] = 0.0
    elif spoil == "order" and k:
        side[k][0] = side[k - 1][0]
    elif spoil == "bool":
        side[k][1] = True
    elif spoil == "short":
        side[k] = side[k][:1]
    elif spoil == "string":
        side[k][0] = str(side[k][0])
    return bids, asks


@given(books())
def test_a_book_decodes_as_the_full_checks_say(book):
    bids, asks = book
    decode_tick(orjson.dumps(TOP.to_json_dict()))  # names seen valid: the fast path is open
    value = orjson.dumps({**TOP.to_json_dict(), "bids": bids, "asks": asks})
    try:
        want = with_levels(TOP, bids, asks)
    except InvalidTick as error:
        with pytest.raises(InvalidTick) as raised:
            decode_tick(value)
        assert str(raised.value) == str(error)
    else:
        assert decode_tick(value) == want


def test_a_tick_with_one_side_of_a_book_is_refused():
    with pytest.raises(InvalidTick, match="'asks' is missing"):
        decode_tick(orjson.dumps({**TOP.to_json_dict(), "bids": [[100.0, 1.0]]}))
