"""The rule language: a text form for people, a JSON form for the API, one meaning for both.

`parse(text)` is a hand-written recursive-descent parser (users' rules are never evaluated as
Python); `to_text(rule)` prints the canonical text; `from_json(obj)` checks a stored rule. Every
rule, however it arrived, goes through the same `check`, so a rule is valid in both forms or in
neither. docs/rules.md is the reference.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from core.contracts.tick import InvalidTick, parse_symbol

VERSION = 1

QUOTE_FUNCTIONS = ("price", "bid", "ask", "spread", "spread_bps")
WINDOW_FUNCTIONS = ("vwap", "volume", "change_pct", "volatility", "stddev", "mean", "high", "low", "zscore")
STAGE_AGGREGATES = ("first", "last", "min", "max", "avg", "sum")  # over a stage's events, plus count(stage)
STAGE_FIELDS = ("price", "bid", "ask", "spread", "ts")
ARITHMETIC = ("+", "-", "*", "/")
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")
LINKS = {"next": "NEXT", "followed_by": "FOLLOWED BY", "followed_by_any": "FOLLOWED BY ANY",
         "not_next": "NOT NEXT", "not_followed_by": "NOT FOLLOWED BY"}
INNER = {"relaxed": "", "strict": "CONSECUTIVE", "any": "ALLOW COMBINATIONS"}
SKIPS = {"no_skip": "NO SKIP", "skip_to_next": "SKIP TO NEXT", "skip_past_last_event": "SKIP PAST LAST EVENT",
         "skip_to_first": "SKIP TO FIRST", "skip_to_last": "SKIP TO LAST"}
KEYWORDS = {"IF", "THEN", "AND", "OR", "NOT", "DEFINE", "AS", "PATTERN", "NEXT", "FOLLOWED", "BY", "ANY", "WITHIN",
            "AFTER", "MATCH", "NO", "SKIP", "TO", "PAST", "LAST", "EVENT", "FIRST", "GREEDY", "CONSECUTIVE", "ALLOW",
            "COMBINATIONS"}
DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_DEPTH = 60  # nesting limit, so a hostile rule cannot exhaust the stack
MAX_TIMES = 1_000
MAX_NUMBER = 1e300


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


# ---------------------------------------------------------------- lexer

class Token(NamedTuple):
    kind: str  # NUM, DUR, STR, IDENT, KW, OP, EOF
    text: str
    value: Any
    line: int
    column: int


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<dur>\d+(?:ms|s|m|h|d)(?![A-Za-z0-9_]))
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<str>"(?:[^"\\\n]|\\["\\])*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|==|!=|[-+*/(),.{}?<>])
""", re.VERBOSE)


def tokenize(text: str) -> Iterator[Token]:
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        column = pos - line_start + 1
        if m is None:
            ch = text[pos]
            hint = " (strings use double quotes)" if ch == "'" else ""
            hint = " (unterminated string)" if ch == '"' else hint
            raise ParseError(f"unexpected character {ch!r}{hint}", line, column)
        kind, lexeme = m.lastgroup, m.group()
        pos = m.end()
        if kind == "newline":
            line, line_start = line + 1, pos
        elif kind == "dur":
            number, unit = re.fullmatch(r"(\d+)(\w+)", lexeme).groups()
            yield Token("DUR", lexeme, int(number) * DURATION_MS[unit], line, column)
        elif kind == "num":
            value = float(lexeme) if any(c in lexeme for c in ".eE") else int(lexeme)
            if not math.isfinite(value):
                raise ParseError(f"number out of range: {lexeme[:20]}", line, column)
            yield Token("NUM", lexeme, value, line, column)
        elif kind == "str":
            yield Token("STR", lexeme, re.sub(r"\\(.)", r"\1", lexeme[1:-1]), line, column)
        elif kind == "ident":
            if lexeme.upper() in KEYWORDS:
                yield Token("KW", lexeme, lexeme.upper(), line, column)
            else:
                yield Token("IDENT", lexeme, lexeme, line, column)
        elif kind == "op":
            yield Token("OP", lexeme, lexeme, line, column)
    yield Token("EOF", "", None, line, pos - line_start + 1)


