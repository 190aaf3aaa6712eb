"""What a rule means, checked on the tree, so a rule is valid in both forms or in neither.

The parser and the JSON reader only build the tree (each refusing what its own form cannot say);
names, types (a condition or a number), stages and bounds are checked here, once. An error points
at the node: line and column for text, the JSON path for JSON.
"""
from __future__ import annotations

import re
from typing import assert_never

from core.contracts.tick import InvalidTick, parse_symbol

from . import tree
from .covers import FORM as COVER_FORM
from .covers import is_cover
from .lexer import KEYWORDS
from .tree import error_at

# Said by the JSON reader (a value of the wrong type) and by the checker (a value out of bounds) alike.
TIMES = f"'times' is [min, max or null] with 1 <= min <= max <= {tree.MAX_TIMES}"
WITHIN = "'within_ms' must be a positive whole number of milliseconds"
WITHIN_TYPE = f"'within_type' is one of {sorted(tree.WITHIN_TYPES)}, and needs 'within_ms'"
WINDOW = "window_ms must be a positive whole number of milliseconds"
DEFINE_NAME = "a define's name must be an identifier"
STAGE_NAME = "a stage needs a name: a DEFINEd condition"
REF = "a reference is {\"ref\": name}"
TOO_DEEP = f"expression nested deeper than {tree.MAX_DEPTH} levels"
MAX_TREE_DEPTH = 4 * tree.MAX_DEPTH  # `a + b + c ...` nests without parentheses, so the tree gets a limit of its own
_EXPECTED = {"bool": "expected a condition (a comparison, AND/OR/NOT), got a number",
             "num": "expected a number, got a condition"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOL = re.compile(r"[A-Z0-9]+/[A-Z0-9]+")  # ASCII only: parse_symbol alone takes any Unicode letter or digit
_VENUE = re.compile(r"[a-z0-9_]+")


def is_identifier(value: str) -> bool:
    return _NAME.fullmatch(value) is not None and value.upper() not in KEYWORDS


def is_name(value: str) -> bool:
    """A name a DEFINE or a stage can have: an identifier that is not also a function."""
    return is_identifier(value) and value not in tree.QUOTE_FUNCTIONS + tree.WINDOW_FUNCTIONS


def split_symbol(text: str, at: tree.At, key: str = "") -> tuple[str, str | None]:
    """"BTC/USDT@binance" -> ("BTC/USDT", "binance"); RuleError at `at` when it is not a symbol."""
    symbol, _, venue = text.partition("@")
    try:
        parse_symbol(symbol)  # two parts, upper case, base and quote differ
        valid = _SYMBOL.fullmatch(symbol) is not None
    except InvalidTick:
        valid = False
    if not valid:
        raise error_at(f"bad symbol {text!r}: expected BASE/QUOTE in upper-case ASCII letters and digits, "
                       "optionally @venue", at, key)
    if "@" in text and _VENUE.fullmatch(venue) is None:
        raise error_at(f"bad venue in {text!r}: expected a venue name of lowercase ASCII letters, digits and _ "
                       "after '@'", at, key)
    return symbol, venue or None


def split_argument(text: str, at: tree.At, key: str = "") -> tuple[str | None, str | None]:
    """A function's quoted argument: a symbol as split_symbol takes it, or "@venue" alone (symbol None), which a
    rule partitioned by symbol reads as its key on that venue."""
    if not text.startswith("@"):
        return split_symbol(text, at, key)
    if _VENUE.fullmatch(text[1:]) is None:
        raise error_at(f"bad venue in {text!r}: expected a venue name of lowercase ASCII letters, digits and _ "
                       "after '@'", at, key)
    return None, text[1:]


def check(rule: tree.Rule) -> None:
    """Raise RuleError (ParseError for a parsed rule) unless `rule` means something."""
    _Checker(rule).run()


class _Checker:
    def __init__(self, rule: tree.Rule) -> None:
        self.rule = rule
        self.types: dict[str, str] = {}  # DEFINE -> "bool" or "num", for those checked so far
        self.stages: set[str] | None = None

    def run(self) -> None:
        rule = self.rule
        self.keys(rule)
        if isinstance(rule.body, tree.Pattern):
            self.stages = self.pattern_shape(rule.body)
        for define in rule.defines:
            if not is_name(define.name):
                raise error_at(DEFINE_NAME, define.at, ".name")
            if define.name in self.types:
                raise error_at(f"{define.name!r} is defined twice", define.at, ".name")
            self.types[define.name] = self.expr(define.expr, 1, define.name)
        if isinstance(rule.body, tree.Pattern):
            self.pattern_meaning(rule.body)
        else:
            self.expect("bool", rule.body, 0, None)
        if rule.until is not None:
            if isinstance(rule.body, tree.Pattern):
                raise error_at("UNTIL closes an IF rule's signal; a PATTERN's signals close with their match",
                               rule.until.at)
            self.expect("bool", rule.until, 0, None)

    @staticmethod
    def keys(rule: tree.Rule) -> None:
        """A partitioned rule reads only its key (so each key can run apart, on any worker): its symbol, on any
        venue or a named one ("@binance") when it is keyed by symbol; any other rule names the symbols it reads."""
        partition = rule.partition
        if partition is not None:
            for i, cover in enumerate(partition.covers):
                if not isinstance(cover, str) or not is_cover(cover):
                    raise error_at(f"bad cover {cover!r}: {COVER_FORM}", partition.at, f".covers[{i}]")
        for expr in tree.expressions(rule):
            for node in tree.walk(expr):
                if not isinstance(node, (tree.QuoteFn, tree.WindowFn)):
                    continue
                if partition is not None and node.symbol is not None:
                    keyed = f"{node.fn}({'' if isinstance(node, tree.QuoteFn) else '1m'})"
                    raise error_at(f"a partitioned rule reads only its own key: write {keyed}, without "
                                   f"{node.symbol!r}", node.at)
                if partition is None and node.symbol is None:
                    raise error_at(f"{node.fn} without a symbol reads a partitioned rule's key: name a symbol, or "
                                   f"start the rule with PARTITION BY symbol", node.at)
                if partition is not None and partition.by_venue and node.venue is not None:
                    raise error_at(f"a rule partitioned by symbol and venue reads only its key's venue: "
                                   f"{node.fn}(\"@{node.venue}\") needs PARTITION BY symbol", node.at)

    def pattern_shape(self, pattern: tree.Pattern) -> set[str]:
        names: set[str] = set()
        for previous, stage in zip((None, *pattern.stages), pattern.stages, strict=False):
            if not is_name(stage.name):
                raise error_at(STAGE_NAME, stage.at, ".name")
            if stage.name in names:
                raise error_at(f"stage {stage.name!r} appears twice; define a second condition", stage.at)
            names.add(stage.name)
            high = stage.low if stage.high is None else stage.high
            if not 1 <= stage.low <= high <= tree.MAX_TIMES:
                raise error_at(TIMES, stage.at, ".times")
            looping = (stage.low, stage.high) != (1, 1)
            if stage.link in tree.NEGATED_LINKS and (looping or stage.optional or stage.greedy):
                raise error_at("a negated stage cannot have a quantifier", stage.at)
            if (stage.greedy or stage.inner != "relaxed") and not looping:
                raise error_at("GREEDY, CONSECUTIVE and ALLOW COMBINATIONS apply to a repeated stage", stage.at)
            if previous is not None and previous.optional and stage.link in tree.NEGATED_LINKS:
                raise error_at(f"{tree.LINKS[stage.link]} cannot follow the optional stage {previous.name!r}: "
                               "FlinkCEP does not support an optional path to a NOT condition; write two rules, "
                               "one with the optional stage and one without it", stage.at)
            if previous is not None and previous.greedy and stage.optional:
                raise error_at(f"the optional stage {stage.name!r} cannot follow the GREEDY stage "
                               f"{previous.name!r}: FlinkCEP does not support an optional stage after a greedy one",
                               stage.at)
        last = pattern.stages[-1]
        if last.link == "not_followed_by" and pattern.within_ms is None:
            raise error_at("a pattern can end with NOT FOLLOWED BY only with a WITHIN (FlinkCEP: NotFollowedBy is "
                           "not supported without windowTime as a last part of a Pattern); end it with NOT NEXT or "
                           "add a WITHIN", last.at)
        if pattern.within_ms is not None and pattern.within_ms <= 0:
            raise error_at(WITHIN, pattern.at, ".within_ms")
        if pattern.within_type != "first_and_last" and pattern.within_ms is None:
            raise error_at(WITHIN_TYPE, pattern.at, ".within_type")
        skip = pattern.skip
        if skip is not None and skip.stage is not None and skip.stage not in names:
            raise error_at(f"skip names stage {skip.stage!r}, which is not in the pattern", skip.at, ".stage")
        if pattern.emit_at_once and (skip is None or skip.strategy == "no_skip"):
            raise error_at("EMIT AT ONCE applies to a skip strategy other than NO SKIP, whose matches are never "
                           "held back", pattern.at, ".emit_at_once")
        return names

    def pattern_meaning(self, pattern: tree.Pattern) -> None:
        for stage in pattern.stages:
            kind = self.types.get(stage.name)
            if kind is None:
                raise error_at(f"stage {stage.name!r} is not DEFINEd", stage.at, ".name")
            if kind != "bool":
                raise error_at(f"stage {stage.name!r} must be a condition (true/false), not a number", stage.at,
                               ".name")

    def expect(self, kind: str, node: tree.Expr, depth: int, define: str | None) -> None:
        if self.expr(node, depth, define) != kind:
            raise error_at(_EXPECTED[kind], node.at)

    def expr(self, node: tree.Expr, depth: int, define: str | None) -> str:
        """The node's type, "bool" or "num"; `define` is the DEFINE it is in, which it must not read."""
        if depth > MAX_TREE_DEPTH and not isinstance(node, tree.Number):
            raise error_at(TOO_DEEP, node.at)
        depth += 1
        match node:
            case tree.Number(value=value):
                if not abs(value) < tree.MAX_NUMBER:  # also rejects NaN
                    raise error_at(f"numbers must be finite and below {tree.MAX_NUMBER:g} in size", node.at)
                return "num"
            case tree.Unary(op="not", operand=operand):
                self.expect("bool", operand, depth, define)
                return "bool"
            case tree.Unary(operand=operand) | tree.Abs(arg=operand):
                self.expect("num", operand, depth, define)
                return "num"
            case tree.Binary(op=op, left=left, right=right):
                operands = "bool" if op in tree.LOGICAL else "num"
                self.expect(operands, left, depth, define)
                self.expect(operands, right, depth, define)
                return "num" if op in tree.ARITHMETIC else "bool"
            case tree.QuoteFn():
                return "num"
            case tree.WindowFn(window_ms=window_ms):
                if window_ms <= 0:
                    raise error_at(WINDOW, node.at, ".window_ms")
                return "num"
            case tree.ExprWindow(fn=fn, expr=inner, window_ms=window_ms):
                if fn not in tree.EXPRESSION_WINDOWS:
                    raise error_at(f"{fn} reads trades and takes a symbol; over an expression use one of "
                                   f"{', '.join(tree.EXPRESSION_WINDOWS)}", node.at)
                if window_ms <= 0:
                    raise error_at(WINDOW, node.at, ".window_ms")
                if any(isinstance(n, (tree.StageValue, tree.Ref)) for n in tree.walk(inner)):
                    raise error_at("a window's expression reads the market and the event, not names or stages",
                                   node.at)
                self.expect("num", inner, depth, define)
                return "num"
            case tree.EventField(field=field):
                if field not in tree.EVENT_NUMBERS:
                    raise error_at(f"unknown event field {field!r}; numbers are {', '.join(tree.EVENT_NUMBERS)}",
                                   node.at)
                return "num"
            case tree.EventIs(field=field, value=value):
                self.event_is(node, field, value)
                return "bool"
            case tree.Ref():
                return self.ref(node, define)
            case tree.StageValue(stage=stage, agg=agg, field=field):
                if self.stages is None:
                    raise error_at(f"{stage}.… refers to a pattern stage, and this rule has no PATTERN", node.at)
                if stage not in self.stages:
                    raise error_at(f"{stage!r} is not a stage of the pattern", node.at)
                if agg != "count" and field not in tree.STAGE_FIELDS:
                    raise error_at(f"unknown field {field!r}; fields are {', '.join(tree.STAGE_FIELDS)}", node.at)
                return "num"
        assert_never(node)

    @staticmethod
    def event_is(node: tree.EventIs, field: str, value: str) -> None:
        if field not in tree.EVENT_TEXTS:
            raise error_at(f"unknown event field {field!r}; compared with text: {', '.join(tree.EVENT_TEXTS)}",
                           node.at)
        if field == "kind" and value not in tree.EVENT_KINDS:
            raise error_at(f"event.kind is {' or '.join(map(repr, tree.EVENT_KINDS))}, not {value!r}", node.at)
        if field == "symbol":
            split_symbol(value, node.at)
            if "@" in value:
                raise error_at("event.symbol is BASE/QUOTE; compare event.venue for the venue", node.at)
        if field == "venue" and _VENUE.fullmatch(value) is None:
            raise error_at(f"bad venue {value!r}: expected a lowercase venue name", node.at)

    def ref(self, node: tree.Ref, define: str | None) -> str:
        name = node.name
        if not is_name(name):
            raise error_at(REF, node.at)
        if name == define:
            raise error_at(f"{name!r} refers to itself", node.at)
        if name not in self.types:
            later = any(d.name == name for d in self.rule.defines)
            raise error_at(f"unknown name {name!r}{' (DEFINE it before it is used)' if later else ''}", node.at)
        return self.types[name]
