"""Rules change while the job runs: added, changed and deleted through the `rules` topic, never a restart."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

T0 = 1_700_000_000_000


def btc(price: float, dt: int) -> str:
    return json.dumps({"venue": "binance", "symbol": "BTC/USDT", "bid": price - 0.5, "ask": price + 0.5, "ts": T0 + dt})


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_rule_added_changed_and_deleted_while_the_job_runs(start_stack):
    stack = start_stack("--source", "none")
    client = stack.redis()

    def replay(*lines: str) -> None:
        stack.replay_lines(list(lines))

    def rule_signals() -> dict[int, dict]:
        found = {}
        for signal_id in client.zrange("ascep:signals", 0, -1):
            signal = json.loads(client.get(f"ascep:signal:{signal_id}"))
            if signal["type"] == "rule" and signal["rule_id"] == "high":
                found[signal["event_time"] - T0] = signal
        return found

    def in_force(rule_id: str) -> str | None:
        stats = client.hget("ascep:rules:stats", rule_id)
        return json.loads(stats)["version"] if stats else None

    replay(json.dumps({"venue": "binance", "symbol": "ETH/USDT", "bid": 1.0, "ask": 1.1, "ts": T0}))  # job is up

    stack.add_rule("high", 'IF price("BTC/USDT") > 100 THEN HIGH')
    replay(btc(101, 1_000))
    wait_for(lambda: 1_000 in rule_signals(), "a signal from the added rule")

    stack.add_rule("high", 'IF price("BTC/USDT") > 200 THEN HIGH')  # the changed version applies from now on
    replay(btc(150, 2_000), btc(201, 3_000))
    wait_for(lambda: 3_000 in rule_signals(), "a signal from the changed rule")
    assert 2_000 not in rule_signals(), "150 matched: the old version (> 100) was still in force"
    assert rule_signals()[1_000]["status"] == "closed", "replacing a rule closes the signal its old version opened"

    result = stack.cli("rules", "rm", "high")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: in_force("high") is None, "the rule gone from the job")
    before = set(rule_signals())
    replay(btc(90, 4_000), btc(300, 5_000))
    assert set(rule_signals()) == before, "a deleted rule still produced signals"
    assert stack.proc.poll() is None and "died" not in stack.output()  # one job run throughout
    code, _ = stack.stop()
    assert code == 0


def test_a_rule_disabled_and_enabled_through_the_api_stops_and_starts_in_the_running_job(start_stack):
    """PUT /api/rules/<id> writes to the topic the job folds; the rule's entry says when the job has it in force.
    The writes are an editor's: `admin`, logged in with the password the first `ascep up` printed."""
    import requests

    stack = start_stack("--source", "none")
    client = stack.redis()
    editor = stack.editor_session()
    assert requests.put(f"{stack.url}/api/rules/high", json={"enabled": False}, timeout=30).status_code == 401

    def put(body: dict) -> dict:
        response = editor.put(f"{stack.url}/api/rules/high", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def landed(version: str) -> dict:
        return wait_for(lambda: (entry := requests.get(f"{stack.url}/api/rules/high", timeout=30).json())["in_force"]
                        and entry["version"] == version and entry, f"version {version} in force")

    def highs() -> set[int]:
        found = set()
        for signal_id in client.zrange("ascep:signals", 0, -1):
            signal = json.loads(client.get(f"ascep:signal:{signal_id}"))
            if signal["type"] == "rule" and signal["rule_id"] == "high":
                found.add(signal["event_time"] - T0)
        return found

    stack.replay_lines([json.dumps({"venue": "binance", "symbol": "ETH/USDT", "bid": 1.0, "ask": 1.1, "ts": T0})])
    enabled = put({"text": 'IF price("BTC/USDT") > 100 THEN HIGH'})
    assert landed(enabled["version"])["in_force_version"] == enabled["version"]
    stack.replay_lines([btc(101, 1_000), btc(90, 1_500)])
    wait_for(lambda: 1_000 in highs(), "a signal from the enabled rule")

    disabled = put({"enabled": False})
    assert (disabled["enabled"], disabled["version"] != enabled["version"]) == (False, True)
    assert landed(disabled["version"])["in_force_version"] is None  # the job runs none of it
    stack.replay_lines([btc(150, 2_000), btc(90, 2_500)])
    assert 2_000 not in highs(), "a disabled rule still produced signals"
    listed = stack.cli("rules", "list")
    assert listed.returncode == 0 and "# high (disabled)" in listed.stdout, listed.stdout + listed.stderr

    again = put({"enabled": True})
    assert again["version"] == enabled["version"]
    landed(again["version"])
    stack.replay_lines([btc(160, 3_000)])
    wait_for(lambda: 3_000 in highs(), "a signal from the rule enabled again")
    assert stack.proc.poll() is None and "died" not in stack.output()  # one job run throughout
    code, _ = stack.stop()
    assert code == 0
