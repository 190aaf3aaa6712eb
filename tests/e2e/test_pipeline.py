"""The whole chain, for real: JSONL file -> replay -> Kafka -> Flink job -> Redis -> dashboard API and WebSocket."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter

import pytest
import websocket
from confluent_kafka import Consumer, Producer, TopicPartition

from core.clock import now_ms
from core.contracts.signal import route_of, signal_id
from core.contracts.times import signal_document

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

T0 = 1_700_000_000_000
# documented defaults
FEES = {"binance": 0.0010, "kraken": 0.0040, "coinbase": 0.0060, "okx": 0.0010, "fx_ecn": 0.000025}


def tick(venue, symbol, bid, ask, dt, bid_size=None, ask_size=None):
    out = {"venue": venue, "symbol": symbol, "bid": bid, "ask": ask, "ts": T0 + dt}
    if bid_size is not None:
        out.update(bid_size=bid_size, ask_size=ask_size)
    return json.dumps(out)


VALID = [
    # BTC/USDT: opens (buy binance, sell kraken), then closes when binance moves up.
    tick("binance", "BTC/USDT", 100.0, 100.1, 0, 2.0, 3.0),
    tick("kraken", "BTC/USDT", 101.0, 101.1, 10, 1.5, 1.0),
    tick("binance", "BTC/USDT", 100.5, 100.6, 20, 2.0, 3.0),
    # XRP/USDT: opens (buy coinbase, sell binance), peaks on the next binance tick, stays open.
    tick("coinbase", "XRP/USDT", 0.5000, 0.5001, 100, 1000.0, 800.0),
    tick("binance", "XRP/USDT", 0.5100, 0.5101, 110, 500.0, 600.0),
    tick("binance", "XRP/USDT", 0.5200, 0.5201, 120, 400.0, 400.0),
    # ETH/USDT: a huge gap, but the coinbase quote is 2.1 s older than the newest: stale, no signal.
    tick("coinbase", "ETH/USDT", 2000.0, 2001.0, 200),
    tick("binance", "ETH/USDT", 2100.0, 2101.0, 2300),
    # SOL/USDT: kraken's bid is above binance's ask, but fees eat the spread: no signal.
    tick("binance", "SOL/USDT", 50.00, 50.01, 300),
    tick("kraken", "SOL/USDT", 50.03, 50.04, 310),
    # DOGE/USDT: 1.4% across venues, but 100 DOGE is a notional of 10 USDT, below the minimum of 100.
    tick("binance", "DOGE/USDT", 0.1000, 0.1001, 1400, 100.0, 100.0),
    tick("kraken", "DOGE/USDT", 0.1020, 0.1021, 1410, 100.0, 100.0),
    # Triangular on okx: DOT -> USDC -> LTC -> DOT returns 2% before fees; opens on the last leg.
    tick("okx", "DOT/USDC", 5.1, 5.101, 1000),
    tick("okx", "LTC/USDC", 99.99, 100.0, 1010),
    tick("okx", "DOT/LTC", 0.04999, 0.05, 1020),
    # Triangular on kraken returning 0.5% before three 0.4% fees: no signal.
    tick("kraken", "ATOM/EUR", 5.025, 5.026, 1100),
    tick("kraken", "LINK/EUR", 99.99, 100.0, 1110),
    tick("kraken", "ATOM/LINK", 0.04999, 0.05, 1120),
    # Triangular on okx that would pay 2%, but two legs are 3 s older than the third: stale, no signal.
    tick("okx", "UNI/USDC", 5.1, 5.101, 1200),
    tick("okx", "AVAX/USDC", 99.99, 100.0, 1210),
    tick("okx", "UNI/AVAX", 0.04999, 0.05, 4300),
    # Direct on fx_ecn: selling EUR for USD, then USD for EUR, returns 10 bps before fees.
    tick("fx_ecn", "EUR/USD", 1.1000, 1.1001, 1300),
    tick("fx_ecn", "USD/EUR", 0.9100, 0.9101, 1310),
]
BAD = [  # the replay dead-letters them with file and line, and goes on
    '{"venue": "binance", "symbol": "BTC/USDT", "bid": -1, "ask": 100, "ts": 1700000000500}',
    "{not json",
]
INPUT = VALID + BAD
VALID_TICKS = len(VALID)
STACK_ENV = {"ASCEP_ARBITRAGE__MIN_NOTIONAL": "100"}  # quote currency units, for the DOGE case


def profit_bps(buy_ask, buy_venue, sell_bid, sell_venue):
    return round((sell_bid * (1 - FEES[sell_venue]) / (buy_ask * (1 + FEES[buy_venue])) - 1) * 10_000, 6)


def expected_signals():
    btc_route = ("buy:binance:BTC/USDT", "sell:kraken:BTC/USDT")
    xrp_route = ("buy:coinbase:XRP/USDT", "sell:binance:XRP/USDT")
    triangle = [{"venue": "okx", "symbol": "DOT/USDC", "side": "sell", "price": 5.1},
                {"venue": "okx", "symbol": "LTC/USDC", "side": "buy", "price": 100.0},
                {"venue": "okx", "symbol": "DOT/LTC", "side": "buy", "price": 0.05}]
    # DOT -> USDC at the bid, USDC -> LTC and LTC -> DOT at the ask, each leg paying okx's fee
    triangle_bps = round(
        (5.1 * (1 - FEES["okx"]) / (100.0 * (1 + FEES["okx"])) / (0.05 * (1 + FEES["okx"])) - 1) * 10_000, 6)
    direct = [{"venue": "fx_ecn", "symbol": "EUR/USD", "side": "sell", "price": 1.1},
              {"venue": "fx_ecn", "symbol": "USD/EUR", "side": "sell", "price": 0.91}]
    direct_bps = round((1.1 * (1 - FEES["fx_ecn"]) * 0.91 * (1 - FEES["fx_ecn"]) - 1) * 10_000, 6)
    return {
        signal_id("cross_exchange", btc_route, T0 + 10): {
            "type": "cross_exchange",
            "legs": [{"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "price": 100.1},
                     {"venue": "kraken", "symbol": "BTC/USDT", "side": "sell", "price": 101.0}],
            "profit_bps": profit_bps(100.1, "binance", 101.0, "kraken"), "size": 1.5,
            "event_time": T0 + 10, "updated_at": T0 + 20, "closed_at": T0 + 20, "status": "closed"},
        signal_id("cross_exchange", xrp_route, T0 + 110): {
            "type": "cross_exchange",
            "legs": [{"venue": "coinbase", "symbol": "XRP/USDT", "side": "buy", "price": 0.5001},
                     {"venue": "binance", "symbol": "XRP/USDT", "side": "sell", "price": 0.52}],
            "profit_bps": profit_bps(0.5001, "coinbase", 0.52, "binance"), "size": 400.0,
            "event_time": T0 + 110, "updated_at": T0 + 120, "status": "open"},
        # it closes when okx's clock (the UNI/AVAX tick at 4.3 s) leaves its legs over 2 s behind: stale
        signal_id("triangular", route_of(triangle), T0 + 1020): {
            "type": "triangular", "legs": triangle, "profit_bps": triangle_bps,
            "event_time": T0 + 1020, "updated_at": T0 + 4300, "closed_at": T0 + 4300, "status": "closed"},
        signal_id("direct", route_of(direct), T0 + 1310): {
            "type": "direct", "legs": direct, "profit_bps": direct_bps,
            "event_time": T0 + 1310, "updated_at": T0 + 1310, "status": "open"},
    }


def lake_rows(lake, kind: str) -> int:
    from lake.reader import read_kind

    return read_kind(lake, kind).num_rows


def without_detected_at(signal: dict) -> dict:
    return {k: v for k, v in signal.items() if k not in ("id", "detected_at")}


class LiveSocket:
    """Collects every message of the dashboard's /ws/live in a background thread."""

    def __init__(self, url: str) -> None:
        self.messages: list[dict] = []
        self.ws = websocket.create_connection(url, timeout=10)
        self.ws.send(json.dumps({"kind": "subscribe_signals"}))  # every signal (docs/live-protocol.md)
        self.ws.settimeout(None)  # the job may take a while to start: wait for messages, however long
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                self.messages.append(json.loads(self.ws.recv()))
            except Exception:  # noqa: BLE001 - socket closed at the end of the test
                return

    def final_signal_states(self) -> dict[str, dict]:
        states: dict[str, dict] = {}
        for message in self.messages:
            if message["kind"] in ("arbitrage_signal", "rule_signal"):
                states[message["data"]["id"]] = message["data"]
        return states


