"""One tick dated 2100 in a replay: dead-lettered by the job's reader with its reason, and the rules go on."""
from __future__ import annotations

import json

import orjson
import pytest

from tests.e2e.test_rules_live import T0, btc, wait_for
from tests.ingestion.kafka_read import consume

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

YEAR_2100 = 4_102_444_800_000


def test_a_tick_from_2100_is_dead_lettered_and_the_rules_keep_evaluating_the_ticks_after_it(start_stack, tmp_path):
    stack = start_stack("--source", "none")
    client = stack.redis()
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps({"venue": "binance", "symbol": "ETH/USDT", "bid": 1.0, "ask": 1.1, "ts": T0}) + "\n")
    assert stack.cli("replay", str(first), "--max").returncode == 0
    stack.wait_counter("ticks", 1)  # the job is up: the rule's stats will show when it is in force
    stack.add_rule("high", 'IF price("BTC/USDT") > 100 THEN HIGH')

    outlier = json.dumps({"venue": "kraken", "symbol": "BTC/USDT", "bid": 499.5, "ask": 500.5, "ts": YEAR_2100})
    path = tmp_path / "ticks.jsonl"
    path.write_text("\n".join([btc(90, 1_000), btc(95, 2_000), outlier, btc(101, 3_000), btc(102, 4_000)]) + "\n")
    replayed = stack.cli("replay", str(path), "--max")
    assert replayed.returncode == 0, replayed.stderr

    def rule_signal_times() -> set[int]:
        times = set()
        for signal_id in client.zrange("ascep:signals", 0, -1):
            signal = json.loads(client.get(f"ascep:signal:{signal_id}"))
            if signal["type"] == "rule" and signal["rule_id"] == "high":
                times.add(signal["event_time"])
        return times

    wait_for(lambda: T0 + 3_000 in rule_signal_times(), "the rule's signal on the tick after the outlier")
    assert YEAR_2100 not in rule_signal_times()

    dead = [orjson.loads(value) for value in consume(stack.info["kafka"], "deadletter", 1)]
    from_job = [record for record in dead if record.get("source") == "job"]
    assert len(from_job) == 1, dead
    assert json.loads(from_job[0]["frame"])["ts"] == YEAR_2100
    assert "2100-01-01T00:00:00.000Z" in from_job[0]["reason"] and "job.max_future_skew_ms" in from_job[0]["reason"]
    # after the first tick, the watermark record its replay wrote when it closed, and two good ones
    assert from_job[0]["offset"] == 4
    assert "kraken:BTC/USDT" not in client.smembers("ascep:prices"), "the outlier became the latest quote"
    assert int(client.hget("ascep:counters", "deadletters") or 0) == 1
    code, _ = stack.stop()
    assert code == 0