# ---------------------------------------------------------------- parser

class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = list(tokenize(text))
        self.i = 0
        self.depth = 0
        self.positions: dict[int, tuple[int, int]] = {}  # id(node) -> where it starts

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, tok: Token | None = None) -> ParseError:
        tok = tok or self.tok
        found = "end of rule" if tok.kind == "EOF" else repr(tok.text)
        return ParseError(f"{message}, found {found}", tok.line, tok.column)

    def at(self, kind: str, value: Any = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (value is None or tok.value == value)

    def accept(self, kind: str, value: Any = None) -> Token | None:
        if self.at(kind, value):
            tok = self.tok
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, value: Any = None, what: str | None = None) -> Token:
        tok = self.accept(kind, value)
        if tok is None:
            raise self.fail(f"expected {what or value or kind.lower()}")
        return tok

    def mark(self, node: Any, tok: Token) -> Any:
        self.positions[id(node)] = (tok.line, tok.column)
        return node

    def rule(self) -> dict:
        defines = []
        while self.at("KW", "DEFINE"):
            start = self.expect("KW", "DEFINE")
            name = self.expect("IDENT", what="a name after DEFINE")
            self.expect("KW", "AS")
            defines.append(self.mark({"name": name.value, "expr": self.expr()}, start))
        rule: dict[str, Any] = {"version": VERSION, "defines": defines}
        if self.accept("KW", "IF"):
            rule["if"] = self.expr()
        elif self.at("KW", "PATTERN"):
            rule["pattern"] = self.pattern()
        else:
            raise self.fail("expected DEFINE, IF or PATTERN")
        self.expect("KW", "THEN")
        rule["then"] = self.expect("IDENT", what="a signal name after THEN").value
        if not self.at("EOF"):
            raise self.fail("expected the end of the rule after the signal name")
        return rule

    def pattern(self) -> dict:
        start = self.expect("KW", "PATTERN")
        stages = [self.stage(None)]
        while True:
            link = self.link()
            if link is None:
                break
            stages.append(self.stage(link))
        pattern: dict[str, Any] = {"stages": stages}
        if self.accept("KW", "WITHIN"):
            pattern["within_ms"] = self.expect("DUR", what="a duration such as 30s").value
        if self.accept("KW", "AFTER"):
            self.expect("KW", "MATCH")
            pattern["skip"] = self.skip()
        return self.mark(pattern, start)

    def link(self) -> str | None:
        if self.accept("KW", "NEXT"):
            return "next"
        if self.accept("KW", "FOLLOWED"):
            self.expect("KW", "BY")
            return "followed_by_any" if self.accept("KW", "ANY") else "followed_by"
        if self.accept("KW", "NOT"):
            if self.accept("KW", "NEXT"):
                return "not_next"
            self.expect("KW", "FOLLOWED", what="NEXT or FOLLOWED BY after NOT")
            self.expect("KW", "BY")
            return "not_followed_by"
        return None

    def stage(self, link: str | None) -> dict:
        name = self.expect("IDENT", what="a stage name (a DEFINEd condition)")
        stage: dict[str, Any] = {"name": name.value}
        if link:
            stage["link"] = link
        low, high, optional = 1, 1, False
        if self.accept("OP", "+"):
            high = None
        elif self.accept("OP", "*"):
            high, optional = None, True
        elif self.accept("OP", "{"):
            low = high = self.count()
            if self.accept("OP", ","):
                high = None if self.at("OP", "}") else self.count()
            self.expect("OP", "}")
        if self.accept("OP", "?"):
            optional = True
        if (low, high) != (1, 1):
            stage["times"] = [low, high]
        if optional:
            stage["optional"] = True
        if self.accept("KW", "GREEDY"):
            stage["greedy"] = True
        if self.accept("KW", "CONSECUTIVE"):
            stage["inner"] = "strict"
        elif self.accept("KW", "ALLOW"):
            self.expect("KW", "COMBINATIONS")
            stage["inner"] = "any"
        return self.mark(stage, name)

    def count(self) -> int:
        tok = self.expect("NUM", what="a whole number")
        if not isinstance(tok.value, int):
            raise self.fail("expected a whole number", tok)
        return tok.value

    def skip(self) -> dict:
        tok = self.tok
        if self.accept("KW", "NO"):
            self.expect("KW", "SKIP")
            return {"strategy": "no_skip"}
        self.expect("KW", "SKIP", what="NO SKIP or SKIP ...")
        if self.accept("KW", "PAST"):
            self.expect("KW", "LAST")
            self.expect("KW", "EVENT")
            return {"strategy": "skip_past_last_event"}
        self.expect("KW", "TO", what="TO or PAST after SKIP")
        if self.accept("KW", "NEXT"):
            return {"strategy": "skip_to_next"}
        which = self.accept("KW", "FIRST") or self.accept("KW", "LAST")
        if which is None:
            raise self.fail("expected NEXT, FIRST or LAST after SKIP TO")
        stage = self.expect("IDENT", what="a stage name").value
        return self.mark({"strategy": f"skip_to_{which.value.lower()}", "stage": stage}, tok)

    # expressions, loosest binding first
    @contextmanager
    def nested(self) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels")
        yield
        self.depth -= 1

    def expr(self) -> Any:
        with self.nested():
            return self.chain("KW", ("OR",), self.conjunction)

    def conjunction(self) -> Any:
        return self.chain("KW", ("AND",), self.negation)

    def chain(self, kind: str, ops: tuple[str, ...], operand) -> Any:
        """Left-associative operators of one precedence level."""
        left = operand()
        while self.at(kind) and self.tok.value in ops:
            tok = self.tok
            self.i += 1
            left = self.mark({"op": tok.value.lower(), "args": [left, operand()]}, tok)
        return left

    def negation(self) -> Any:
        tok = self.accept("KW", "NOT")
        if tok is None:
            return self.comparison()
        with self.nested():
            return self.mark({"op": "not", "args": [self.negation()]}, tok)

    def comparison(self) -> Any:
        left = self.sum()
        tok = self.tok
        if tok.kind == "OP" and tok.value in COMPARISONS:
            self.i += 1
            left = self.mark({"op": tok.value, "args": [left, self.sum()]}, tok)
            if self.at("OP") and self.tok.value in COMPARISONS:
                raise self.fail("comparisons do not chain; join them with AND")
        return left

    def sum(self) -> Any:
        return self.chain("OP", ("+", "-"), self.term)

    def term(self) -> Any:
        return self.chain("OP", ("*", "/"), self.unary)

    def unary(self) -> Any:
        tok = self.accept("OP", "-")
        if tok is None:
            return self.primary()
        with self.nested():
            operand = self.unary()
        if isinstance(operand, (int, float)):
            return -operand  # a literal stays a literal, so JSON -1 and text -1 are the same rule
        return self.mark({"op": "neg", "args": [operand]}, tok)

    def primary(self) -> Any:
        tok = self.tok
        if self.accept("NUM"):
            return tok.value
        if self.accept("OP", "("):
            node = self.expr()
            self.expect("OP", ")")
            return node
        if self.accept("IDENT"):
            if self.accept("OP", "("):
                return self.mark(self.call(tok), tok)
            if self.accept("OP", "."):
                field = self.expect("IDENT", what="a field name (price, bid, ask, spread, ts)")
                return self.mark({"stage": tok.value, "agg": "last", "field": field.value}, tok)
            return self.mark({"ref": tok.value}, tok)
        if tok.kind == "KW" and tok.value in ("FIRST", "LAST"):  # aggregates spelt like SKIP TO FIRST / LAST
            self.i += 1
            self.expect("OP", "(", what=f"'(': {tok.value.lower()}(stage.price)")
            return self.mark(self.call(tok._replace(value=tok.value.lower())), tok)
        if tok.kind == "DUR":
            raise self.fail("a duration is only allowed as a window argument")
        raise self.fail("expected a number, a function call, a name or '('")

    def call(self, name: Token) -> dict:
        fn = name.value
        if fn in QUOTE_FUNCTIONS or fn in WINDOW_FUNCTIONS:
            node = {"fn": fn, **self.symbol_arg()}
            if fn in WINDOW_FUNCTIONS:
                self.expect("OP", ",", what=f"',' and a window length: {fn}(\"BTC/USDT\", 1m)")
                node["window_ms"] = self.expect("DUR", what="a window length such as 30s or 5m").value
        elif fn == "count":
            node = {"stage": self.expect("IDENT", what="a stage name").value, "agg": "count"}
        elif fn in STAGE_AGGREGATES:
            stage = self.expect("IDENT", what="stage.field")
            self.expect("OP", ".", what="'.' and a field: first(spike.price)")
            node = {"stage": stage.value, "agg": fn, "field": self.expect("IDENT", what="a field name").value}
        elif fn == "abs":
            node = {"fn": "abs", "args": [self.expr()]}
        else:
            known = ", ".join((*QUOTE_FUNCTIONS, *WINDOW_FUNCTIONS, "count", *STAGE_AGGREGATES, "abs"))
            raise ParseError(f"unknown function {fn!r}; known: {known}", name.line, name.column)
        self.expect("OP", ")", what="')'")
        return node

    def symbol_arg(self) -> dict:
        tok = self.expect("STR", what='a quoted symbol such as "BTC/USDT" or "BTC/USDT@binance"')
        node = _split_symbol(tok.value)
        if isinstance(node, str):
            raise ParseError(node, tok.line, tok.column)
        return node


