"""Trades reach the rules in the running job, in event-time order with the ticks.

One `ascep up`, two phases. Quiet trades: with a rule that reads trades in force, not one trade is produced, and a
rule of quotes still fires while the feed runs (the producer's watermark records on `trades` release the ticks).
A planted surge: replayed trades and ticks of BTC/USDT, a few trades ten times the usual size, and the
`volume_surge` template's signal opens at the surge; every state the job gives is what the rule engine gives over
the same trades and ticks in event-time order. A record on `trades` that is no trade is dead-lettered. The lake
keeps the trades, and `ascep rules backtest` of the rule in force over the surge's range gives the job's signals.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import orjson
import pytest
from confluent_kafka import Producer

from core.cep.engine import RuleEngine
from core.cep.templates import volume_surge
from core.contracts.tick import Tick
from core.contracts.times import iso_ms
from core.contracts.trade import Trade
from lake.reader import read_kind
from lake.storage import open_lake
from tests.e2e.test_rules_live import T0, wait_for
from tests.ingestion.kafka_read import consume

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SURGE = volume_surge("BTC/USDT", ratio=3.0, short="1s", long="10s")
SURGE_START, SURGE_END = T0 + 60_000 + 12_000, T0 + 60_000 + 12_500


def eth(price: float, ts: int) -> dict:
    return {"venue": "binance", "symbol": "ETH/USDT", "bid": price - 0.5, "ask": price + 0.5, "ts": ts}


def market_with_a_surge() -> list[Tick | Trade]:
    """15 s of BTC/USDT from T0 + 60 s: a trade and a quote every 100 ms, the trades of 12.0-12.5 s ten times
    the size; a trade goes before the quote of its millisecond, as the job orders them."""
    out: list[Tick | Trade] = []
    for i in range(150):
        ts = T0 + 60_000 + i * 100
        out.append(Trade("binance", "BTC/USDT", 30_000.0, 10.0 if SURGE_START <= ts < SURGE_END else 1.0, "buy", ts))
        out.append(Tick("binance", "BTC/USDT", 29_999.5, 30_000.5, None, None, ts))
    return out


def expected_states(items: list[Tick | Trade]) -> dict[str, tuple]:
    """What the rule engine itself gives over `items`, signal by signal: (status, event_time, closed_at)."""
    engine = RuleEngine()
    engine.apply("surge", SURGE)
    states = {}
    for item in items:  # trades are events as ticks are: a trade can open or close the rule's signal
        for signal in engine.on_ordered(item, now_ms=0):
            states[signal["id"]] = (signal["status"], signal["event_time"], signal["closed_at"])
    return states


def test_trades_reach_the_rules_a_surge_fires_volume_surge_and_quiet_trades_hold_no_rule_back(start_stack, tmp_path):
    stack = start_stack("--source", "none", env={"ASCEP_LAKE_OPTIONS__FLUSH_EVERY_S": "1"})
    client = stack.redis()

    def replay_file(name: str, rows: list[dict], *args: str) -> subprocess.Popen:
        path = tmp_path / name
        path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        return subprocess.Popen([sys.executable, "-m", "ascep.cli", "replay", str(path), *args], cwd=stack.workdir,
                                env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def rule_states(rule_id: str) -> dict[str, tuple]:
        found = {}
        for signal_id in client.zrange("ascep:signals", 0, -1):
            signal = json.loads(client.get(f"ascep:signal:{signal_id}"))
            if signal["type"] == "rule" and signal["rule_id"] == rule_id:
                found[signal_id] = (signal["status"], signal["event_time"], signal.get("closed_at"))
        return found

    warmup = replay_file("warmup.jsonl", [eth(1_000, T0 - 1_000)], "--max")
    assert warmup.wait(120) == 0, warmup.stderr.read()
    stack.wait_counter("ticks", 1)  # the job is up: its rules engine shows the rules when they are in force
    stack.add_rule("surge", SURGE)
    stack.add_rule("eth", 'IF price("ETH/USDT") > 2000 THEN ETH_HIGH')

    # Quiet trades: 15 s of ETH quotes, paced, crossing 2,000 after 1 s; no trade at all.
    quiet = [eth(1_990.0 if dt < 1_000 else 2_010.0, T0 + dt) for dt in range(0, 15_000, 200)]
    started = time.monotonic()
    feed = replay_file("quiet.jsonl", quiet, "--speed", "1")
    wait_for(lambda: rule_states("eth"), "the quote rule's signal while no trade comes", timeout=60)
    seen_s = time.monotonic() - started
    assert feed.poll() is None, "the quote rule fired only when the feed closed: quiet trades held it back"
    assert [(status, at) for status, at, _ in rule_states("eth").values()] == [("open", T0 + 1_000)]
    print(f"quiet trades: the quote rule's signal {seen_s:.1f} s after the feed started (crossing at 1 s)")
    assert feed.wait(60) == 0, feed.stderr.read()
    assert int(client.hget("ascep:counters", "trades") or 0) == 0

    # A planted surge, and one record on `trades` that is no trade.
    producer = Producer({"bootstrap.servers": stack.info["kafka"]})
    offsets = []
    producer.produce("trades", b"\x00garbage", partition=0, on_delivery=lambda err, msg: offsets.append(msg.offset()))
    assert producer.flush(10) == 0
    del producer  # its threads would go on calling the broker after the stack stops
    market = market_with_a_surge()
    surge = replay_file("surge.jsonl", [orjson.loads(orjson.dumps(item)) if isinstance(item, Trade)
                                        else item.to_json_dict() for item in market], "--max")
    assert surge.wait(120) == 0, surge.stderr.read()
    stack.wait_counter("trades", 150)
    stack.wait_counter("ticks", 1 + len(quiet) + 150)
    expected = expected_states(market)
    assert any(SURGE_START <= at < SURGE_END for _, at, _ in expected.values()), expected  # the surge opens one
    wait_for(lambda: rule_states("surge") == expected, "the job's VOLUME_SURGE signals as the engine gives them")

    from_job = [record for record in map(orjson.loads, consume(stack.info["kafka"], "deadletter", 1))
                if record.get("source") == "job"]
    assert [(r["topic"], r["partition"], r["offset"], r["frame"]) for r in from_job] == [
        ("trades", 0, offsets[0], "\x00garbage")], from_job
    assert from_job[0]["reason"].startswith("not JSON")
    counters = client.hgetall("ascep:counters")
    assert int(counters["trades:deadletters"]) == 1 and "detect:late_ticks" not in counters, counters

    # The lake holds the trades (not the garbage), and a backtest of the rule in force gives the job's signals.
    lake = open_lake(stack.info["lake"])
    wait_for(lambda: read_kind(lake, "trades", ["ts"]).num_rows == 150, "the lake holding the 150 trades", 60)
    out = tmp_path / "surge-backtest.jsonl"
    result = stack.cli("rules", "backtest", "surge", "--from", iso_ms(T0 + 60_000), "--to", iso_ms(T0 + 75_000),
                       "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = " ".join(result.stderr.split())
    assert "150 ticks and 150 trades from 1 partition(s)" in summary, summary
    backtested = {}
    for line in out.read_text().splitlines():
        signal = json.loads(line)
        backtested[signal["id"]] = (signal["status"], signal["event_time"], signal.get("closed_at"))
    assert backtested == rule_states("surge"), summary
    code, _ = stack.stop()
    assert code == 0
