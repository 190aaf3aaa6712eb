"""The rule language: the brief's rule as written, text <-> JSON, errors with line and column, fuzzing."""
from __future__ import annotations

import json
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cep.rules import ParseError, RuleError, from_json, parse, to_json, to_text
from core.cep.rules.tree import INNER, LINKS, NEGATED_LINKS, SKIPS, TARGETED_SKIPS
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
                                      "NEXT a2", "FOLLOWED BY a2").replace("PATTERN", "DEFINE a2 AS a\nPATTERN"),
                                  'DEFINE a AS price("A/B") > 1\nDEFINE a2 AS a\n'
                                  'PATTERN a{2,} FOLLOWED BY ANY a2 WITHIN 5s BETWEEN EVENTS THEN Y'])
def test_text_json_text_is_lossless(text):
    rule = parse(text)
    assert parse(to_text(rule)) == rule
    assert from_json(json.dumps(to_json(rule))) == rule
    assert to_text(parse(to_text(rule))) == to_text(rule)


def test_within_between_events_is_within_type_previous_and_current_in_json():
    rule = to_json(parse('DEFINE up AS price("A/B") > 1\nDEFINE up2 AS up\n'
                         "PATTERN up FOLLOWED BY up2 WITHIN 5s BETWEEN EVENTS THEN X"))
    assert rule["pattern"]["within_ms"] == 5_000 and rule["pattern"]["within_type"] == "previous_and_current"
    rule["pattern"]["within_type"] = "first_and_last"  # the default, which the canonical JSON leaves out
    assert "within_type" not in to_json(from_json(rule))["pattern"]
    assert "BETWEEN" not in to_text(from_json(rule))


@pytest.mark.parametrize("pattern, error", [
    ({"within_type": "previous_and_current"}, "needs 'within_ms'"),
    ({"within_ms": 5, "within_type": "between"}, "'within_type' is one of"),
    ({"within_ms": 5, "within_type": 1}, "'within_type' is one of"),
])
def test_a_bad_within_type_names_its_path(pattern, error):
    condition = {"op": ">", "args": [{"fn": "price", "symbol": "A/B"}, 1]}
    rule = {"version": 1, "defines": [{"name": "a", "expr": condition}],
            "pattern": {"stages": [{"name": "a"}], **pattern}, "then": "X"}
    with pytest.raises(RuleError, match=r"^\$\.pattern\.within_type: ") as err:
        from_json(rule)
    assert error in str(err.value)


def test_first_and_last_read_a_stage_though_they_are_also_keywords():
    rule = to_json(parse('DEFINE a AS price("A/B") > 1\nDEFINE b AS price("A/B") > first(a.price) + last(a.bid)\n'
                         "PATTERN a+ NEXT b AFTER MATCH SKIP TO FIRST a THEN X"))
    assert rule["defines"][1]["expr"]["args"][1]["args"] == [{"stage": "a", "agg": "first", "field": "price"},
                                                              {"stage": "a", "agg": "last", "field": "bid"}]
    assert to_json(from_json(rule)) == rule and to_json(parse(to_text(from_json(rule)))) == rule


def test_emit_at_once_survives_text_json_and_back_and_its_words_stay_names():
    text = ('DEFINE emit AS price("A/B") > 1\nDEFINE once AS price("A/B") < 1\n'
            "PATTERN emit FOLLOWED BY ANY once AFTER MATCH SKIP TO LAST emit EMIT AT ONCE THEN X")
    rule = parse(text)
    assert rule.body.emit_at_once and to_json(rule)["pattern"]["emit_at_once"] is True
    assert to_text(rule).endswith("AFTER MATCH SKIP TO LAST emit EMIT AT ONCE\nTHEN X")
    assert from_json(to_json(rule)) == rule and parse(to_text(rule)) == rule
    assert not parse(text.replace(" EMIT AT ONCE", "")).body.emit_at_once
    with pytest.raises(RuleError, match=r"\$\.pattern\.emit_at_once: 'emit_at_once' must be true or false"):
        from_json({**to_json(rule), "pattern": {**to_json(rule)["pattern"], "emit_at_once": "yes"}})