def _split_symbol(text: str) -> dict | str:
    """"BTC/USDT@binance" -> {"symbol": ..., "venue": ...}; a message string when it is not valid."""
    symbol, _, venue = text.partition("@")
    try:
        parse_symbol(symbol)
    except InvalidTick:
        return f"bad symbol {text!r}: expected BASE/QUOTE in upper case, optionally @venue"
    if "@" in text and (not venue or venue != venue.lower() or not re.fullmatch(r"[a-z0-9_]+", venue)):
        return f"bad venue in {text!r}: expected a lowercase venue name after '@'"
    return {"symbol": symbol, "venue": venue} if venue else {"symbol": symbol}


def parse(text: str) -> dict:
    """Text -> rule JSON. Raises ParseError naming line and column."""
    if not isinstance(text, str):
        raise ParseError(f"a rule must be text, got {type(text).__name__}", 1, 1)
    parser = _Parser(text)
    rule = parser.rule()
    try:
        check(rule)
    except _CheckError as err:
        line, column = next((parser.positions[id(n)] for n in reversed(err.trail) if id(n) in parser.positions),
                            (1, 1))
        raise ParseError(err.reason, line, column) from None
    return rule


# ---------------------------------------------------------------- checking (both forms)

class _CheckError(RuleError):
    def __init__(self, message: str, path: str, trail: list) -> None:
        super().__init__(message, path)
        self.trail = trail


