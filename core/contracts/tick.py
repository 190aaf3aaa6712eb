"""The normalized tick: the one contract between ingestion and the Flink job.

Both sides validate with the same function so a tick the connector accepts is a tick the job
accepts, and a bad one is rejected with the same reason wherever it is caught.
"""
from __future__ import annotations

import math
from math import isfinite
from typing import Any, NamedTuple, Protocol, TypeVar

import orjson

from core.contracts.times import iso_ms

Level = tuple[float, float]  # (price, size) of one order-book level
Levels = tuple[Level, ...]  # best first: bids highest first, asks lowest first


class Tick(NamedTuple):
    """A top-of-book quote, with the top levels of the venue's book when it sends one (docs/ticks.md).
    A tuple, not a dataclass: the job handles millions and tuples are cheapest."""

    venue: str
    symbol: str
    bid: float
    ask: float
    bid_size: float | None
    ask_size: float | None
    ts: int
    bids: Levels | None = None  # level 0 is (bid, bid_size)
    asks: Levels | None = None  # level 0 is (ask, ask_size)

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"venue": self.venue, "symbol": self.symbol, "bid": self.bid, "ask": self.ask}
        if self.bid_size is not None:
            out["bid_size"] = self.bid_size
        if self.ask_size is not None:
            out["ask_size"] = self.ask_size
        out["ts"] = self.ts
        if self.bids is not None:
            out["bids"] = [list(level) for level in self.bids]
        if self.asks is not None:
            out["asks"] = [list(level) for level in self.asks]
        return out


class InvalidTick(ValueError):
    """Raised with a reason that names the offending field, so a dead letter says what was wrong."""


def number(value: Any, field: str, *, required: bool) -> float | None:
    """A finite float from a JSON number or numeric string; InvalidTick names `field` otherwise."""
    kind = type(value)
    if kind is not str and kind is not float and kind is not int:  # the common types skip the checks below
        if value is None:
            if required:
                raise InvalidTick(f"missing field {field!r}")
            return None
        if isinstance(value, bool):
            raise InvalidTick(f"field {field!r} must be a number, got a boolean")
        if not isinstance(value, (str, int, float)):
            raise InvalidTick(f"field {field!r} must be a number, got {kind.__name__}")
    try:
        result = float(value)
    except (ValueError, OverflowError):
        raise InvalidTick(f"field {field!r} is not numeric: {str(value)[:40]!r}") from None
    if not isfinite(result):
        raise InvalidTick(f"field {field!r} is not finite: {result}")
    return result


def parse_symbol(symbol: Any) -> str:
    if not isinstance(symbol, str):
        raise InvalidTick("field 'symbol' must be a string like 'BTC/USDT'")
    parts = symbol.split("/")
    if len(parts) != 2 or not all(p.isalnum() and p.isupper() for p in parts):
        raise InvalidTick(f"field 'symbol' must be BASE/QUOTE in upper case, got {symbol[:40]!r}")
    if parts[0] == parts[1]:
        raise InvalidTick(f"field 'symbol' has the same base and quote: {symbol[:40]!r}")
    return symbol


WATERMARK_PREFIX = b'{"watermark":'


def watermark_value(ts: int) -> bytes:
    """A producer's promise, written into a partition of `ticks`: it will send that partition no tick
    dated before `ts`. It lets the job release ticks that wait for a later one when the feed goes quiet,
    by event time kept in the log, so a replay and a restore decide alike (core/event_order.py)."""
    return orjson.dumps({"watermark": ts})


def watermark_in(value: bytes | None) -> int | None:
    """The promise a `ticks` record carries, or None when it is not a watermark record."""
    if value is None or not value.startswith(WATERMARK_PREFIX):
        return None
    try:
        ts = orjson.loads(value).get("watermark")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return ts if type(ts) is int else None


def decode_json(value: bytes | str | None) -> Any:
    """One JSON record (a Kafka value, a JSONL line); InvalidTick when it is none."""
    if value is None:
        raise InvalidTick("empty record (null value)")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidTick(f"not JSON: {exc}") from None


