"""The rule language: a text form for people, a JSON form for the API and the `rules` topic, and one
tree (tree.py) that both read into, so both mean the same. docs/rules.md is the reference; its EBNF
is what parser.py reads.
"""
from __future__ import annotations

from typing import Any

from .json_form import from_json, to_json
from .parser import parse
from .printer import to_text
from .tree import ParseError, Pattern, Rule, RuleError, symbols_of

__all__ = ["ParseError", "Pattern", "Rule", "RuleError", "from_json", "load", "parse", "symbols_of", "to_json",
           "to_text"]


def load(source: str | dict[str, Any]) -> Rule:
    """A rule in either form: text, JSON text, or a decoded JSON object. Anything else (a list, a number, null
    from a decoded record) is refused by from_json with a RuleError, as a bad rule is."""
    if isinstance(source, str) and not source.lstrip().startswith("{"):
        return parse(source)
    return from_json(source)