class _Checker:
    """Validates a rule's JSON: its shape and its meaning. Returns the type of each expression."""

    def __init__(self, rule: dict) -> None:
        self.rule = rule
        self.defines: dict[str, str] = {}
        self.stages: set[str] | None = None
        self.trail: list = []

    def fail(self, message: str, path: str) -> _CheckError:
        return _CheckError(message, path, list(self.trail))

    def run(self) -> None:
        rule = self.rule
        if not isinstance(rule, dict):
            raise self.fail("a rule must be a JSON object", "$")
        unknown = set(rule) - {"version", "defines", "if", "pattern", "then"}
        if unknown:
            raise self.fail(f"unknown keys {sorted(unknown)}", "$")
        if rule.get("version", VERSION) != VERSION:
            raise self.fail(f"unsupported version {rule.get('version')!r}; this engine reads version {VERSION}",
                            "$.version")
        if ("if" in rule) == ("pattern" in rule):
            raise self.fail("a rule has exactly one of 'if' (a condition) or 'pattern' (a sequence)", "$")
        name = rule.get("then")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.upper() in KEYWORDS:
            raise self.fail("'then' must be a signal name such as ARBITRAGE_SIGNAL", "$.then")
        defines = rule.get("defines", [])
        if not isinstance(defines, list):
            raise self.fail("'defines' must be a list", "$.defines")
        pattern = rule.get("pattern")
        if pattern is not None:
            self.stages = self.check_pattern_shape(pattern)
        for i, define in enumerate(defines):
            path = f"$.defines[{i}]"
            self.trail.append(define)
            if not isinstance(define, dict) or set(define) != {"name", "expr"}:
                raise self.fail("a define is {\"name\": ..., \"expr\": ...}", path)
            dname = define["name"]
            if not _is_name(dname):
                raise self.fail("a define's name must be an identifier", path + ".name")
            if dname in self.defines:
                raise self.fail(f"{dname!r} is defined twice", path + ".name")
            self.defines[dname] = self.expr(define["expr"], path + ".expr", in_define=dname)
            self.trail.pop()
        if "if" in rule:
            self.boolean(rule["if"], "$.if")
        else:
            self.check_pattern_meaning(pattern)

    def check_pattern_shape(self, pattern: Any) -> set[str]:
        self.trail.append(pattern)
        if not isinstance(pattern, dict) or set(pattern) - {"stages", "within_ms", "skip"}:
            raise self.fail("a pattern is {\"stages\": [...], \"within_ms\"?: int, \"skip\"?: {...}}", "$.pattern")
        stages = pattern.get("stages")
        if not isinstance(stages, list) or not stages:
            raise self.fail("a pattern needs at least one stage", "$.pattern.stages")
        names: set[str] = set()
        for i, stage in enumerate(stages):
            path = f"$.pattern.stages[{i}]"
            self.trail.append(stage)
            if not isinstance(stage, dict) or set(stage) - {"name", "link", "times", "optional", "greedy", "inner"}:
                raise self.fail("a stage is {\"name\", \"link\"?, \"times\"?, \"optional\"?, \"greedy\"?, \"inner\"?}",
                                path)
            if not _is_name(stage.get("name")):
                raise self.fail("a stage needs a name: a DEFINEd condition", path + ".name")
            if stage["name"] in names:
                raise self.fail(f"stage {stage['name']!r} appears twice; define a second condition", path)
            names.add(stage["name"])
            link = stage.get("link")
            if (i == 0) != (link is None) or (link is not None and link not in LINKS):
                raise self.fail("the first stage has no 'link'; every later one has one of "
                                f"{sorted(LINKS)}", path + ".link")
            times = stage.get("times", [1, 1])
            if (not isinstance(times, list) or len(times) != 2 or not _is_count(times[0]) or times[0] < 1
                    or not (times[1] is None or (_is_count(times[1]) and times[1] >= times[0]))
                    or times[0] > MAX_TIMES or (times[1] or 0) > MAX_TIMES):
                raise self.fail(f"'times' is [min, max or null] with 1 <= min <= max <= {MAX_TIMES}", path + ".times")
            for flag in ("optional", "greedy"):
                if not isinstance(stage.get(flag, False), bool):
                    raise self.fail(f"'{flag}' must be true or false", path + "." + flag)
            if stage.get("inner", "relaxed") not in INNER:
                raise self.fail(f"'inner' is one of {sorted(INNER)}", path + ".inner")
            negated = link in ("not_next", "not_followed_by")
            looping = times != [1, 1]
            if negated and (looping or stage.get("optional") or stage.get("greedy")):
                raise self.fail("a negated stage cannot have a quantifier", path)
            if (stage.get("greedy") or "inner" in stage) and not looping:
                raise self.fail("GREEDY, CONSECUTIVE and ALLOW COMBINATIONS apply to a repeated stage", path)
            self.trail.pop()
        if stages[-1].get("link") in ("not_next", "not_followed_by"):
            self.trail.append(stages[-1])
            raise self.fail("a pattern cannot end with a negated stage", f"$.pattern.stages[{len(stages) - 1}]")
        if all(s.get("optional") for s in stages if s.get("link") not in ("not_next", "not_followed_by")):
            raise self.fail("a pattern needs at least one stage that is not optional", "$.pattern.stages")
        within = pattern.get("within_ms")
        if within is not None and (not _is_count(within) or within <= 0):
            raise self.fail("'within_ms' must be a positive whole number of milliseconds", "$.pattern.within_ms")
        skip = pattern.get("skip", {"strategy": "no_skip"})
        if not isinstance(skip, dict) or skip.get("strategy") not in SKIPS:
            raise self.fail(f"'skip' is {{\"strategy\": one of {sorted(SKIPS)}}}", "$.pattern.skip")
        targeted = skip["strategy"] in ("skip_to_first", "skip_to_last")
        if set(skip) != ({"strategy", "stage"} if targeted else {"strategy"}):
            raise self.fail("only skip_to_first and skip_to_last name a 'stage'", "$.pattern.skip")
        if targeted:
            self.trail.append(skip)
            if skip["stage"] not in names:
                raise self.fail(f"skip names stage {skip['stage']!r}, which is not in the pattern",
                                "$.pattern.skip.stage")
            self.trail.pop()
        self.trail.pop()
        return names

    def check_pattern_meaning(self, pattern: dict) -> None:
        self.trail.append(pattern)
        for i, stage in enumerate(pattern["stages"]):
            self.trail.append(stage)
            kind = self.defines.get(stage["name"])
            if kind is None:
                raise self.fail(f"stage {stage['name']!r} is not DEFINEd", f"$.pattern.stages[{i}].name")
            if kind != "bool":
                raise self.fail(f"stage {stage['name']!r} must be a condition (true/false), not a number",
                                f"$.pattern.stages[{i}].name")
            self.trail.pop()
        self.trail.pop()

    def boolean(self, node: Any, path: str) -> None:
        if self.expr(node, path) != "bool":
            self.trail.append(node)
            raise self.fail("expected a condition (a comparison, AND/OR/NOT), got a number", path)

    def number(self, node: Any, path: str) -> None:
        if self.expr(node, path) != "num":
            self.trail.append(node)
            raise self.fail("expected a number, got a condition", path)

    def expr(self, node: Any, path: str, in_define: str | None = None) -> str:
        if isinstance(node, bool) or node is None:
            raise self.fail("expected an expression", path)
        if isinstance(node, (int, float)):
            if not abs(node) < MAX_NUMBER:  # also rejects NaN
                raise self.fail(f"numbers must be finite and below {MAX_NUMBER:g} in size", path)
            return "num"
        if not isinstance(node, dict):
            raise self.fail("expected an expression", path)
        if len(self.trail) > 4 * MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels", path)
        self.trail.append(node)
        kind = self._expr(node, path, in_define)
        self.trail.pop()
        return kind

    def _expr(self, node: dict, path: str, in_define: str | None) -> str:
        if "op" in node:
            op, args = node["op"], node.get("args")
            if set(node) != {"op", "args"} or not isinstance(args, list):
                raise self.fail("an operation is {\"op\": ..., \"args\": [...]}", path)
            arity = 1 if op in ("not", "neg") else 2
            if len(args) != arity:
                raise self.fail(f"{op!r} takes {arity} argument(s)", path)
            for i, arg in enumerate(args):
                sub = f"{path}.args[{i}]"
                if op in ("and", "or", "not"):
                    self.boolean(arg, sub)
                elif op in ARITHMETIC or op in COMPARISONS or op == "neg":
                    self.number(arg, sub)
                else:
                    raise self.fail(f"unknown operator {op!r}", path)
            return "num" if op in ARITHMETIC or op == "neg" else "bool"
        if "fn" in node:
            fn = node["fn"]
            if fn == "abs":
                if set(node) != {"fn", "args"} or not isinstance(node["args"], list) or len(node["args"]) != 1:
                    raise self.fail("abs takes one argument", path)
                self.number(node["args"][0], path + ".args[0]")
                return "num"
            if fn not in QUOTE_FUNCTIONS and fn not in WINDOW_FUNCTIONS:
                raise self.fail(f"unknown function {fn!r}", path)
            keys = {"fn", "symbol", "venue", "window_ms"} if fn in WINDOW_FUNCTIONS else {"fn", "symbol", "venue"}
            if set(node) - keys or "symbol" not in node or (fn in WINDOW_FUNCTIONS and "window_ms" not in node):
                raise self.fail(f"{fn} takes keys {sorted(keys)} (venue optional)", path)
            symbol, venue = node["symbol"], node.get("venue")
            if not isinstance(symbol, str) or "@" in symbol or not (venue is None or isinstance(venue, str)):
                raise self.fail("'symbol' must be a string BASE/QUOTE and 'venue' a string", path)
            problem = _split_symbol(symbol if venue is None else f"{symbol}@{venue}")
            if isinstance(problem, str):
                raise self.fail(problem, path + ".symbol")
            if fn in WINDOW_FUNCTIONS and (not _is_count(node["window_ms"]) or node["window_ms"] <= 0):
                raise self.fail("window_ms must be a positive whole number of milliseconds", path + ".window_ms")
            return "num"
        if "ref" in node:
            name = node["ref"]
            if set(node) != {"ref"} or not _is_name(name):
                raise self.fail("a reference is {\"ref\": name}", path)
            if name == in_define:
                raise self.fail(f"{name!r} refers to itself", path)
            if name not in self.defines:
                hint = " (DEFINE it before it is used)" if any(d.get("name") == name for d in
                                                               self.rule.get("defines", []) if isinstance(d, dict)) else ""
                raise self.fail(f"unknown name {name!r}{hint}", path)
            return self.defines[name]
        if "stage" in node:
            agg = node.get("agg")
            stage = node["stage"]
            if self.stages is None:
                raise self.fail(f"{stage}.… refers to a pattern stage, and this rule has no PATTERN", path)
            if stage not in self.stages:
                raise self.fail(f"{stage!r} is not a stage of the pattern", path)
            if agg == "count":
                if set(node) != {"stage", "agg"}:
                    raise self.fail("count takes only a stage", path)
                return "num"
            if agg not in STAGE_AGGREGATES or set(node) != {"stage", "agg", "field"}:
                raise self.fail(f"a stage value is {{\"stage\", \"agg\": one of {list(STAGE_AGGREGATES)}, \"field\"}}",
                                path)
            if node["field"] not in STAGE_FIELDS:
                raise self.fail(f"unknown field {node['field']!r}; fields are {', '.join(STAGE_FIELDS)}", path)
            return "num"
        raise self.fail("expected an expression: a number or an object with op, fn, ref or stage", path)


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) is not None \
        and value.upper() not in KEYWORDS and value not in QUOTE_FUNCTIONS + WINDOW_FUNCTIONS


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check(rule: Any) -> None:
    """Raise RuleError (with a JSON path) unless `rule` is a valid rule in JSON form."""
    _Checker(rule).run()