_ABCD = "".join(f'DEFINE {name} AS price("A/B") > 1\n' for name in ("a", "b", "c", "d"))


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
    ('DEFINE a AS price("A/B") > 1\nPATTERN a NOT FOLLOWED BY a2 THEN X', 2, 27, "NOT FOLLOWED BY only with a WITHIN"),
    ('IF spike.price > 1 THEN X', 1, 4, "no PATTERN"),
    ('IF price("A/B") > 1 THEN X extra', 1, 28, "end of the rule"),
    ('IF price("A/B") > 1 @ THEN X', 1, 21, "unexpected character"),
    ('DEFINE a AS price("A/B") > 1\nPATTERN a WITHIN 5s BETWEEN THEN X', 2, 29, "expected EVENTS"),
    ('DEFINE a AS price("A/B") > 1\nPATTERN a BETWEEN EVENTS THEN X', 2, 11, "expected THEN"),
    # what FlinkCEP's Pattern API refuses: an optional stage right before a NOT, or right after a greedy one
    (_ABCD + "PATTERN a{2,3} FOLLOWED BY b* NOT NEXT c FOLLOWED BY d THEN X", 5, 40, "optional path to a NOT"),
    (_ABCD + "PATTERN a FOLLOWED BY c? NOT FOLLOWED BY d FOLLOWED BY b THEN X", 5, 42,
     "cannot follow the optional stage 'c'"),
    (_ABCD + "PATTERN a+ GREEDY NEXT b* THEN X", 5, 24, "optional stage after a greedy one"),
    (_ABCD + "PATTERN a{2,} GREEDY FOLLOWED BY b? THEN X", 5, 34, "cannot follow the GREEDY stage 'a'"),
    (_ABCD + "PATTERN a AFTER MATCH NO SKIP EMIT AT ONCE THEN X", 5, 1, "other than NO SKIP"),
    (_ABCD + "PATTERN a EMIT AT ONCE THEN X", 5, 11, "expected THEN"),
    (_ABCD + "PATTERN a AFTER MATCH SKIP TO NEXT EMIT ONCE THEN X", 5, 41, "expected AT"),
])
def test_errors_name_line_and_column(text, line, column, words):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert (err.value.line, err.value.column) == (line, column), str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize("text, column, words", [
    ('IF change_pct("BTC/USDT", \uff13s) > 1 THEN X', 27, "unexpected character '\uff13' (numbers are written with"),
    ('IF price("BTC/USDT") > \u0663 THEN X', 24, "digits 0-9"),  # an Arabic-Indic three
    ('IF price("BTC/USDT") > 1\u00b2 THEN X', 25, "unexpected character"),  # superscript two
    ('IF price("\uff22\uff34\uff23/USDT") > 1 THEN X', 10, "upper-case ASCII letters and digits"),  # full-width
    ('IF price("\u00c9TH/USDT") > 1 THEN X', 10, "bad symbol"),
    ('IF price("BTC/USD\u0662") > 1 THEN X', 10, "bad symbol"),
    ('IF price("BTC/USDT@b\u00efnance") > 1 THEN X', 10, "lowercase ASCII letters, digits and _"),
    ('IF price("BTC/USDT@") > 1 THEN X', 10, "bad venue"),
])
def test_only_ascii_digits_symbols_and_venues_are_read(text, column, words):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert (err.value.line, err.value.column) == (1, column), str(err.value)
    assert words in str(err.value)


def test_symbols_of_digits_and_upper_case_letters_and_venues_with_underscores_are_read():
    rule = to_json(parse('IF price("1000PEPE/USDT@binance_us") > 1 THEN X'))
    assert rule["if"]["args"][0] == {"fn": "price", "symbol": "1000PEPE/USDT", "venue": "binance_us"}


def test_json_symbols_are_checked_as_text_ones_are():
    rule = to_json(parse(ARBITRAGE))
    rule["if"]["args"][0]["args"][0]["symbol"] = "\uff25UR/USD"
    with pytest.raises(RuleError, match=r"\$\.if\.args\[0\]\.args\[0\]\.symbol: bad symbol"):
        from_json(rule)


def test_json_errors_name_the_path():
    rule = to_json(parse(ARBITRAGE))
    rule["if"]["args"][0]["args"][1]["symbol"] = "usd-eur"
    with pytest.raises(RuleError, match=r"\$\.if\.args\[0\]\.args\[1\]\.symbol"):
        from_json(rule)
    with pytest.raises(RuleError, match="not valid JSON"):
        from_json("{" * 100_000)


