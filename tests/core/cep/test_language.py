"""The rule language: the brief's rule as written, text <-> JSON, errors with line and column, fuzzing."""
from __future__ import annotations

import json
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cep.rules import ParseError, RuleError, from_json, parse, to_json, to_text
from core.cep.templates import TEMPLATES

ARBITRAGE = 'IF price("EUR/USD") - price("USD/EUR") > 0.001 THEN ARBITRAGE_SIGNAL'


def test_the_brief_rule_parses_to_the_documented_json():
    assert to_json(parse(ARBITRAGE)) == {
        "version": 1, "defines": [], "then": "ARBITRAGE_SIGNAL",
        "if": {"op": ">", "args": [{"op": "-", "args": [{"fn": "price", "symbol": "EUR/USD"},
                                                       {"fn": "price", "symbol": "USD/EUR"}]}, 0.001]},
    }


PATTERN_RULE = """
# a rise, then a fall below the rise's price, on one venue
DEFINE spike AS change_pct("BTC/USDT", 10s) > 1
DEFINE reversal AS price("BTC/USDT@binance") < spike.price AND count(spike) >= 2
PATTERN spike{2,} GREEDY FOLLOWED BY ANY reversal WITHIN 30s AFTER MATCH SKIP TO LAST spike
THEN TREND_REVERSAL
"""


def test_a_pattern_rule_with_venue_qualified_prices_and_iterative_conditions():
    rule = to_json(parse(PATTERN_RULE))
    assert rule["pattern"] == {"stages": [{"name": "spike", "times": [2, None], "greedy": True},
                                          {"name": "reversal", "link": "followed_by_any"}],
                               "within_ms": 30_000, "skip": {"strategy": "skip_to_last", "stage": "spike"}}
    reversal = rule["defines"][1]["expr"]
    assert reversal["args"][0]["args"][0] == {"fn": "price", "symbol": "BTC/USDT", "venue": "binance"}
    assert reversal["args"][0]["args"][1] == {"stage": "spike", "agg": "last", "field": "price"}


@pytest.mark.parametrize("text", [ARBITRAGE, PATTERN_RULE, *(t() for t in TEMPLATES.values()),
                                  'IF NOT (bid("A/B") >= 2 OR ask("A/B") < 1) AND -spread("A/B") * 2 != 3 THEN X',
                                  'DEFINE a AS price("A/B") > 1\nDEFINE b AS price("A/B") < 1\n'
                                  'PATTERN a+ CONSECUTIVE NOT FOLLOWED BY b NEXT a2 THEN Y'.replace(
                                      "NEXT a2", "FOLLOWED BY a2").replace("PATTERN", "DEFINE a2 AS a\nPATTERN")])
def test_text_json_text_is_lossless(text):
    rule = parse(text)
    assert parse(to_text(rule)) == rule
    assert from_json(json.dumps(to_json(rule))) == rule
    assert to_text(parse(to_text(rule))) == to_text(rule)


def test_first_and_last_read_a_stage_though_they_are_also_keywords():
    rule = to_json(parse('DEFINE a AS price("A/B") > 1\nDEFINE b AS price("A/B") > first(a.price) + last(a.bid)\n'
                         "PATTERN a+ NEXT b AFTER MATCH SKIP TO FIRST a THEN X"))
    assert rule["defines"][1]["expr"]["args"][1]["args"] == [{"stage": "a", "agg": "first", "field": "price"},
                                                              {"stage": "a", "agg": "last", "field": "bid"}]
    assert to_json(from_json(rule)) == rule and to_json(parse(to_text(from_json(rule)))) == rule


