"""A record of the `rules` topic, judged before the job keeps anything of it (issue 12).

A record becomes a Change (a checked rule, or a tombstone of a rule in force) or a Rejected with its reason. The
job's rules reader judges every record and passes on only changes, so broadcast and keyed state never hold a bad
record: it is dead-lettered once, and neither fails the job, nor a restore, nor weighs on every checkpoint.

A record's value is the rule's JSON form; a disabled rule's has `"enabled": false` beside it. A disabled rule stays
on the topic (listed, enabled again by writing it without the flag) and the job runs none of it: it holds the record,
so a tombstone still deletes it, but no engine has the rule and its stats report no version.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from core.contracts.deadletter import deadletter_value

from .rules import Rule, RuleError, from_json, to_json

# A rule is written, not generated: this is far more than any rule needs, and every task's broadcast state and
# every checkpoint hold each rule.
MAX_RULE_BYTES = 64 * 1024
JSON_WHITESPACE = " \t\n\r"


class Change(NamedTuple):
    rule_id: str
    value: bytes | None  # the rule's JSON as published, checked; None (a tombstone) deletes the rule in force


class Rejected(NamedTuple):
    rule_id: str | None  # None when the record has no usable key
    reason: str


class RuleRecord(NamedTuple):
    rule: Rule
    enabled: bool
    version: str  # rule_version of the record


def rule_version(value: bytes) -> str:
    """What `ascep:rules:stats` shows as the version of a rule in force: a digest of its record on the topic."""
    return hashlib.blake2b(value, digest_size=8).hexdigest()


def record_value(rule: Rule, enabled: bool = True) -> bytes:
    """The record `ascep rules` and the dashboard write: the canonical JSON form, plus `"enabled": false` for a
    disabled rule (an enabled rule's record is the JSON form alone, as before disabling existed)."""
    form = to_json(rule) if enabled else {**to_json(rule), "enabled": False}
    return json.dumps(form, separators=(",", ":")).encode()


def record_of(value: bytes) -> RuleRecord:
    """The checked rule a record's value holds (the JSON form only) and whether it is enabled; RuleError says
    what is wrong with it."""
    if len(value) > MAX_RULE_BYTES:
        raise RuleError(f"{len(value)} bytes: a rule's record is at most {MAX_RULE_BYTES} bytes")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8: {exc}") from None
    if text.strip(JSON_WHITESPACE) == "null":
        raise RuleError("JSON null is not a rule, nor a deletion: only a tombstone (a record without a value) "
                        "deletes a rule")
    try:
        form = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RuleError(f"not valid JSON: {exc}") from None
    if not isinstance(form, dict):
        return RuleRecord(from_json(text), True, rule_version(value))  # from_json says what came instead
    enabled = form.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError(f"'enabled' must be true or false, not {json.dumps(enabled)[:40]}", "$.enabled")
    return RuleRecord(from_json(form), enabled, rule_version(value))


def rule_of(value: bytes) -> Rule:
    """The checked rule a record's value holds, enabled or not."""
    return record_of(value).rule


def check_change(rule_id: str, value: bytes | None, in_force: Callable[[str], bool]) -> Change | Rejected:
    """A rule id's new value: a checked rule, or a tombstone of a rule `in_force`."""
    if value is None:
        return Change(rule_id, None) if in_force(rule_id) else Rejected(
            rule_id, f"a tombstone for rule {rule_id!r}, which is not in force")
    try:
        rule_of(value)
    except RuleError as exc:
        return Rejected(rule_id, f"rule {rule_id!r} rejected: {exc}")
    return Change(rule_id, value)


def rule_id_of(key: bytes | None) -> str:
    """The rule id a record's key names, in UTF-8; RuleError when it names none."""
    if not key:
        raise RuleError("a record without a key: a rule's record is keyed by its rule id")
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"the key {key[:64]!r} is not UTF-8 ({exc}), so it names no rule id") from None


def judge(key: bytes | None, value: bytes | None, in_force: Callable[[str], bool]) -> Change | Rejected:
    """A record of the rules topic as Kafka gives it."""
    try:
        rule_id = rule_id_of(key)
    except RuleError as exc:
        return Rejected(None, str(exc))
    return check_change(rule_id, value, in_force)


def rejected_value(rejected: Rejected, value: bytes | None, received_ms: int, **where: Any) -> bytes:
    """The dead letter of a rejected record (docs/ticks.md): `where` locates it (topic, partition, offset)."""
    return deadletter_value("rules", rejected.reason, value or b"", received_ms, source="rules",
                            rule_id=rejected.rule_id, **where)
