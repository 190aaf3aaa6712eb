"""Rule expressions compiled to closures over the market state: no interpreter loop, no eval.

A value the market has not shown yet (no quote for a symbol, an empty window, a division by zero)
raises Unknown; the rule is then simply not true, and fires once the data is there.
"""
from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable
from typing import Any, assert_never

from core.contracts.tick import Tick

from .nfa import events_of
from .rules.tree import Abs, Binary, Expr, Number, Pattern, QuoteFn, Ref, Rule, StageValue, Unary, WindowFn
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


class Market:
    """Latest quote per symbol (any venue and per venue) and the trailing windows rules read."""

    def __init__(self) -> None:
        self.quotes: dict[tuple[str, str | None], Tick] = {}
        # symbol -> [(venue or None, "quote" | "trade", window)], so a tick updates only what rules read
        self.series: dict[str, list[tuple[str | None, str, Trailing]]] = defaultdict(list)
        self._windows: dict[tuple, Trailing] = {}
        self._users: dict[tuple, int] = defaultdict(int)

    def on_tick(self, tick: Tick) -> None:
        quotes = self.quotes
        quotes[(tick.symbol, None)] = tick
        quotes[(tick.symbol, tick.venue)] = tick
        series = self.series.get(tick.symbol)
        if series:
            price = (tick.bid + tick.ask) * 0.5
            for venue, source, window in series:
                if source == "quote" and (venue is None or venue == tick.venue):
                    window.add(tick.ts, price)

    def on_trade(self, venue: str, symbol: str, price: float, size: float, ts: int) -> None:
        for series_venue, source, window in self.series.get(symbol, ()):
            if source == "trade" and (series_venue is None or series_venue == venue):
                window.add(ts, price, size)

    def reads_trades(self) -> bool:
        """Whether a rule reads trades (vwap, volume): only then need the job's ticks wait for them."""
        return any(source == "trade" for _, _, source, _ in self._windows)

    def window(self, symbol: str, venue: str | None, source: str, duration_ms: int, fn: str) -> Trailing:
        key = (symbol, venue, source, duration_ms)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = Trailing(duration_ms, extremes=False, returns=False)
            self.series[symbol].append((venue, source, window))
        window.need(extremes=fn in ("high", "low"), returns=fn == "volatility")
        self._users[key] += 1
        return window

    def release(self, keys: list[tuple]) -> None:
        """Forget windows no rule reads any more."""
        for key in keys:
            self._users[key] -= 1
            if self._users[key] <= 0:
                del self._users[key]
                window = self._windows.pop(key)
                self.series[key[0]] = [s for s in self.series[key[0]] if s[2] is not window]
                if not self.series[key[0]]:
                    del self.series[key[0]]

    def snapshot(self) -> dict:
        return {"quotes": [tuple(t) for (_, venue), t in self.quotes.items() if venue is not None],
                "windows": [(key, w.snapshot()) for key, w in self._windows.items()]}

    def restore(self, snap: dict) -> None:
        """Load quotes and window contents; windows are those the (already applied) rules registered."""
        for fields in sorted(snap["quotes"], key=lambda f: f[-1]):
            tick = Tick(*fields)
            self.quotes[(tick.symbol, None)] = tick
            self.quotes[(tick.symbol, tick.venue)] = tick
        for key, events in snap["windows"]:
            window = self._windows.get(tuple(key))
            if window is not None:
                for ts, price, qty in events:
                    window.add(ts, price, qty)


class Compiled:
    """A rule's expressions as closures, plus what it reads (to release the windows with the rule)."""

    def __init__(self, rule: Rule, market: Market) -> None:
        self.market = market
        self.window_keys: list[tuple] = []
        self.defines: dict[str, Fn] = {}
        self.define_uses_match: dict[str, bool] = {}
        for define in rule.defines:
            self._uses_match = False
            self.defines[define.name] = self.expr(define.expr)
            self.define_uses_match[define.name] = self._uses_match
        self.condition = None if isinstance(rule.body, Pattern) else self.expr(rule.body)

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
                return self._quote(fn, (symbol, venue))
            case WindowFn(fn=fn, symbol=symbol, venue=venue, window_ms=window_ms):
                return self._window(fn, symbol, venue, window_ms)
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
        quotes = self.market.quotes
        if fn == "price":  # the most used function, without the field lookup
            def price(m):
                tick = quotes.get(key)
                if tick is None:
                    raise Unknown
                return (tick.bid + tick.ask) * 0.5
            return price
        field = QUOTE_FIELDS[fn]

        def quote(m):
            tick = quotes.get(key)
            if tick is None:
                raise Unknown
            return field(tick)
        return quote

    def _window(self, fn: str, symbol: str, venue: str | None, window_ms: int) -> Fn:
        source = "trade" if fn in TRADE_FUNCTIONS else "quote"
        self.window_keys.append((symbol, venue, source, window_ms))
        window, reader = self.market.window(symbol, venue, source, window_ms, fn), WINDOW_READERS[fn]

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
    field, reduce = QUOTE_FIELDS[field_name], _REDUCERS[agg]

    def value(m):
        events = events_of(m, stage)
        if not events:
            raise Unknown
        return reduce([field(e) for e in events])
    return value