@pytest.mark.parametrize("text, line, column, words", [
    ('IF price("EUR/USD") > THEN X', 1, 23, "expected a number"),
    ('IF price("EUR/USD") >\n  1 THEN', 2, 9, "signal name"),
    ("IF price('EUR/USD') > 1 THEN X", 1, 10, "double quotes"),
    ('IF price("eur/usd") > 1 THEN X', 1, 10, "BASE/QUOTE"),
    ('IF unknown("A/B") > 1 THEN X', 1, 4, "unknown function"),
    ('IF vwap("A/B") > 1 THEN X', 1, 14, "window length"),
    ('IF price("A/B") + 1 THEN X', 1, 17, "expected a condition"),
    ('IF 1 < 2 < 3 THEN X', 1, 10, "do not chain"),
    ('DEFINE a AS price("A/B") > 1\nPATTERN a FOLLOWED BY b THEN X', 2, 23, "not DEFINEd"),
    ('DEFINE a AS price("A/B") > 1\nPATTERN a NOT NEXT a2 THEN X', 2, 20, "cannot end with a negated"),
    ('IF spike.price > 1 THEN X', 1, 4, "no PATTERN"),
    ('IF price("A/B") > 1 THEN X extra', 1, 28, "end of the rule"),
    ('IF price("A/B") > 1 @ THEN X', 1, 21, "unexpected character"),
])
def test_errors_name_line_and_column(text, line, column, words):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert (err.value.line, err.value.column) == (line, column), str(err.value)
    assert words in str(err.value)


def test_json_errors_name_the_path():
    rule = to_json(parse(ARBITRAGE))
    rule["if"]["args"][0]["args"][1]["symbol"] = "usd-eur"
    with pytest.raises(RuleError, match=r"\$\.if\.args\[0\]\.args\[1\]\.symbol"):
        from_json(rule)
    with pytest.raises(RuleError, match="not valid JSON"):
        from_json("{" * 100_000)


TOKENS = ['IF', 'THEN', 'AND', 'OR', 'NOT', 'DEFINE', 'AS', 'PATTERN', 'FOLLOWED', 'BY', 'ANY', 'NEXT', 'WITHIN',
          'AFTER', 'MATCH', 'SKIP', 'PAST', 'LAST', 'EVENT', 'TO', 'FIRST', 'NO', 'GREEDY', 'CONSECUTIVE',
          'price', 'vwap', 'count', 'abs', 'a', 'b', 'a.price', '"BTC/USDT"', '"X/Y@v"', '1m', '30s', '0.5', '2',
          '(', ')', ',', '+', '-', '*', '/', '>', '<=', '==', '{', '}', '?', '\n', '#c\n', '"', "'", '@', 'X',
          'PARTITION', 'FOR', 'UNTIL', 'symbol', 'venue', 'event.kind', 'event.price', '"trade"', '"*/USDT"', 'price()']


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_fuzz_token_soup_gives_a_rule_or_a_parse_error(text):
    try:
        parse(text)
    except ParseError as err:
        assert err.line >= 1 and err.column >= 1


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([ARBITRAGE, PATTERN_RULE, *(t() for t in TEMPLATES.values())]),
       st.integers(0, 10_000), st.integers(0, 3), st.text(string.printable + "é€\x00", max_size=4))
def test_fuzz_mutated_rules_give_a_rule_or_a_parse_error(text, at, cut, insert):
    at %= len(text) + 1
    mutated = text[:at] + insert + text[at + cut:]
    try:
        rule = parse(mutated)
    except ParseError as err:
        assert 1 <= err.line <= mutated.count("\n") + 1
        return
    assert parse(to_text(rule)) == rule


@pytest.mark.timeout(10)
def test_deep_nesting_is_an_error_not_a_crash():
    for text in ("IF " + "(" * 5000 + "1 > 2" + ")" * 5000 + " THEN X", "IF " + "NOT " * 5000 + "1 > 2 THEN X",
                 "IF " + "-" * 5000 + "1 > 2 THEN X"):
        with pytest.raises(ParseError, match="nested deeper"):
            parse(text)


def test_every_template_is_a_valid_rule():
    for name, template in TEMPLATES.items():
        assert parse(template()).then, name


symbols = st.sampled_from(["BTC/USDT", "EUR/USD", "ETH/BTC"])
venues = st.sampled_from([None, "binance", "kraken"])
durations = st.sampled_from([500, 1_000, 30_000, 60_000, 3_600_000, 1_234])


@st.composite
def quote_calls(draw):
    fn = draw(st.sampled_from(["price", "bid", "ask", "spread", "spread_bps", "vwap", "volatility", "change_pct"]))
    node = {"fn": fn, "symbol": draw(symbols)}
    venue = draw(venues)
    if venue:
        node["venue"] = venue
    if fn in ("vwap", "volatility", "change_pct"):
        node["window_ms"] = draw(durations)
    return node


