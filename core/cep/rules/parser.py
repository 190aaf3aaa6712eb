"""Text -> rule tree: a hand-written recursive-descent parser (users' rules are never evaluated as
Python) whose methods follow the productions of the EBNF in docs/rules.md, so an error can name
the line, the column and what was expected there."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import tree
from .checker import TOO_DEEP, check, split_argument
from .covers import FORM as COVER_FORM
from .covers import is_cover
from .lexer import Token, tokenize

EMIT_AT_ONCE = ("EMIT", "AT", "ONCE")


def parse(text: str) -> tree.Rule:
    """Text -> checked rule. Raises ParseError naming line and column."""
    if not isinstance(text, str):
        raise tree.ParseError(f"a rule must be text, got {type(text).__name__}", 1, 1)
    rule = _Parser(text).rule()
    check(rule)
    return rule


def _at(tok: Token) -> tree.TextAt:
    return tree.TextAt(tok.line, tok.column)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = list(tokenize(text))
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, tok: Token | None = None) -> tree.ParseError:
        tok = tok or self.tok
        found = "end of rule" if tok.kind == "EOF" else repr(tok.text)
        return tree.ParseError(f"{message}, found {found}", tok.line, tok.column)

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

    def rule(self) -> tree.Rule:
        partition = self.partition() if self.at("KW", "PARTITION") else None
        defines = []
        while self.at("KW", "DEFINE"):
            start = self.expect("KW", "DEFINE")
            name = self.expect("IDENT", what="a name after DEFINE")
            self.expect("KW", "AS")
            defines.append(tree.Define(name.value, self.expr(), _at(start)))
        body: tree.Expr | tree.Pattern
        until = None
        if self.accept("KW", "IF"):
            body = self.expr()
            until = self.expr() if self.accept("KW", "UNTIL") else None
        elif self.at("KW", "PATTERN"):
            body = self.pattern()
        else:
            raise self.fail("expected DEFINE, IF or PATTERN")
        self.expect("KW", "THEN")
        then = self.expect("IDENT", what="a signal name after THEN").value
        if not self.at("EOF"):
            raise self.fail("expected the end of the rule after the signal name")
        return tree.Rule(tuple(defines), body, then, tree.TextAt(1, 1), partition, until)

    def partition(self) -> tree.Partition:
        start = self.expect("KW", "PARTITION")
        self.expect("KW", "BY")
        fields = [self.partition_field()]
        while self.accept("OP", ","):
            fields.append(self.partition_field())
        if "symbol" not in fields or len(set(fields)) != len(fields):
            raise tree.ParseError("PARTITION BY takes symbol, or symbol and venue", start.line, start.column)
        covers = []
        if self.accept("KW", "FOR"):
            covers.append(self.expect("STR", what='a quoted cover such as "*/USDT" or "@binance"'))
            while self.accept("OP", ","):
                covers.append(self.expect("STR", what='a quoted cover such as "*/USDT" or "@binance"'))
        for tok in covers:
            if not is_cover(tok.value):
                raise tree.ParseError(f"bad cover {tok.value!r}: {COVER_FORM}", tok.line, tok.column)
        return tree.Partition("venue" in fields, tuple(tok.value for tok in covers), _at(start))

    def partition_field(self) -> str:
        tok = self.expect("IDENT", what="symbol or venue")
        if tok.value not in ("symbol", "venue"):
            raise self.fail("expected symbol or venue", tok)
        return tok.value

    def pattern(self) -> tree.Pattern:
        start = self.expect("KW", "PATTERN")
        stages = [self.stage(None)]
        while True:
            link = self.link()
            if link is None:
                break
            stages.append(self.stage(link))
        within = self.expect("DUR", what="a duration such as 30s").value if self.accept("KW", "WITHIN") else None
        within_type = "first_and_last"
        if within is not None and self.accept("KW", "BETWEEN"):
            self.expect("KW", "EVENTS", what="EVENTS: WITHIN 5s BETWEEN EVENTS")
            within_type = "previous_and_current"
        skip, emit_at_once = None, False
        if self.accept("KW", "AFTER"):
            self.expect("KW", "MATCH")
            skip = self.skip()
            emit_at_once = self.emit_at_once()
        return tree.Pattern(tuple(stages), within, within_type, skip, _at(start), emit_at_once)

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

    def stage(self, link: str | None) -> tree.Stage:
        name = self.expect("IDENT", what="a stage name (a DEFINEd condition)")
        low, optional = 1, False
        high: int | None = 1
        if self.accept("OP", "+"):
            high = None
        elif self.accept("OP", "*"):
            high, optional = None, True
        elif self.accept("OP", "{"):
            low = self.count()
            high = low
            if self.accept("OP", ","):
                high = None if self.at("OP", "}") else self.count()
            self.expect("OP", "}")
        if self.accept("OP", "?"):
            optional = True
        greedy = self.accept("KW", "GREEDY") is not None
        inner = "relaxed"
        if self.accept("KW", "CONSECUTIVE"):
            inner = "strict"
        elif self.accept("KW", "ALLOW"):
            self.expect("KW", "COMBINATIONS")
            inner = "any"
        return tree.Stage(name.value, link, low, high, optional, greedy, inner, _at(name))

    def count(self) -> int:
        tok = self.expect("NUM", what="a whole number")
        if not isinstance(tok.value, int):
            raise self.fail("expected a whole number", tok)
        return tok.value

    def skip(self) -> tree.Skip:
        start = self.tok
        if self.accept("KW", "NO"):
            self.expect("KW", "SKIP")
            return tree.Skip("no_skip", None, _at(start))
        self.expect("KW", "SKIP", what="NO SKIP or SKIP ...")
        if self.accept("KW", "PAST"):
            self.expect("KW", "LAST")
            self.expect("KW", "EVENT")
            return tree.Skip("skip_past_last_event", None, _at(start))
        self.expect("KW", "TO", what="TO or PAST after SKIP")
        if self.accept("KW", "NEXT"):
            return tree.Skip("skip_to_next", None, _at(start))
        which = self.accept("KW", "FIRST") or self.accept("KW", "LAST")
        if which is None:
            raise self.fail("expected NEXT, FIRST or LAST after SKIP TO")
        stage = self.expect("IDENT", what="a stage name").value
        return tree.Skip(f"skip_to_{which.value.lower()}", stage, _at(start))

    def emit_at_once(self) -> bool:
        """EMIT AT ONCE after the skip strategy; its words are not reserved (they may name a DEFINE)."""
        for i, word in enumerate(EMIT_AT_ONCE):
            tok = self.tok
            if tok.kind != "IDENT" or tok.text.upper() != word:
                if i == 0:
                    return False
                raise self.fail(f"expected {word}: EMIT AT ONCE")
            self.i += 1
        return True

    # expressions, loosest binding first
    @contextmanager
    def nested(self) -> Iterator[None]:
        self.depth += 1
        if self.depth > tree.MAX_DEPTH:
            raise self.fail(TOO_DEEP)
        yield
        self.depth -= 1

    def expr(self) -> tree.Expr:
        with self.nested():
            return self.chain("KW", ("OR",), self.conjunction)

    def conjunction(self) -> tree.Expr:
        return self.chain("KW", ("AND",), self.negation)

    def chain(self, kind: str, ops: tuple[str, ...], operand: Callable[[], tree.Expr]) -> tree.Expr:
        """Left-associative operators of one precedence level."""
        left = operand()
        while self.at(kind) and self.tok.value in ops:
            tok = self.tok
            self.i += 1
            left = tree.Binary(tok.value.lower(), left, operand(), _at(tok))
        return left

    def negation(self) -> tree.Expr:
        tok = self.accept("KW", "NOT")
        if tok is None:
            return self.comparison()
        with self.nested():
            return tree.Unary("not", self.negation(), _at(tok))

    def comparison(self) -> tree.Expr:
        left = self.sum()
        tok = self.tok
        if tok.kind == "OP" and tok.value in tree.COMPARISONS:
            self.i += 1
            left = tree.Binary(tok.value, left, self.sum(), _at(tok))
            if self.at("OP") and self.tok.value in tree.COMPARISONS:
                raise self.fail("comparisons do not chain; join them with AND")
        return left

    def sum(self) -> tree.Expr:
        return self.chain("OP", ("+", "-"), self.term)

    def term(self) -> tree.Expr:
        return self.chain("OP", ("*", "/"), self.unary)

    def unary(self) -> tree.Expr:
        tok = self.accept("OP", "-")
        if tok is None:
            return self.primary()
        with self.nested():
            operand = self.unary()
        return tree.negate(operand, _at(tok))

    def primary(self) -> tree.Expr:
        tok = self.tok
        if self.accept("NUM"):
            return tree.Number(tok.value, _at(tok))
        if self.accept("OP", "("):
            node = self.expr()
            self.expect("OP", ")")
            return node
        if self.accept("IDENT"):
            if self.accept("OP", "("):
                return self.call(tok.value, tok)
            if self.accept("OP", "."):
                field = self.expect("IDENT", what="a field name (price, bid, ask, spread, ts)")
                return tree.StageValue(tok.value, "last", field.value, _at(tok))
            return tree.Ref(tok.value, _at(tok))
        if self.accept("KW", "EVENT"):
            return self.event_field(tok)
        if tok.kind == "KW" and tok.value in ("FIRST", "LAST"):  # aggregates spelt like SKIP TO FIRST / LAST
            self.i += 1
            self.expect("OP", "(", what=f"'(': {tok.value.lower()}(stage.price)")
            return self.call(tok.value.lower(), tok)
        if tok.kind == "DUR":
            raise self.fail("a duration is only allowed as a window argument")
        raise self.fail("expected a number, a function call, a name or '('")

    def event_field(self, start: Token) -> tree.Expr:
        """event.price, or event.kind == "trade" (text fields are only compared with a quoted value)."""
        self.expect("OP", ".", what="'.' and a field: event.price, event.kind")
        fields = (*tree.EVENT_NUMBERS, *tree.EVENT_TEXTS)
        field = self.expect("IDENT", what=f"an event field ({', '.join(fields)})")
        if field.value in tree.EVENT_NUMBERS:
            return tree.EventField(field.value, _at(start))
        if field.value not in tree.EVENT_TEXTS:
            raise self.fail(f"expected an event field ({', '.join(fields)})", field)
        op = self.accept("OP", "==") or self.expect("OP", "!=", what=f"== or != after event.{field.value}")
        value = self.expect("STR", what=f'a quoted value: event.{field.value} == "..."')
        node: tree.Expr = tree.EventIs(field.value, value.value, _at(start))
        return tree.Unary("not", node, _at(op)) if op.value == "!=" else node

    def call(self, fn: str, name: Token) -> tree.Expr:
        at = _at(name)
        node: tree.Expr
        if fn in tree.QUOTE_FUNCTIONS:
            if not (self.at("STR") or self.at("OP", ")")):
                raise self.fail('expected a quoted symbol such as "BTC/USDT" (none: a partitioned rule\'s key)')
            symbol, venue = self.symbol_arg() if self.at("STR") else (None, None)
            node = tree.QuoteFn(fn, symbol, venue, at)
        elif fn in tree.WINDOW_FUNCTIONS:
            if self.at("STR") or self.at("DUR"):
                named = self.at("STR")
                symbol, venue = self.symbol_arg() if named else (None, None)
                if named:
                    self.expect("OP", ",", what=f"',' and a window length: {fn}(\"BTC/USDT\", 1m)")
                window_ms = self.expect("DUR", what="a window length such as 30s or 5m").value
                node = tree.WindowFn(fn, symbol, venue, window_ms, at)
            else:  # a window over an expression: zscore(price("ETH/USDT") / price("BTC/USDT"), 10m)
                inner = self.expr()
                self.expect("OP", ",", what=f"',' and a window length: {fn}(expression, 10m)")
                window_ms = self.expect("DUR", what="a window length such as 30s or 5m").value
                node = tree.ExprWindow(fn, inner, window_ms, at)
        elif fn == "count":
            node = tree.StageValue(self.expect("IDENT", what="a stage name").value, "count", None, at)
        elif fn in tree.STAGE_AGGREGATES:
            stage = self.expect("IDENT", what="stage.field")
            self.expect("OP", ".", what="'.' and a field: first(spike.price)")
            node = tree.StageValue(stage.value, fn, self.expect("IDENT", what="a field name").value, at)
        elif fn == "abs":
            node = tree.Abs(self.expr(), at)
        else:
            known = ", ".join((*tree.QUOTE_FUNCTIONS, *tree.WINDOW_FUNCTIONS, "count", *tree.STAGE_AGGREGATES, "abs"))
            raise tree.ParseError(f"unknown function {fn!r}; known: {known}", name.line, name.column)
        self.expect("OP", ")", what="')'")
        return node

    def symbol_arg(self) -> tuple[str | None, str | None]:
        tok = self.expect("STR", what='a quoted symbol such as "BTC/USDT" or "BTC/USDT@binance"')
        return split_argument(tok.value, _at(tok))
