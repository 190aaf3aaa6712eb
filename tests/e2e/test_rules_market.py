"""A partitioned template switched on for a whole market while a scaled-out job runs: it fires on the
covered symbols that moved, and nowhere else, and each detection bucket runs the keys routed to it."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from core.arbitrage.direct import pair_key
from core.detection import bucket_of
from tests.e2e.test_rules_live import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

T0 = 1_700_000_000_000
BUCKETS = 4
FLAT = ("SOL/USDT", "XRP/USDT", "ADA/USDT", "DOT/USDT")


def quote(symbol: str, price: float, dt: int, venue: str = "binance") -> str:
    return json.dumps({"venue": venue, "symbol": symbol, "bid": price * 0.9999, "ask": price * 1.0001,
                       "ts": T0 + dt})


def test_a_partitioned_template_fires_on_the_covered_symbols_only(start_stack):
    stack = start_stack("--source", "none", env={"ASCEP_JOB__PARTITIONS": "4", "ASCEP_JOB__PARALLELISM": "2",
                                                 "ASCEP_JOB__DETECTION_BUCKETS": str(BUCKETS)})
    client = stack.redis()

    def replay(lines: list[str]) -> None:
        stack.replay_lines(lines, counter="detected")

    replay([quote("ETH/USDT", 1.0, 0)])  # the job is up and detecting
    result = stack.cli("rules", "add", "--template", "price_spike", "--covers", "*/USDT", "--set", "pct=2",
                       "--id", "usdt-spikes")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: client.hget("ascep:rules:stats", "usdt-spikes"), "the rule in force")

    moves = {"BTC/USDT": 1.03, "ETH/USDT": 1.05, "BTC/USD": 1.10, **dict.fromkeys(FLAT, 1.001)}
    lines = []
    for step in range(6):  # 1 s apart: every move is inside the rule's 10 s window
        for symbol, move in moves.items():
            lines.append(quote(symbol, 100.0 * (1 + (move - 1) * step / 5), 1_000 + step * 1_000,
                               venue=("binance", "kraken")[step % 2]))
    replay(lines)

    def fired() -> set[str]:
        found = set()
        for signal_id in client.zrange("ascep:signals", 0, -1):
            signal = json.loads(client.get(f"ascep:signal:{signal_id}"))
            if signal.get("rule_id") == "usdt-spikes":
                found.add(signal["key"])
        return found

    wait_for(lambda: fired() >= {"BTC/USDT", "ETH/USDT"}, "spikes on BTC/USDT and ETH/USDT")
    time.sleep(2)
    assert fired() == {"BTC/USDT", "ETH/USDT"}  # not BTC/USD (not covered), not the flat ones

    covered = {"BTC/USDT", "ETH/USDT", *FLAT}
    buckets = {bucket_of(pair_key(symbol), BUCKETS) for symbol in covered}

    def keys_by_bucket() -> dict[int, int]:
        out = {}
        for bucket in range(BUCKETS):
            name = "ascep:rules:stats" if bucket == 0 else f"ascep:rules:stats:{bucket}"
            doc = client.hget(name, "usdt-spikes")
            if doc and json.loads(doc).get("keys"):
                out[bucket] = json.loads(doc)["keys"]
        return out

    time.sleep(1.5)  # each bucket reports its counters about once a second, after a batch: one more batch
    replay([quote(symbol, 100.0, 10_000) for symbol in FLAT])
    by_bucket = wait_for(lambda: (found := keys_by_bucket()) and sum(found.values()) == len(covered) and found,
                         f"every covered symbol's key counted once, by the bucket that runs it: {keys_by_bucket()}",
                         timeout=30)
    assert set(by_bucket) == buckets and len(buckets) > 1
    with urllib.request.urlopen(f"{stack.url}/api/rules/stats", timeout=10) as response:  # summed over the buckets
        (stats,) = [rule for rule in json.load(response)["rules"] if rule["rule_id"] == "usdt-spikes"]
    assert stats["keys"] == len(covered) and stats["matches"] >= 2
    assert stack.proc.poll() is None and "died" not in stack.output()
    code, _ = stack.stop()
    assert code == 0
