"""The rule tree: what a rule means, whichever form (text or JSON) it was written in.

Nodes are frozen dataclasses, so two rules are equal when they mean the same; `at`, where a node
was written (line and column of the text, or a JSON path), is kept for error messages only and
takes no part in equality.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

VERSION = 1

QUOTE_FUNCTIONS = ("price", "bid", "ask", "spread", "spread_bps")
WINDOW_FUNCTIONS = ("vwap", "volume", "change_pct", "volatility", "stddev", "mean", "high", "low", "zscore")
STAGE_AGGREGATES = ("first", "last", "min", "max", "avg", "sum")  # over a stage's events, plus count(stage)
STAGE_FIELDS = ("price", "bid", "ask", "spread", "size", "ts")
EXPRESSION_WINDOWS = ("change_pct", "volatility", "stddev", "mean", "high", "low", "zscore")  # over any expression
EVENT_NUMBERS = ("price", "bid", "ask", "size", "ts")  # event.price...: the current event's fields
EVENT_TEXTS = ("kind", "venue", "symbol")  # event.kind == "trade"...
EVENT_KINDS = ("quote", "trade")
LOGICAL = ("and", "or")
ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")
# JSON name -> text
LINKS = {"next": "NEXT", "followed_by": "FOLLOWED BY", "followed_by_any": "FOLLOWED BY ANY",
         "not_next": "NOT NEXT", "not_followed_by": "NOT FOLLOWED BY"}
NEGATED_LINKS = ("not_next", "not_followed_by")
INNER = {"relaxed": "", "strict": "CONSECUTIVE", "any": "ALLOW COMBINATIONS"}
# what WITHIN bounds, FlinkCEP's WithinType: the first to the last event, or each event to the one before it
WITHIN_TYPES = {"first_and_last": "", "previous_and_current": "BETWEEN EVENTS"}
SKIPS = {"no_skip": "NO SKIP", "skip_to_next": "SKIP TO NEXT", "skip_past_last_event": "SKIP PAST LAST EVENT",
         "skip_to_first": "SKIP TO FIRST", "skip_to_last": "SKIP TO LAST"}
TARGETED_SKIPS = ("skip_to_first", "skip_to_last")  # the strategies that name a stage
MAX_DEPTH = 60  # nesting limit, so a hostile rule cannot exhaust the stack
MAX_TIMES = 1_000
MAX_NUMBER = 1e300


class TextAt(NamedTuple):
    line: int
    column: int


At = TextAt | str | None  # str: a JSON path such as "$.if.args[0]"; None: built in code


def _at() -> Any:
    return field(default=None, compare=False, repr=False)


class RuleError(ValueError):
    """A rule that cannot be accepted; `where` says where (a JSON path, or line and column)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.where = where


class ParseError(RuleError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message, f"line {line}, column {column}")
        self.line, self.column = line, column


def error_at(message: str, at: At, key: str = "") -> RuleError:
    """The error for a node, in the terms of the form it came in: line and column for text, the
    node's JSON path (down to `key`, the offending member) for JSON."""
    if isinstance(at, TextAt):
        return ParseError(message, at.line, at.column)
    return RuleError(message, f"{at}{key}" if at is not None else "")


# ---------------------------------------------------------------- expressions

@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not" or "neg"
    operand: Expr
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # LOGICAL, ARITHMETIC or COMPARISONS
    left: Expr
    right: Expr
    at: At = _at()


@dataclass(frozen=True, slots=True)
class QuoteFn:
    fn: str  # QUOTE_FUNCTIONS
    symbol: str | None  # None: the key of a partitioned rule
    venue: str | None
    at: At = _at()


@dataclass(frozen=True, slots=True)
class WindowFn:
    fn: str  # WINDOW_FUNCTIONS
    symbol: str | None  # None: the key of a partitioned rule
    venue: str | None
    window_ms: int
    at: At = _at()


@dataclass(frozen=True, slots=True)
class ExprWindow:
    """A trailing window over any expression, fed each time the rule is evaluated: zscore(a / b, 10m)."""
    fn: str  # EXPRESSION_WINDOWS
    expr: Expr
    window_ms: int
    at: At = _at()


@dataclass(frozen=True, slots=True)
class EventField:
    """A number of the event being evaluated, as FlinkCEP's where() sees it: event.price, event.size."""
    field: str  # EVENT_NUMBERS
    at: At = _at()