def test_planted_opportunities_reach_redis_and_the_websocket(start_stack, tmp_path):
    started_ms = now_ms()
    stack = start_stack("--source", "none", env=STACK_ENV)
    live = LiveSocket(f"ws://127.0.0.1:{stack.port}/ws/live")
    ticks_file = tmp_path / "planted.jsonl"
    ticks_file.write_text("\n".join(INPUT) + "\n")

    replay = stack.cli("replay", str(ticks_file), "--max")  # finds the running stack's broker by itself
    assert replay.returncode == 0, replay.stderr
    # A record that is not a tick, written straight to the topic: the job must dead-letter it, not die.
    producer = Producer({"bootstrap.servers": stack.info["kafka"]})
    producer.produce("ticks", b"\x00garbage", partition=0)
    assert producer.flush(10) == 0
    del producer  # its threads would go on calling the broker after the stack stops

    stack.wait_counter("ticks", VALID_TICKS)
    stack.wait_counter("deadletters", 1)
    expected = expected_signals()

    client = stack.redis()
    deadline = time.monotonic() + 30  # the detectors downstream of the reader may still be finishing the last batch
    while True:
        stored_ids = client.zrange("ascep:signals", 0, -1)
        stored = {i: json.loads(client.get(f"ascep:signal:{i}")) for i in stored_ids}
        settled = set(stored) == set(expected) and all(without_detected_at(stored[i]) == want
                                                       for i, want in expected.items())
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(stored) == set(expected)
    for signal_id_, want in expected.items():
        assert without_detected_at(stored[signal_id_]) == want
        assert stored[signal_id_]["detected_at"] >= started_ms

    with urllib.request.urlopen(f"{stack.url}/api/signals?limit=10") as response:
        api = json.loads(response.read())["signals"]
    assert [s["id"] for s in api] == sorted(expected, key=lambda i: -expected[i]["event_time"])  # newest first
    shown = {i: signal_document(s) for i, s in stored.items()}  # with ISO times, on the API and the socket alike
    assert {s["id"]: s for s in api} == shown

    deadline = time.monotonic() + 15
    while live.final_signal_states() != shown and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live.final_signal_states() == shown
    assert live.messages[0]["kind"] == "subscribed"

    # The replay's own dead letters name the file and line; the job's names the partition and offset.
    consumer = Consumer({"bootstrap.servers": stack.info["kafka"], "group.id": "e2e-check"})
    consumer.assign([TopicPartition("deadletter", 0, 0)])
    letters = [json.loads(m.value()) for m in consumer.consume(10, timeout=10) if m.error() is None]
    consumer.close()
    reasons = " | ".join(json.dumps(letter) for letter in letters)
    replayed = {f"{ticks_file}:{len(VALID) + n}": frame for n, frame in enumerate(BAD, 1)}  # source: frame
    by_source = {letter.get("source"): letter for letter in letters}
    assert len(letters) == 3 and set(by_source) == {*replayed, "job"}, reasons
    assert {source: by_source[source]["frame"] for source in replayed} == replayed, reasons
    negative_bid, not_json = (by_source[source]["reason"] for source in replayed)
    assert "'bid' must be > 0" in negative_bid and not_json.startswith("not JSON"), reasons
    job = by_source["job"]
    # after the ticks, the replay's watermark record (its promise when it closed), then the garbage
    assert (job["topic"], job["partition"], job["offset"], job["frame"]) == ("ticks", 0, VALID_TICKS + 1,
                                                                             "\x00garbage")
    assert "not JSON" in job["reason"], reasons

    # History: the lake archiver copies ticks and every signal state into Parquet; analytics reads it.
    from lake.reader import read_kind
    from lake.storage import open_lake

    lake = open_lake(stack.info["lake"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if lake_rows(lake, "ticks") == VALID_TICKS \
                and set(read_kind(lake, "signals").column("id").to_pylist()) == set(expected):
            break
        time.sleep(0.5)
    assert lake_rows(lake, "ticks") == VALID_TICKS
    assert set(read_kind(lake, "signals").column("id").to_pylist()) == set(expected)
    analytics = stack.cli("analytics", "--json")
    assert analytics.returncode == 0, analytics.stderr
    figures = json.loads(analytics.stdout)
    assert figures["totals"]["signals"] == len(expected) and figures["totals"]["ticks"] == VALID_TICKS
    assert {row["venue"]: row["ticks"] for row in figures["ticks_by_venue"]} == \
        Counter(json.loads(t)["venue"] for t in VALID)

    live.ws.close()
    code, leftovers = stack.stop()
    assert code == 0, stack.output()
    assert leftovers == [], "processes left behind after ascep up stopped"
