"""Rule expressions compiled to closures over the market state: no interpreter loop, no eval.

A value the market has not shown yet (no quote for a symbol, an empty window, a division by zero)
raises Unknown; the rule is then simply not true, and fires once the data is there.
"""
from __future__ import annotations

import operator
from array import array
from collections import defaultdict
from collections.abc import Callable
from typing import Any, assert_never

from core.contracts.tick import Tick
from core.contracts.trade import Trade

from .nfa import events_of
from .rules.tree import (
    Abs,
    Binary,
    EventField,
    EventIs,
    Expr,
    ExprWindow,
    Number,
    Pattern,
    QuoteFn,
    Ref,
    Rule,
    StageValue,
    Unary,
    WindowFn,
)
from .windows import Trailing

Fn = Callable[[Any], Any]  # takes the partial match (None outside patterns)

WINDOW_READERS = {"vwap": Trailing.vwap, "volume": Trailing.total_volume, "change_pct": Trailing.change_pct,
                  "volatility": Trailing.volatility, "stddev": Trailing.stddev, "mean": Trailing.mean,
                  "high": Trailing.high, "low": Trailing.low, "zscore": Trailing.zscore}
TRADE_FUNCTIONS = ("vwap", "volume")  # read trades; the others read quote mid prices
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, ">": operator.gt, ">=": operator.ge,
           "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


class Unknown(Exception):
    """The expression reads data the engine has not seen."""


def mid(tick: Tick) -> float:
    return (tick.bid + tick.ask) * 0.5


QUOTE_FIELDS: dict[str, Callable[[Tick], float]] = {
    "price": mid,
    "bid": lambda t: t.bid,
    "ask": lambda t: t.ask,
    "spread": lambda t: t.ask - t.bid,
    "spread_bps": lambda t: (t.ask - t.bid) / mid(t) * 10_000.0,
    "ts": lambda t: float(t.ts),
}


def _no_value(event: Any) -> float:
    raise Unknown


# The fields of an event a rule can read, by kind: a trade has a price and a size, a quote a bid and an ask.
TRADE_FIELDS: dict[str, Callable[[Trade], float]] = {
    "price": lambda t: t.price, "size": lambda t: t.size, "ts": lambda t: float(t.ts)}
EVENT_FIELDS: dict[str, tuple[Callable[[Any], float], Callable[[Any], float]]] = {
    name: (QUOTE_FIELDS.get(name, _no_value), TRADE_FIELDS.get(name, _no_value))
    for name in ("price", "bid", "ask", "spread", "spread_bps", "size", "ts")}


def event_field(name: str) -> Callable[[Any], float]:
    """An event's field whatever its kind; Unknown where the kind has none (a trade's bid, a quote's size)."""
    of_quote, of_trade = EVENT_FIELDS[name]
    return lambda event: of_quote(event) if type(event) is Tick else of_trade(event)


def event_text(event: Tick | Trade, field: str) -> str:
    if field == "kind":
        return "quote" if type(event) is Tick else "trade"
    return event.venue if field == "venue" else event.symbol


class Symbol:
    """What the market holds of one symbol, found with one lookup a tick: its newest quote of any venue, each venue's
    latest, and the windows each venue's quotes and trades feed (worked out on first use, forgotten when the symbol's
    windows change). A dict keyed by (symbol, venue) cost a fresh tuple, its hash and a compare on every lookup."""

    __slots__ = ("newest", "quotes", "quote_feeds", "trade_feeds")

    def __init__(self) -> None:
        self.newest: Tick | None = None
        self.quotes: dict[str, Tick] = {}  # venue -> its latest quote, venues in the order they came
        self.quote_feeds: dict[str, tuple[Trailing, ...]] = {}
        self.trade_feeds: dict[str, tuple[Trailing, ...]] = {}

    def quote(self, venue: str | None) -> Tick | None:
        return self.newest if venue is None else self.quotes.get(venue)


