"""The text form's tokens, each with the line and column the parser's errors point at."""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from .tree import ParseError

KEYWORDS = {"IF", "THEN", "AND", "OR", "NOT", "DEFINE", "AS", "PATTERN", "NEXT", "FOLLOWED", "BY", "ANY", "WITHIN",
            "AFTER", "MATCH", "NO", "SKIP", "TO", "PAST", "LAST", "EVENT", "FIRST", "GREEDY", "CONSECUTIVE", "ALLOW",
            "COMBINATIONS", "PARTITION", "FOR", "UNTIL", "BETWEEN", "EVENTS"}
DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class Token(NamedTuple):
    kind: str  # NUM, DUR, STR, IDENT, KW, OP, EOF
    text: str
    value: Any
    line: int
    column: int


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<dur>(?P<amount>\d+)(?P<unit>ms|s|m|h|d)(?![A-Za-z0-9_]))
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<str>"(?:[^"\\\n]|\\["\\])*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|==|!=|[-+*/(),.{}?<>])
""", re.VERBOSE | re.ASCII)  # ASCII: \d is 0-9 only, not every Unicode digit (a full-width ３s is no duration)


def tokenize(text: str) -> Iterator[Token]:
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        column = pos - line_start + 1
        if m is None:
            ch = text[pos]
            hint = " (strings use double quotes)" if ch == "'" else ""
            hint = " (unterminated string)" if ch == '"' else hint
            hint = " (numbers are written with the digits 0-9)" if ch.isdigit() and not ch.isascii() else hint
            raise ParseError(f"unexpected character {ch!r}{hint}", line, column)
        kind, lexeme = m.lastgroup, m.group()
        pos = m.end()
        if kind == "newline":
            line, line_start = line + 1, pos
        elif kind == "dur":
            yield Token("DUR", lexeme, int(m.group("amount")) * DURATION_MS[m.group("unit")], line, column)
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