@st.composite
def key_calls(draw):
    """A partitioned rule's calls: no symbol, the key's."""
    fn = draw(st.sampled_from(["price", "bid", "spread_bps", "volume", "zscore", "change_pct"]))
    return {"fn": fn, "window_ms": draw(durations)} if fn in ("volume", "zscore", "change_pct") else {"fn": fn}


event_numbers = st.builds(lambda field: {"event": field}, st.sampled_from(["price", "bid", "ask", "size", "ts"]))
event_tests = st.one_of(st.builds(lambda kind: {"event": "kind", "is": kind}, st.sampled_from(["quote", "trade"])),
                        st.builds(lambda v: {"event": "venue", "is": v}, st.sampled_from(["binance", "kraken"])),
                        st.builds(lambda s: {"event": "symbol", "is": s}, symbols))


def numbers_of(calls):
    return st.recursive(
        st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False), calls, event_numbers),
        lambda inner: st.one_of(
            st.builds(lambda op, a, b: {"op": op, "args": [a, b]}, st.sampled_from("+-*/"), inner, inner),
            st.builds(lambda a: {"op": "neg", "args": [a]}, inner.filter(lambda n: isinstance(n, dict))),
            st.builds(lambda a: {"fn": "abs", "args": [a]}, inner),
            st.builds(lambda fn, a, ms: {"fn": fn, "args": [a], "window_ms": ms},
                      st.sampled_from(["zscore", "mean", "high"]), inner, durations)),
        max_leaves=8)


def conditions_of(calls):
    numbers = numbers_of(calls)
    return st.recursive(
        st.one_of(st.builds(lambda op, a, b: {"op": op, "args": [a, b]},
                            st.sampled_from([">", ">=", "<", "<=", "==", "!="]), numbers, numbers), event_tests),
        lambda inner: st.one_of(
            st.builds(lambda op, a, b: {"op": op, "args": [a, b]}, st.sampled_from(["and", "or"]), inner, inner),
            st.builds(lambda a: {"op": "not", "args": [a]}, inner)),
        max_leaves=6)


conditions = conditions_of(quote_calls())


@settings(max_examples=200, deadline=None)
@given(conditions, st.one_of(st.none(), conditions))
def test_any_json_rule_survives_text_and_back(condition, until):
    rule = {"version": 1, "defines": [], "if": condition, "then": "SIGNAL", **({"until": until} if until else {})}
    assert to_json(parse(to_text(from_json(rule)))) == rule


@settings(max_examples=100, deadline=None)
@given(conditions_of(key_calls()), st.sampled_from([["symbol"], ["symbol", "venue"]]),
       st.lists(st.sampled_from(["*/USDT", "BTC/*", "@binance", "ETH/BTC@kraken", "*/*"]), max_size=3))
def test_any_partitioned_json_rule_survives_text_and_back(condition, by, covers):
    partition = {"by": by, **({"covers": covers} if covers else {})}
    rule = {"version": 1, "partition": partition, "defines": [], "if": condition, "then": "SIGNAL"}
    assert to_json(parse(to_text(from_json(rule)))) == rule


def test_every_rule_example_in_the_docs_parses():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "rules.md").read_text()
    blocks = re.findall(r"^```\n(.*?)^```", doc, re.M | re.S)
    rules = [b for b in blocks if b.lstrip().startswith(("IF", "DEFINE", "#"))]
    assert len(rules) >= 3
    for text in rules:
        parse(text)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10**20), st.floats(), st.text(max_size=8),
              st.sampled_from(["price", "vwap", ">", "and", "not", "neg", "BTC/USDT", "spike", "a", "next"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["op", "args", "fn", "symbol", "venue", "window_ms", "ref", "stage", "agg",
                                         "field", "name", "expr", "link", "times", "stages", "skip", "strategy",
                                         "within_ms", "if", "then", "pattern", "defines", "version", "event",
                                         "is", "partition", "by", "covers", "until"]),
                        inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzz_json_gives_a_rule_or_a_rule_error(value):
    try:
        rule = from_json(value if isinstance(value, dict) else {"version": 1, "if": value, "then": "X"})
    except RuleError:
        return
    assert parse(to_text(rule)) == rule