def decode_tick(value: bytes | str | None) -> Tick:
    """A tick from one JSON record (a Kafka value, a JSONL line); InvalidTick says what is wrong."""
    return tick_from_dict(decode_json(value))


_INF = float("inf")
# Venue and symbol strings already validated: the job sees the same few again and again.
_VALID_VENUES: set[str] = set()
_VALID_SYMBOLS: set[str] = set()
_VALID_NAMES_MAX = 100_000


def tick_from_dict(obj: Any) -> Tick:
    """Validate a decoded JSON object as a normalized tick; raise InvalidTick naming the field.

    The first branch accepts only what is plainly valid (floats in range, names seen valid before)
    at a fraction of the cost; anything else takes the full checks, which say what is wrong.
    """
    if type(obj) is dict:
        venue, symbol, bid, ask, ts = obj.get("venue"), obj.get("symbol"), obj.get("bid"), obj.get("ask"), obj.get("ts")
        bid_size, ask_size = obj.get("bid_size"), obj.get("ask_size")
        if (type(venue) is str and type(symbol) is str and venue in _VALID_VENUES and symbol in _VALID_SYMBOLS
                and type(bid) is float and type(ask) is float and 0.0 < bid <= ask < _INF
                and type(ts) is int and 10**11 <= ts < 10**14
                and (bid_size is None or (type(bid_size) is float and 0.0 <= bid_size < _INF))
                and (ask_size is None or (type(ask_size) is float and 0.0 <= ask_size < _INF))):
            bids, asks = obj.get("bids"), obj.get("asks")
            if bids is None and asks is None:
                return Tick(venue, symbol, bid, ask, bid_size, ask_size, ts)
            bid_levels = _plain_levels(bids, bid, bid_size, descending=True)
            ask_levels = _plain_levels(asks, ask, ask_size, descending=False)
            if bid_levels is not None and ask_levels is not None:
                return Tick(venue, symbol, bid, ask, bid_size, ask_size, ts, bid_levels, ask_levels)
    tick = _checked_tick_from_dict(obj)
    if len(_VALID_SYMBOLS) < _VALID_NAMES_MAX:
        _VALID_VENUES.add(tick.venue)
        _VALID_SYMBOLS.add(tick.symbol)
    return tick


def _checked_tick_from_dict(obj: Any) -> Tick:
    if not isinstance(obj, dict):
        raise InvalidTick(f"a tick must be a JSON object, got {type(obj).__name__}")
    tick = tick_from_values(parse_venue(obj.get("venue")), parse_symbol(obj.get("symbol")), obj.get("bid"),
                            obj.get("ask"), obj.get("bid_size"), obj.get("ask_size"), obj.get("ts"))
    bids, asks = obj.get("bids"), obj.get("asks")
    if bids is None and asks is None:
        return tick
    return with_levels(tick, bids, asks)


def with_levels(tick: Tick, bids: Any, asks: Any) -> Tick:
    """The tick with the book's top levels: both sides, best first, level 0 the tick's own quote (so the
    two can never disagree about the price an opportunity was found at). InvalidTick names the level."""
    if bids is None or asks is None:
        raise InvalidTick(f"field {'bids' if bids is None else 'asks'!r} is missing: a tick carries both sides "
                          "of the book or neither")
    return tick._replace(bids=_levels(bids, "bids", tick.bid, tick.bid_size, descending=True),
                         asks=_levels(asks, "asks", tick.ask, tick.ask_size, descending=False))


def _plain_levels(value: Any, top: float, top_size: float | None, *, descending: bool) -> Levels | None:
    """The levels when they are plainly valid (pairs of floats, sizes > 0, prices > 0 in strict order, level 0
    the tick's quote), else None for _levels to say what is wrong: a 20-level book costs a fraction of its checks."""
    if type(value) is not list or not value:
        return None
    out: list[Level] = []
    last = _INF if descending else 0.0
    for level in value:
        if type(level) is not list or len(level) != 2:
            return None
        price, size = level
        if type(price) is not float or type(size) is not float or not 0.0 < size < _INF:
            return None
        if not (0.0 < price < last if descending else last < price < _INF):
            return None
        out.append((price, size))
        last = price
    if out[0][0] != top or (top_size is not None and out[0][1] != top_size):
        return None
    return tuple(out)


