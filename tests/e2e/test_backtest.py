"""A backtest over the lake gives the signals the live job gave over the same ticks: the same ids, the same states.

`ascep up` runs the job with a lake. Two rules are added through the CLI (a condition over three symbols, and a
pattern with a quantifier), then a seeded FX market (ingestion/sim/fx.py, two venues, ticks of one millisecond
on both) is replayed with `ascep replay --max`, some of its ticks out of offset order: every 50 ticks one pair
swapped (the job's event-time order puts them back) and one tick moved five places later (behind ticks the
engine already took: late). Once the lake holds every tick and every rule signal Redis holds,
`ascep rules backtest`, run through the CLI over the market's range, must give per rule the ids and final states
Redis and the lake hold, and as many late ticks as the job counted. Fed in offset order, the same ticks give other
ids for both rules.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from core.contracts.tick import watermark_in
from core.contracts.times import iso_ms
from ingestion.sim.fx import fx_market
from lake.reader import read_kind
from lake.storage import open_lake
from tests.e2e.test_rules_live import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

START_MS = 1_700_000_000_000
TICKS = 4_000  # ~20 s of market time at 200 ticks/s
WARMUP = {"venue": "fx_ecn", "symbol": "AUD/USD", "bid": 0.6599, "ask": 0.6601, "ts": START_MS - 1_000}
RULES = {
    "eurjpy": 'DEFINE implied AS price("EUR/USD") * price("USD/JPY")\n'
              'IF abs(implied - price("EUR/JPY")) / price("EUR/JPY") * 10000 > 5 THEN EURJPY_MISPRICED',
    "usdjpy": 'DEFINE rich AS price("USD/JPY@fx_ecn") > price("USD/JPY@fx_dealer")\n'
              'DEFINE cheap AS price("USD/JPY@fx_ecn") < price("USD/JPY@fx_dealer")\n'
              'PATTERN rich{2,} FOLLOWED BY cheap WITHIN 2s AFTER MATCH SKIP PAST LAST EVENT THEN USDJPY_FLIP',
}
COMPARED = ("id", "status", "event_time", "updated_at", "closed_at", "rule_id")  # not detected_at: the wall clock


def market() -> list[dict]:
    ticks = [t.to_json_dict() for t in itertools.islice(fx_market(seed=3, rate=200.0, opportunity_every_s=1.0,
                                                                  opportunity_duration_s=0.3).ticks(START_MS), TICKS)]
    for i in range(0, TICKS - 50, 50):
        ticks[i + 10], ticks[i + 11] = ticks[i + 11], ticks[i + 10]
        ticks.insert(i + 40, ticks.pop(i + 35))
    return ticks


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def watermark_records_among_the_market(bootstrap: str) -> int:
    """Producers' watermark records between the market's first and last tick: the lake keeps none, so one that the
    replay wrote while it stalled for 100 ms could order the ticks after it otherwise than a backtest does."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "backtest-check"})
    consumer.assign([TopicPartition("ticks", 0, 0)])
    kinds = []  # per record: the market's tick, or a watermark record
    while kinds.count("tick") < TICKS and (batch := consumer.consume(1000, timeout=5)):
        for message in batch:
            if watermark_in(message.value()) is not None:
                kinds.append("watermark")
            elif json.loads(message.value())["ts"] >= START_MS:
                kinds.append("tick")
    consumer.close()
    return kinds[kinds.index("tick"):len(kinds) - kinds[::-1].index("tick")].count("watermark")


def test_a_backtest_gives_the_signals_the_live_job_gave(start_stack, tmp_path):
    stack = start_stack("--source", "none", env={"ASCEP_LAKE_OPTIONS__FLUSH_EVERY_S": "1"})
    client = stack.redis()
    ticks = market()
    result = stack.cli("replay", str(write_jsonl(tmp_path / "warmup.jsonl", [WARMUP])), "--max")
    assert result.returncode == 0, result.stderr
    stack.wait_counter("ticks", 1)  # the rule engine exists: a rule added now shows in ascep:rules:stats
    for rule_id, text in RULES.items():
        result = stack.cli("rules", "add", "--id", rule_id, "--text", text)
        assert result.returncode == 0, result.stderr
    wait_for(lambda: all(client.hexists("ascep:rules:stats", rule_id) for rule_id in RULES), "the rules in force")
    result = stack.cli("replay", str(write_jsonl(tmp_path / "market.jsonl", ticks)), "--max")
    assert result.returncode == 0, result.stderr
    stack.wait_counter("ticks", 1 + TICKS)

    lake = open_lake(stack.info["lake"])

    def live() -> dict[str, dict[str, dict]]:
        signals: dict[str, dict[str, dict]] = {rule_id: {} for rule_id in RULES}
        for signal_id in client.zrange("ascep:signals", 0, -1):
            signal = json.loads(client.get(f"ascep:signal:{signal_id}"))
            if signal["type"] == "rule":
                signals[signal["rule_id"]][signal_id] = {k: signal.get(k) for k in COMPARED}
        return signals

    previous: list = [None]

    def settled():
        """Redis's and the lake's rule signal ids once the lake holds every tick and the ids agree, twice in a row."""
        in_redis = live()
        rows = read_kind(lake, "signals", ["id", "rule_id"]).to_pylist()
        in_lake = {rule_id: {r["id"] for r in rows if r["rule_id"] == rule_id} for rule_id in RULES}
        complete = read_kind(lake, "ticks", ["ts"]).num_rows == 1 + TICKS \
            and all(set(in_redis[r]) == in_lake[r] for r in RULES)
        now = (in_redis, in_lake) if complete else None
        again, previous[0] = now is not None and now == previous[0], now
        return now if again else None

    in_redis, in_lake = wait_for(settled, "the lake holding every tick and the rule signals Redis holds", 120)
    late = int(client.hget("ascep:counters", "rules:late_ticks") or 0)
    assert late > 0, "the market has ticks the live engine took as late"

    span = ["--from", iso_ms(START_MS), "--to", str(max(t["ts"] for t in ticks) + 1)]
    problems = []
    for rule_id in RULES:
        out = tmp_path / f"{rule_id}.jsonl"
        result = stack.cli("rules", "backtest", rule_id, *span, "--out", str(out))  # the rule in force, by its id
        assert result.returncode == 0, result.stderr
        states: dict[str, dict] = {}
        for line in out.read_text().splitlines():
            signal = json.loads(line)
            states[signal["id"]] = {k: signal.get(k) for k in COMPARED}  # the last state of each
        summary = " ".join(result.stderr.split())
        print(summary)
        assert f"{TICKS:,} ticks from 1 partition(s)" in summary, summary
        want = in_redis[rule_id]
        assert want, f"the live job gave no {rule_id} signal: the test shows nothing"
        if states != want or set(states) != in_lake[rule_id] or f"{late:,} ticks late" not in summary:
            problems.append(f"{rule_id}: backtest {len(states)} signals, Redis {len(want)}, lake "
                            f"{len(in_lake[rule_id])}; only in the backtest {sorted(set(states) - set(want))}, "
                            f"only live {sorted(set(want) - set(states))}, states that differ "
                            f"{[i for i in states if i in want and states[i] != want[i]]}; "
                            f"the job counted {late} late ticks; the backtest said: {summary}")
    if problems:
        problems.append(f"watermark records among the market's ticks: "
                        f"{watermark_records_among_the_market(stack.info['kafka'])}")
    assert not problems, "\n".join(problems)
    code, _ = stack.stop()
    assert code == 0