def from_json(obj: Any) -> dict:
    """A stored rule (a JSON string or an already-decoded object) -> checked rule JSON."""
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except (ValueError, RecursionError) as exc:
            raise RuleError(f"not valid JSON: {exc}") from None
    check(obj)
    return parse(to_text(obj))  # the canonical form: defaults dropped, exactly what the text would give


def load(source: str | dict) -> dict:
    """A rule in either form: text, JSON text, or a decoded object."""
    if isinstance(source, dict):
        return from_json(source)
    if source.lstrip().startswith("{"):
        return from_json(source)
    return parse(source)


# ---------------------------------------------------------------- printer

_PRECEDENCE = {"or": 1, "and": 2, "not": 3, **dict.fromkeys(COMPARISONS, 4), "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def to_text(rule: dict) -> str:
    """Rule JSON -> canonical text; parse(to_text(r)) == r for every checked rule r."""
    lines = [f"DEFINE {d['name']} AS {expr_text(d['expr'])}" for d in rule.get("defines", [])]
    if "if" in rule:
        lines.append(f"IF {expr_text(rule['if'])}")
    else:
        lines.append(_pattern_text(rule["pattern"]))
    lines.append(f"THEN {rule['then']}")
    return "\n".join(lines)


def _pattern_text(pattern: dict) -> str:
    parts = []
    for stage in pattern["stages"]:
        if "link" in stage:
            parts.append(LINKS[stage["link"]])
        low, high = stage.get("times", [1, 1])
        optional = stage.get("optional", False)
        if (low, high) == (1, None):
            quant = "*" if optional else "+"
            optional = False
        elif (low, high) == (1, 1):
            quant = ""
        elif high is None:
            quant = f"{{{low},}}"
        else:
            quant = f"{{{low}}}" if low == high else f"{{{low},{high}}}"
        words = [stage["name"] + quant + ("?" if optional else "")]
        if stage.get("greedy"):
            words.append("GREEDY")
        if INNER[stage.get("inner", "relaxed")]:
            words.append(INNER[stage["inner"]])
        parts.append(" ".join(words))
    text = "PATTERN " + " ".join(parts)
    if "within_ms" in pattern:
        text += f" WITHIN {duration_text(pattern['within_ms'])}"
    skip = pattern.get("skip")
    if skip:
        text += f" AFTER MATCH {SKIPS[skip['strategy']]}" + (f" {skip['stage']}" if "stage" in skip else "")
    return text


def duration_text(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % DURATION_MS[unit] == 0:
            return f"{ms // DURATION_MS[unit]}{unit}"
    return f"{ms}ms"


def expr_text(node: Any, parent: int = 0, right: bool = False) -> str:
    if isinstance(node, (int, float)):
        return repr(node)  # a negative literal needs no parentheses: unary minus binds tightest
    if "op" in node:
        op, args = node["op"], node["args"]
        prec = _PRECEDENCE[op]
        if op == "not":
            text = f"NOT {expr_text(args[0], prec)}"
        elif op == "neg":
            text = f"-{expr_text(args[0], prec)}"
        else:
            word = op.upper() if op in ("and", "or") else op
            # left-associative: a right operand of equal precedence needs parentheses; comparisons never chain
            left_prec = prec + 1 if op in COMPARISONS else prec
            text = f"{expr_text(args[0], left_prec)} {word} {expr_text(args[1], prec + 1)}"
        return f"({text})" if prec < parent else text
    if "fn" in node:
        if node["fn"] == "abs":
            return f"abs({expr_text(node['args'][0])})"
        symbol = node["symbol"] + (f"@{node['venue']}" if node.get("venue") else "")
        window = f", {duration_text(node['window_ms'])}" if "window_ms" in node else ""
        return f"{node['fn']}({json.dumps(symbol)}{window})"
    if "ref" in node:
        return node["ref"]
    if node["agg"] == "count":
        return f"count({node['stage']})"
    if node["agg"] == "last":
        return f"{node['stage']}.{node['field']}"
    return f"{node['agg']}({node['stage']}.{node['field']})"


def symbols_of(rule: dict) -> set[tuple[str, str | None]]:
    """Every (symbol, venue or None) a rule reads."""
    found: set[tuple[str, str | None]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "symbol" in node and "fn" in node:
                found.add((node["symbol"], node.get("venue")))
            for arg in node.get("args", ()):
                walk(arg)

    for define in rule.get("defines", []):
        walk(define["expr"])
    if "if" in rule:
        walk(rule["if"])
    return found
