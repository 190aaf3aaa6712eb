"""A stop and start of the embedded stack on one state directory: the broker (in memory) starts empty, and
nothing durable is lost or doubled: the lake, the rules in force, the dashboard's recent signals (issue 11)."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests

from clients.kafka import EMBEDDED, create_topics
from flink_jobs.launcher import StaleCheckpoint, check_restorable, record_topics
from lake.layout import TICKS
from lake.reader import read_kind
from lake.storage import open_lake
from tests.e2e.test_rules_live import wait_for as wait_up_to

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

T0 = 1_700_000_000_000
FAST = {"ASCEP_LAKE_OPTIONS__FLUSH_EVERY_S": "1", "ASCEP_JOB__CHECKPOINT_INTERVAL_MS": "1000"}

wait_for = functools.partial(wait_up_to, timeout=90)  # two stack starts share the test's time


def ticks(first_ms: int, prices: list[float], symbol: str = "BTC/USDT") -> list[dict]:
    return [{"venue": "binance", "symbol": symbol, "bid": p - 0.5, "ask": p + 0.5, "ts": first_ms + i * 1_000}
            for i, p in enumerate(prices)]


def replay(stack, path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = stack.cli("replay", str(path), "--max")
    assert result.returncode == 0, result.stderr


def lake_ticks(stack) -> Counter:
    table = read_kind(open_lake(stack.info["lake"]), TICKS, ["symbol", "bid", "ask", "ts"])
    return Counter(tuple(row.values()) for row in table.to_pylist())


def as_rows(sent: list[dict]) -> Counter:
    return Counter((t["symbol"], t["bid"], t["ask"], t["ts"]) for t in sent)


def rule_in_force(stack) -> bool:
    """The job's own per-rule stats name the rule: it is in its engine."""
    return stack.redis().hexists("ascep:rules:stats", "high")


def rule_signal_times(stack) -> set[int]:
    reply = requests.get(f"{stack.url}/api/signals", params={"limit": 100}, timeout=10)
    reply.raise_for_status()
    return {s["event_time"] for s in reply.json()["signals"] if s.get("rule_id") == "high"}


def test_a_stop_and_start_keeps_the_lake_the_rules_and_the_recent_signals(start_stack, tmp_path):
    # Other ticks in each run, the second an hour on: the same offsets again, in another hour's objects.
    first_warmup, first_run = ticks(T0 - 1_000, [1.0], "ETH/USDT"), ticks(T0, [101, 90, 102, 95, 103, 97])
    second_warmup, second_run = ticks(T0 + 3_599_000, [2.0], "ETH/USDT"), ticks(T0 + 3_600_000, [104, 91, 105, 92])

    stack = start_stack("--source", "none", env=FAST)
    replay(stack, tmp_path / "warmup1.jsonl", first_warmup)  # the rule engine starts with the first tick
    added = stack.cli("rules", "add", "--id", "high", "--text", 'IF price("BTC/USDT") > 100 THEN HIGH')
    assert added.returncode == 0, added.stderr
    wait_for(lambda: rule_in_force(stack), "the rule in force")
    assert stack.redis().hexists("ascep:rules:in_force", "high"), "the job mirrors the rules it took in force"
    replay(stack, tmp_path / "run1.jsonl", first_run)
    wait_for(lambda: lake_ticks(stack) == as_rows(first_warmup + first_run), "run 1's ticks in the lake")
    run1_signals = wait_for(lambda: rule_signal_times(stack) & {t["ts"] for t in first_run}, "run 1's rule signals")
    code, left = stack.stop()
    assert code == 0 and not left

    stack = start_stack("--source", "none", env=FAST)
    assert "rules     high re-published" in stack.output()
    assert "high" in stack.cli("rules", "list").stdout, "the new broker's rules topic holds the rule again"
    assert run1_signals <= rule_signal_times(stack), "the dashboard still shows run 1's signals"
    replay(stack, tmp_path / "warmup2.jsonl", second_warmup)
    wait_for(lambda: rule_in_force(stack), "the rule in force in the new job")
    replay(stack, tmp_path / "run2.jsonl", second_run)
    both = as_rows(first_warmup + first_run + second_warmup + second_run)
    wait_for(lambda: lake_ticks(stack) == both, "both runs' ticks in the lake, once each")
    wait_for(lambda: rule_signal_times(stack) & {t["ts"] for t in second_run}, "the rule in force on run 2's ticks")
    time.sleep(3)  # a few more archiver flushes: still once each
    assert lake_ticks(stack) == both
    assert run1_signals <= rule_signal_times(stack)
    code, _ = stack.stop()
    assert code == 0


def test_restore_refuses_a_checkpoint_whose_topics_are_gone(start_stack, tmp_path, kafka):
    stack = start_stack("--source", "none", env=FAST)
    checkpoints = tmp_path / ".ascep" / "checkpoints"
    wait_for(lambda: list(checkpoints.glob("*/chk-*/_metadata")), "a completed checkpoint")
    recorded = json.loads((checkpoints / "topics.json").read_text())["runs"][-1]["topics"]
    assert set(recorded) == {"ticks", "rules", "trades", "signals"}
    stack.stop()

    again = subprocess.run([sys.executable, "-m", "ascep.cli", "up", "--restore", "--source", "none"], cwd=tmp_path,
                           env=stack.env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1
    assert "refused, its topics are gone: rules, signals, ticks, trades" in again.stderr, again.stderr
    assert "start without --restore" in again.stderr

    # other topics, same names
    create_topics(kafka, EMBEDDED, {"ticks": 1, "trades": 1, "rules": 1}, compacted=("rules",))
    job = subprocess.run([sys.executable, "-m", "ascep.cli", "job", "run", "--restore", "--kafka", kafka,
                          "--redis", "redis://127.0.0.1:1/0"], cwd=tmp_path, env=stack.env,
                         capture_output=True, text=True, timeout=120)
    assert job.returncode == 1
    assert f"ticks was {recorded['ticks']}, now " in job.stderr, job.stderr


def test_a_checkpoint_is_judged_by_the_topics_of_the_run_that_wrote_it(tmp_path):
    """Run 1 checkpoints on topics A; run 2 starts on new topics B and dies before its first checkpoint: restoring
    run 1's checkpoint on B is refused, even though B is what the record says last."""
    a, b = {"ticks": "01a23131-4080-75e1-9f0a-df66b0ae3303"}, {"ticks": "01a2313e-9c00-7b2a-8d41-0c5e7f3a9b12"}
    record_topics(tmp_path, a, started_ms=1_000)
    record_topics(tmp_path, a, started_ms=2_000)  # same topics: no new entry
    checkpoint = tmp_path / "job1" / "chk-7"
    checkpoint.mkdir(parents=True)
    (checkpoint / "_metadata").write_bytes(b"")
    record_topics(tmp_path, b, started_ms=int(time.time() * 1000) + 1_000)
    assert [run["since"] for run in json.loads((tmp_path / "topics.json").read_text())["runs"]][0] == 1_000
    check_restorable(checkpoint, a)
    with pytest.raises(StaleCheckpoint, match=rf"--restore {checkpoint}: refused, its topics are gone: ticks "
                                              rf"\(ticks was {a['ticks']}, now {b['ticks']}\)"):
        check_restorable(checkpoint, b)