@dataclass(frozen=True, slots=True)
class EventIs:
    """Whether the event being evaluated is of a kind, venue or symbol: event.kind == "trade"."""
    field: str  # EVENT_TEXTS
    value: str
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Abs:
    arg: Expr
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Ref:
    name: str  # a DEFINE
    at: At = _at()


@dataclass(frozen=True, slots=True)
class StageValue:
    stage: str
    agg: str  # STAGE_AGGREGATES or "count"
    field: str | None  # STAGE_FIELDS; None for count
    at: At = _at()


Expr = Number | Unary | Binary | QuoteFn | WindowFn | ExprWindow | EventField | EventIs | Abs | Ref | StageValue


def negate(operand: Expr, at: At = None) -> Expr:
    """-operand; a literal stays a literal, so JSON -1 and text -1 are the same rule."""
    if isinstance(operand, Number):
        return Number(-operand.value, at)
    return Unary("neg", operand, at)


# ---------------------------------------------------------------- rules

@dataclass(frozen=True, slots=True)
class Define:
    name: str
    expr: Expr
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Stage:
    name: str  # a DEFINEd condition
    link: str | None = None  # LINKS; None on the first stage
    low: int = 1
    high: int | None = 1  # None: no upper bound
    optional: bool = False
    greedy: bool = False
    inner: str = "relaxed"  # INNER
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Skip:
    strategy: str  # SKIPS
    stage: str | None = None  # for TARGETED_SKIPS
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Pattern:
    stages: tuple[Stage, ...]
    within_ms: int | None = None
    within_type: str = "first_and_last"  # WITHIN_TYPES
    skip: Skip | None = None  # None and Skip("no_skip") mean the same, but the rule keeps what was written
    at: At = _at()
    emit_at_once: bool = False  # EMIT AT ONCE: no match is held back for a partial match that began before it


@dataclass(frozen=True, slots=True)
class Partition:
    """PARTITION BY symbol [, venue] [FOR covers]: the rule runs once per key, as FlinkCEP after keyBy()."""
    by_venue: bool = False  # the key is (symbol, venue) rather than the symbol on any venue
    covers: tuple[str, ...] = ()  # patterns such as "*/USDT", "BTC/*", "@binance"; none: every symbol
    at: At = _at()


@dataclass(frozen=True, slots=True)
class Rule:
    defines: tuple[Define, ...]
    body: Expr | Pattern  # IF condition, or PATTERN
    then: str  # the signal name
    at: At = _at()
    partition: Partition | None = None
    until: Expr | None = None  # IF rules: the open signal closes when this holds, not when IF stops holding


def children(node: Expr) -> tuple[Expr, ...]:
    match node:
        case Unary(operand=arg) | Abs(arg=arg) | ExprWindow(expr=arg):
            return (arg,)
        case Binary(left=left, right=right):
            return (left, right)
    return ()


def expressions(rule: Rule) -> list[Expr]:
    """The rule's top-level expressions: its defines' and its condition."""
    return ([d.expr for d in rule.defines] + ([] if isinstance(rule.body, Pattern) else [rule.body])
            + ([] if rule.until is None else [rule.until]))


def walk(node: Expr):
    """The node and everything under it."""
    yield node
    for child in children(node):
        yield from walk(child)


def symbols_of(rule: Rule) -> set[str]:
    """The symbols a rule reads, on any venue: a tick is evaluated only by the rules that read its symbol."""
    return {node.symbol for expr in expressions(rule) for node in walk(expr)
            if isinstance(node, (QuoteFn, WindowFn)) and node.symbol is not None}


def bind(rule: Rule, symbol: str, venue: str | None) -> Rule:
    """A partitioned rule as the plain rule one of its keys runs: every function without a symbol reads
    the key's. The result equals the rule a user would write for that one symbol."""
    def bound(node: Expr) -> Expr:
        match node:
            case QuoteFn(symbol=None) | WindowFn(symbol=None):
                return replace(node, symbol=symbol, venue=venue if node.venue is None else node.venue)
            case Unary(operand=arg):
                return replace(node, operand=bound(arg))
            case Abs(arg=arg):
                return replace(node, arg=bound(arg))
            case ExprWindow(expr=arg):
                return replace(node, expr=bound(arg))
            case Binary(left=left, right=right):
                return replace(node, left=bound(left), right=bound(right))
        return node

    defines = tuple(replace(d, expr=bound(d.expr)) for d in rule.defines)
    body = rule.body if isinstance(rule.body, Pattern) else bound(rule.body)
    return Rule(defines, body, rule.then, rule.at, None, None if rule.until is None else bound(rule.until))