class EventLog:
    """The events a market's windows took, as the columns the state packs them in, appended where the market has
    each field at hand: a walk over the events at the batch's end, each read back field by field, was a tenth of a
    wide market's tick. A trade's size is kept with its position: quotes have none."""

    __slots__ = ("symbols", "venues", "times", "prices", "trade_at", "sizes")

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.venues: list[str] = []
        self.times: list[int] = []
        self.prices: list[float] = []  # a quote's mid, a trade's price
        self.trade_at: list[int] = []  # the positions of the trades
        self.sizes: list[float] = []  # and their sizes

    def add(self, symbol: str, venue: str, ts: int, price: float) -> None:
        """An event: a quote at its mid, or a trade at its price once trade() has kept its size."""
        self.symbols.append(symbol)
        self.venues.append(venue)
        self.times.append(ts)
        self.prices.append(price)

    def trade(self, symbol: str, venue: str, ts: int, price: float, size: float) -> None:
        self.trade_at.append(len(self.symbols))
        self.sizes.append(size)
        self.add(symbol, venue, ts, price)

    def packed(self) -> tuple:
        """(symbols, venues, a byte a event (1: a trade), times, prices, sizes or b"" where no event is a trade)."""
        kinds = bytearray(len(self.symbols))
        sizes = array("d", bytes(8 * len(self.symbols))) if self.trade_at else array("d")
        for at, size in zip(self.trade_at, self.sizes):
            kinds[at] = 1
            sizes[at] = size
        return (self.symbols, self.venues, bytes(kinds), array("q", self.times).tobytes(),
                array("d", self.prices).tobytes(), sizes.tobytes())


class Market:
    """Latest quote per symbol (any venue and per venue) and the trailing windows rules read."""

    def __init__(self) -> None:
        self.event: Any = None  # the event being evaluated (a Tick or a Trade), which event.price... reads
        self.symbols: dict[str, Symbol] = {}
        # symbol -> [(venue or None, "quote" | "trade", window)], so a tick updates only what rules read
        self.series: dict[str, list[tuple[str | None, str, Trailing]]] = defaultdict(list)
        self._windows: dict[tuple, Trailing] = {}
        self._users: dict[tuple, int] = defaultdict(int)
        # symbol -> how many compiled rules read its quotes (price(), spread_bps()...): only those are state
        self.quote_readers: dict[str, int] = defaultdict(int)
        # The events the windows took, in order: the state keeps them as a log, one entry a batch, and the windows
        # whole only now and then (a window's segments were an entry for nearly every event of a wide market).
        self.log = EventLog()  # since take_log()
        self.logging = False  # only for a host that takes the state's changes: a backtest or a trial never does
        self.logged = 0  # events logged in all: the position of the next in the log
        self.created: list[tuple] = []  # the keys of windows made since take_log()

    def symbol(self, name: str) -> Symbol:
        entry = self.symbols.get(name)
        if entry is None:
            entry = self.symbols[name] = Symbol()
        return entry

    def quote(self, symbol: str, venue: str | None) -> Tick | None:
        """The latest quote of the symbol on the venue, or on any venue (None)."""
        entry = self.symbols.get(symbol)
        return None if entry is None else entry.quote(venue)

    def venues(self, symbol: str) -> list[str]:
        """The venues the symbol has quotes from."""
        entry = self.symbols.get(symbol)
        return [] if entry is None else list(entry.quotes)

    def _feed(self, symbol: str, venue: str, kind: str) -> tuple[Trailing, ...]:
        """The windows an event of `kind` of (symbol, venue) feeds."""
        return tuple(window for on, source, window in self.series.get(symbol, ())
                     if source == kind and (on is None or on == venue))

    def on_tick(self, tick: Tick) -> None:
        self.event = tick
        symbol, venue = tick.symbol, tick.venue
        entry = self.symbol(symbol)
        windows = entry.quote_feeds.get(venue)
        if windows is None:
            windows = entry.quote_feeds[venue] = self._feed(symbol, venue, "quote")
        entry.newest = tick
        entry.quotes[venue] = tick
        if windows:
            ts, price = tick.ts, (tick.bid + tick.ask) * 0.5
            for window in windows:
                window.add(ts, price)
            if self.logging:
                self.log.add(symbol, venue, ts, price)
                self.logged += 1

    def on_trade(self, trade: Trade) -> None:
        self.event = trade
        symbol, venue = trade.symbol, trade.venue
        entry = self.symbol(symbol)
        windows = entry.trade_feeds.get(venue)
        if windows is None:
            windows = entry.trade_feeds[venue] = self._feed(symbol, venue, "trade")
        if windows:
            for window in windows:
                window.add(trade.ts, trade.price, trade.size)
            if self.logging:
                self.log.trade(symbol, venue, trade.ts, trade.price, trade.size)
                self.logged += 1

    def take_log(self) -> tuple[int, tuple] | None:
        """The events logged since the last call, packed as columns, with the position of the first."""
        log, self.log = self.log, EventLog()
        self.created = []
        if not log.symbols:
            return None
        return self.logged - len(log.symbols), log.packed()

    def replay(self, first: int, packed: tuple) -> None:
        """Feed a log entry's events to the windows that were there when each came (a restore)."""
        symbols, venues, trades, times, prices, sizes = packed
        ts_of, price_of = array("q", times), array("d", prices)
        size_of = array("d", sizes) if sizes else None
        for i, symbol in enumerate(symbols):
            position, venue, entry = first + i, venues[i], self.symbol(symbol)
            known = entry.trade_feeds if trades[i] else entry.quote_feeds
            feeds = known.get(venue)
            if feeds is None:
                feeds = known[venue] = self._feed(symbol, venue, "trade" if trades[i] else "quote")
            for window in feeds:
                if window.logged_from <= position:
                    window.add(ts_of[i], price_of[i], size_of[i] if size_of is not None else 0.0)

    def window(self, symbol: str, venue: str | None, source: str, duration_ms: int, fn: str) -> Trailing:
        key = (symbol, venue, source, duration_ms)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = Trailing(duration_ms, extremes=False, returns=False)
            window.logged_from = self.logged
            self.created.append(key)
            self.series[symbol].append((venue, source, window))
            self._forget_feeds(symbol)
        window.need(extremes=fn in ("high", "low"), returns=fn == "volatility")
        self._users[key] += 1
        return window

    def read_quotes(self, symbol: str) -> None:
        """A compiled rule reads the symbol's quotes, so they are state (release_quotes() when it goes)."""
        self.quote_readers[symbol] += 1

    def release_quotes(self, symbols: list[str]) -> list[str]:
        """Forget readers of quotes; returns the symbols whose quotes no rule reads any more."""
        gone = []
        for symbol in symbols:
            self.quote_readers[symbol] -= 1
            if self.quote_readers[symbol] <= 0:
                del self.quote_readers[symbol]
                gone.append(symbol)
        return gone

    def release(self, keys: list[tuple]) -> list[tuple[tuple, Trailing]]:
        """Forget windows no rule reads any more; returns them, with their keys."""
        gone = []
        for key in keys:
            self._users[key] -= 1
            if self._users[key] <= 0:
                del self._users[key]
                window = self._windows.pop(key)
                gone.append((key, window))
                self._forget_feeds(key[0])
                self.series[key[0]] = [s for s in self.series[key[0]] if s[2] is not window]
                if not self.series[key[0]]:
                    del self.series[key[0]]
        return gone

    def _forget_feeds(self, symbol: str) -> None:
        entry = self.symbols.get(symbol)
        if entry is not None:
            entry.quote_feeds.clear()
            entry.trade_feeds.clear()

    def restore_quotes(self, quotes: list[tuple]) -> None:
        """Quotes as the state holds them (tuples of Tick fields), in any order of entries: the newest of each stays."""
        for fields in sorted(quotes, key=lambda f: f[6]):  # ts, the seventh field of a Tick
            tick = Tick(*fields)
            entry = self.symbol(tick.symbol)
            held = entry.quotes.get(tick.venue)
            if held is None or held.ts <= tick.ts:
                entry.quotes[tick.venue] = tick
            if entry.newest is None or entry.newest.ts <= tick.ts:
                entry.newest = tick

    def windows(self) -> dict[tuple, Trailing]:
        """The windows rules read, by (symbol, venue, "quote" | "trade", duration)."""
        return self._windows