def _levels(value: Any, name: str, top: float, top_size: float | None, *, descending: bool) -> Levels:
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidTick(f"field {name!r} must be a non-empty list of [price, size] levels")
    out: list[Level] = []
    for index, level in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise InvalidTick(f"field {where!r} must be a [price, size] pair")
        price = number(level[0], f"{where} price", required=True)
        size = number(level[1], f"{where} size", required=True)
        if price is None or size is None or price <= 0 or size <= 0:  # never None: both are required
            raise InvalidTick(f"field {where!r} needs price > 0 and size > 0, got [{price}, {size}]")
        if out and (price >= out[-1][0] if descending else price <= out[-1][0]):
            order = "strictly descending" if descending else "strictly ascending"
            raise InvalidTick(f"field {where!r} price {price} breaks the {order} order of {name}")
        out.append((price, size))
    if out[0][0] != top or (top_size is not None and out[0][1] != top_size):
        raise InvalidTick(f"field {name + '[0]'!r} {list(out[0])} is not the tick's own quote "
                          f"[{top}, {top_size}]")
    return tuple(out)


def parse_venue(venue: Any) -> str:
    if not isinstance(venue, str) or not venue or venue != venue.lower() or ":" in venue:
        raise InvalidTick("field 'venue' must be a non-empty lowercase string without ':'")
    return venue


def tick_from_values(venue: str, symbol: str, bid: Any, ask: Any, bid_size: Any, ask_size: Any, ts: Any) -> Tick:
    """The checks of tick_from_dict for values a venue parser already picked out of a frame.

    Parsers call this directly (venue and symbol come from their own tables) so a frame is checked by
    the same rules as a JSON tick without building an intermediate dict on the hot path.
    """
    bid = number(bid, "bid", required=True)
    ask = number(ask, "ask", required=True)
    if bid <= 0:
        raise InvalidTick(f"field 'bid' must be > 0, got {bid}")
    if ask <= 0:
        raise InvalidTick(f"field 'ask' must be > 0, got {ask}")
    if bid > ask:
        raise InvalidTick(f"crossed quote: bid {bid} > ask {ask}")
    bid_size = number(bid_size, "bid_size", required=False)
    ask_size = number(ask_size, "ask_size", required=False)
    if bid_size is not None and bid_size < 0:
        raise InvalidTick(f"field 'bid_size' must be >= 0, got {bid_size}")
    if ask_size is not None and ask_size < 0:
        raise InvalidTick(f"field 'ask_size' must be >= 0, got {ask_size}")
    return Tick(venue, symbol, bid, ask, bid_size, ask_size, epoch_ms(ts))


class Timed(Protocol):
    """A tick or a trade, as far as event time goes."""

    @property
    def ts(self) -> int: ...


T = TypeVar("T", bound=Timed)


def check_not_ahead(record: T, reference_ms: int, max_ahead_ms: int) -> T:
    """The tick (or trade), unless its event time is more than `max_ahead_ms` after `reference_ms` (when it was
    written): one dated in the future would otherwise carry every watermark, and every later one would be late."""
    ahead = record.ts - reference_ms
    if ahead > max_ahead_ms:
        raise InvalidTick(f"event time {iso_ms(record.ts)} is {ahead} ms after the record was written "
                          f"({iso_ms(reference_ms)}): more than the {max_ahead_ms} ms allowed (job.max_future_skew_ms)")
    return record


def epoch_ms(ts: Any, field: str = "ts") -> int:
    """Reject seconds or microseconds passed off as milliseconds: they would silently skew every window."""
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise InvalidTick(f"field {field!r} must be epoch milliseconds (a number)")
    if not 10**11 <= ts < 10**14:
        raise InvalidTick(f"field {field!r} is not epoch milliseconds: {ts}")
    return int(ts)
