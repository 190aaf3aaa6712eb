"""Records of the `rules` topic judged before the job keeps them: a checked rule, a tombstone of a rule in force,
or a rejection whose reason says what is wrong (issue 12)."""
from __future__ import annotations

import json

import orjson
import pytest

from core.cep.rule_records import (
    MAX_RULE_BYTES,
    Change,
    Rejected,
    RuleRecord,
    judge,
    record_of,
    record_value,
    rejected_value,
    rule_of,
    rule_version,
)
from core.cep.rules import RuleError, parse, to_json

RULE = json.dumps(to_json(parse('IF price("BTC/USDT") > 100 THEN HIGH'))).encode()
IN_FORCE = {"high"}.__contains__


def test_a_checked_rule_passes_as_published_and_a_tombstone_of_a_rule_in_force_deletes_it():
    assert judge(b"high", RULE, IN_FORCE) == Change("high", RULE)
    assert judge(b"new", RULE, IN_FORCE) == Change("new", RULE)
    assert judge(b"high", None, IN_FORCE) == Change("high", None)
    assert rule_of(RULE) == parse('IF price("BTC/USDT") > 100 THEN HIGH')


@pytest.mark.parametrize(("key", "value", "rule_id", "reason"), [
    (b"r", b"[]", "r", "rule 'r' rejected: $: a rule must be a JSON object, not an array"),
    (b"r", b"42", "r", "rule 'r' rejected: $: a rule must be a JSON object, not a number"),
    (b"r", b"true", "r", "rule 'r' rejected: $: a rule must be a JSON object, not true"),
    (b"r", b'"x"', "r", "rule 'r' rejected: $: a rule must be a JSON object, not a string"),
    (b"high", b"null", "high", "rule 'high' rejected: JSON null is not a rule, nor a deletion: only a tombstone"),
    (b"r", b'{"then": "\xff"}', "r", "rule 'r' rejected: not UTF-8: 'utf-8' codec can't decode byte 0xff"),
    (b"r", bytes(range(256)), "r", "rule 'r' rejected: not UTF-8"),
    (b"r", b"\x00\x01", "r", "rule 'r' rejected: not valid JSON: "),
    (b"r", b"IF price(\"A/B\") > 1 THEN X", "r", "rule 'r' rejected: not valid JSON: "),  # the text form is not stored
    (b"r", b"x" * (MAX_RULE_BYTES + 1), "r", f"rule 'r' rejected: {MAX_RULE_BYTES + 1} bytes: a rule's record is at "
                                             f"most {MAX_RULE_BYTES} bytes"),
    (b"r", b'{"if": {"op": ">", "args": [{"ref": "nope"}, 1]}, "then": "X"}', "r",
     "rule 'r' rejected: $.if.args[0]: "),  # valid JSON the checker refuses
    (b"r", b"[" * 60_000, "r", "rule 'r' rejected: not valid JSON: "),  # deeper than the parser goes
    (None, RULE, None, "a record without a key: a rule's record is keyed by its rule id"),
    (b"", RULE, None, "a record without a key"),
    (None, None, None, "a record without a key"),
    (b"\xffr", RULE, None, "the key b'\\xffr' is not UTF-8 ('utf-8' codec can't decode byte 0xff in position 0"),
    (b"ghost", None, "ghost", "a tombstone for rule 'ghost', which is not in force"),
])
def test_anything_else_is_rejected_with_a_reason_naming_what_is_wrong(key, value, rule_id, reason):
    judged = judge(key, value, IN_FORCE)
    assert isinstance(judged, Rejected) and judged.rule_id == rule_id
    assert judged.reason.startswith(reason), judged.reason


def test_a_rule_of_the_largest_size_allowed_passes():
    padded = RULE[:-1] + b" " * (MAX_RULE_BYTES - len(RULE)) + b"}"
    assert len(padded) == MAX_RULE_BYTES and judge(b"r", padded, IN_FORCE) == Change("r", padded)


def test_rule_of_raises_rule_error_only():
    for value in (b"null", b"[]", b"\xff", b"{"):
        with pytest.raises(RuleError):
            rule_of(value)


def test_the_dead_letter_names_the_reason_the_rule_id_and_where_the_record_was():
    rejected = judge(b"r", b"[]", IN_FORCE)
    letter = orjson.loads(rejected_value(rejected, b"[]", 1_000, topic="rules", partition=0, offset=7))
    assert letter == {"venue": "rules", "source": "rules", "reason": rejected.reason, "frame": "[]",
                      "received_ms": 1_000, "rule_id": "r", "topic": "rules", "partition": 0, "offset": 7}
    tombstone = orjson.loads(rejected_value(judge(b"ghost", None, IN_FORCE), None, 1_000))
    assert tombstone["frame"] == "" and tombstone["rule_id"] == "ghost"


def test_a_disabled_rule_is_its_json_form_with_enabled_false_and_a_version_of_its_own():
    rule = parse('IF price("BTC/USDT") > 100 THEN HIGH')
    assert record_value(rule) == RULE.replace(b" ", b"")  # an enabled rule's record is the JSON form alone
    disabled = record_value(rule, enabled=False)
    assert json.loads(disabled) == {**to_json(rule), "enabled": False}
    assert record_of(disabled) == RuleRecord(rule, False, rule_version(disabled))
    assert record_of(record_value(rule)) == RuleRecord(rule, True, rule_version(record_value(rule)))
    assert rule_version(disabled) != rule_version(record_value(rule))
    assert judge(b"high", disabled, IN_FORCE) == Change("high", disabled)  # the job keeps the record, runs none of it


@pytest.mark.parametrize("flag", [b'"no"', b"0", b"null", b"[]"])
def test_enabled_is_true_or_false(flag):
    value = RULE[:-1] + b', "enabled": ' + flag + b"}"
    with pytest.raises(RuleError, match=r"^\$\.enabled: 'enabled' must be true or false"):
        record_of(value)