class Compiled:
    """A rule's expressions as closures, plus what it reads (to release the windows with the rule).

    Windows over an expression belong to the rule: feed() adds the expressions' values each time the
    rule is evaluated, before its condition reads them."""

    # slots: a tick of a 1,000-symbol market meets its keys' Compiled cold, and a slot is one read, not a dict's
    __slots__ = ("market", "window_keys", "quote_symbols", "own_windows", "defines", "define_uses_match", "_uses_match",
                 "condition", "until")

    def __init__(self, rule: Rule, market: Market) -> None:
        self.market = market
        self._uses_match = False
        self.window_keys: list[tuple] = []
        self.quote_symbols: list[str] = []  # one per quote function, as window_keys has one per window function
        self.own_windows: list[tuple[Fn, Trailing]] = []
        self.defines: dict[str, Fn] = {}
        self.define_uses_match: dict[str, bool] = {}
        for define in rule.defines:
            self._uses_match = False
            self.defines[define.name] = self.expr(define.expr)
            self.define_uses_match[define.name] = self._uses_match
        self.condition = None if isinstance(rule.body, Pattern) else self.expr(rule.body)
        self.until = None if rule.until is None else self.expr(rule.until)

    def expr(self, node: Expr) -> Fn:
        match node:
            case Number(value=value):
                constant = float(value)
                return lambda m: constant
            case Binary(op=op, left=left, right=Number(value=value)) if op in _BINARY:  # `x > 0.5`: one call fewer
                f, a, constant = _BINARY[op], self.expr(left), float(value)
                return lambda m: f(a(m), constant)
            case Binary(op=op, left=left, right=right):
                return self._binary(op, self.expr(left), self.expr(right))
            case Unary(op="not", operand=operand):
                a = self.expr(operand)
                return lambda m: not a(m)
            case Unary(operand=operand):
                a = self.expr(operand)
                return lambda m: -a(m)
            case Abs(arg=arg):
                a = self.expr(arg)
                return lambda m: abs(a(m))
            case QuoteFn(fn=fn, symbol=symbol, venue=venue):
                assert symbol is not None  # a partitioned rule is compiled bound to its key
                return self._quote(fn, (symbol, venue))
            case WindowFn(fn=fn, symbol=symbol, venue=venue, window_ms=window_ms):
                assert symbol is not None  # a partitioned rule is compiled bound to its key
                return self._window(fn, symbol, venue, window_ms)
            case ExprWindow(fn=fn, expr=inner, window_ms=window_ms):
                return self._expr_window(fn, self.expr(inner), window_ms)
            case EventField(field=number):
                return self._event_field(number)
            case EventIs(field=text, value=value):
                market = self.market
                return lambda m: event_text(market.event, text) == value
            case Ref(name=name):
                self._uses_match = self._uses_match or self.define_uses_match[name]
                return self.defines[name]
            case StageValue(stage=stage, agg=agg, field=field):
                self._uses_match = True
                return _stage_value(stage, agg, field)
        assert_never(node)

    @staticmethod
    def _binary(op: str, a: Fn, b: Fn) -> Fn:
        if op == "and":
            return lambda m: a(m) and b(m)
        if op == "or":
            return lambda m: a(m) or b(m)
        if op == "/":
            def divide(m):
                divisor = b(m)
                if divisor == 0:
                    raise Unknown
                return a(m) / divisor
            return divide
        f = _BINARY[op]
        return lambda m: f(a(m), b(m))

    def _quote(self, fn: str, key: tuple[str, str | None]) -> Fn:
        entry, venue = self.market.symbol(key[0]), key[1]
        self.quote_symbols.append(key[0])
        self.market.read_quotes(key[0])
        if fn == "price":  # the most used function, without the field lookup
            def price(m):
                tick = entry.newest if venue is None else entry.quotes.get(venue)
                if tick is None:
                    raise Unknown
                return (tick.bid + tick.ask) * 0.5
            return price
        field = QUOTE_FIELDS[fn]

        def quote(m):
            tick = entry.newest if venue is None else entry.quotes.get(venue)
            if tick is None:
                raise Unknown
            return field(tick)
        return quote

    def _event_field(self, field: str) -> Fn:
        market, read = self.market, event_field(field)
        return lambda m: read(market.event)

    def _expr_window(self, fn: str, inner: Fn, window_ms: int) -> Fn:
        window = Trailing(window_ms, extremes=fn in ("high", "low"), returns=fn == "volatility")
        self.own_windows.append((inner, window))
        return _reading(WINDOW_READERS[fn], window)

    def feed(self, ts: int) -> None:
        """Add each windowed expression's value now (none while it is Unknown)."""
        for inner, window in self.own_windows:
            try:
                value = inner(None)
            except Unknown:
                continue
            window.add(ts, value)

    def _window(self, fn: str, symbol: str, venue: str | None, window_ms: int) -> Fn:
        source = "trade" if fn in TRADE_FUNCTIONS else "quote"
        self.window_keys.append((symbol, venue, source, window_ms))
        return _reading(WINDOW_READERS[fn], self.market.window(symbol, venue, source, window_ms, fn))


def _reading(reader: Callable[[Trailing], float | None], window: Trailing) -> Fn:
    def windowed(m):
        value = reader(window)
        if value is None:
            raise Unknown
        return value
    return windowed


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "first": lambda v: v[0], "last": lambda v: v[-1], "min": min, "max": max, "avg": lambda v: sum(v) / len(v),
    "sum": sum}


def _stage_value(stage: str, agg: str, field_name: str | None) -> Fn:
    if field_name is None:  # count(stage)
        return lambda m: float(len(events_of(m, stage)))
    field, reduce = event_field(field_name), _REDUCERS[agg]

    def value(m):
        events = events_of(m, stage)
        if not events:
            raise Unknown
        return reduce([field(e) for e in events])
    return value