TOKENS = ['IF', 'THEN', 'AND', 'OR', 'NOT', 'DEFINE', 'AS', 'PATTERN', 'FOLLOWED', 'BY', 'ANY', 'NEXT', 'WITHIN',
          'AFTER', 'MATCH', 'SKIP', 'PAST', 'LAST', 'EVENT', 'TO', 'FIRST', 'NO', 'GREEDY', 'CONSECUTIVE', 'BETWEEN',
          'EVENTS',
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
              st.sampled_from(["price", "vwap", ">", "and", "not", "neg", "BTC/USDT", "spike", "a", "next",
                               "previous_and_current"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["op", "args", "fn", "symbol", "venue", "window_ms", "ref", "stage", "agg",
                                         "field", "name", "expr", "link", "times", "stages", "skip", "strategy",
                                         "within_ms", "within_type", "if", "then", "pattern", "defines", "version",
                                         "event", "is", "partition", "by", "covers", "until"]),
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


@st.composite
def pattern_rules(draw):
    """A valid PATTERN rule in canonical JSON: defaults left out, as to_json prints it. As FlinkCEP, no NOT
    stage right after an optional one, and no optional stage right after a greedy one."""
    count = draw(st.integers(1, 4))
    stages: list[dict] = []
    for i in range(count):
        stage: dict = {"name": f"s{i}"}
        previous = stages[-1] if stages else {}
        negated = i < count - 1 and not previous.get("optional")
        link = None if i == 0 else draw(st.sampled_from(sorted(LINKS) if negated else
                                                        sorted(set(LINKS) - set(NEGATED_LINKS))))
        if link is not None:
            stage["link"] = link
        if link not in NEGATED_LINKS:
            low = draw(st.integers(1, 3))
            times = draw(st.sampled_from([[1, 1], [low, low], [low, None], [low, low + 2]]))
            if times != [1, 1]:
                stage["times"] = times
                if draw(st.booleans()):
                    stage["greedy"] = True
                inner = draw(st.sampled_from(sorted(INNER)))
                if inner != "relaxed":
                    stage["inner"] = inner
            if not previous.get("greedy") and draw(st.booleans()):
                stage["optional"] = True
        stages.append(stage)
    pattern: dict = {"stages": stages}
    within = draw(st.sampled_from([None, 1, 500, 30_000, 3_600_000, 1_234]))
    if within is not None:
        pattern["within_ms"] = within
        if draw(st.booleans()):
            pattern["within_type"] = "previous_and_current"
    strategy = draw(st.sampled_from([None, *sorted(SKIPS)]))
    if strategy is not None:
        pattern["skip"] = {"strategy": strategy}
        if strategy in TARGETED_SKIPS:
            pattern["skip"]["stage"] = draw(st.sampled_from([s["name"] for s in stages]))
        if strategy != "no_skip" and draw(st.booleans()):
            pattern["emit_at_once"] = True
    condition = {"op": ">", "args": [{"fn": "price", "symbol": "A/B"}, 1]}
    return {"version": 1, "defines": [{"name": s["name"], "expr": condition} for s in stages], "pattern": pattern,
            "then": "SIGNAL"}


@settings(max_examples=300, deadline=None)
@given(pattern_rules())
def test_any_json_pattern_survives_text_and_back(rule):
    text = to_text(from_json(rule))
    assert to_json(parse(text)) == rule
    assert to_text(parse(text)) == text


def test_a_rule_keyed_by_symbol_names_a_venue_of_its_key_with_at_venue():
    rule = parse('PARTITION BY symbol\nIF bid("@binance") - ask("@kraken") > change_pct("@kraken", 10s) THEN X')
    gap = to_json(rule)["if"]["args"][0]["args"]
    assert gap == [{"fn": "bid", "venue": "binance"}, {"fn": "ask", "venue": "kraken"}]
    assert to_json(rule)["if"]["args"][1] == {"fn": "change_pct", "venue": "kraken", "window_ms": 10_000}
    assert parse(to_text(rule)) == rule and from_json(to_json(rule)) == rule
    assert 'bid("@binance")' in to_text(rule)


@pytest.mark.parametrize("text, words", [
    ('PARTITION BY symbol, venue\nIF bid("@binance") > 1 THEN X', "reads only its key's venue"),
    ('IF bid("@binance") > 1 THEN X', "start the rule with PARTITION BY symbol"),
    ('PARTITION BY symbol\nIF bid("@Binance") > 1 THEN X', "bad venue in '@Binance'"),
    ('PARTITION BY symbol\nIF bid("@") > 1 THEN X', "bad venue"),
])
def test_a_venue_alone_is_for_rules_keyed_by_symbol_only(text, words):
    with pytest.raises(ParseError, match=re.escape(words)):
        parse(text)


def test_a_json_venue_alone_is_checked_as_the_text_one():
    rule = {"version": 1, "partition": {"by": ["symbol"]}, "defines": [],
            "if": {"op": ">", "args": [{"fn": "bid", "venue": "Bad"}, 1]}, "then": "X"}
    with pytest.raises(RuleError, match=r"\$\.if\.args\[0\]\.venue: bad venue"):
        from_json(rule)
    with pytest.raises(RuleError, match="reads only its key's venue"):
        from_json({**rule, "partition": {"by": ["symbol", "venue"]},
                   "if": {"op": ">", "args": [{"fn": "bid", "venue": "kraken"}, 1]}})
