"""Book ticks through the real stack: planted ticks with 20-level books, produced straight into `ticks`, come
out of the PyFlink job as signals whose sizes and leg VWAPs, in Redis and in the lake, are what a brute-force
walk of those books gives (tests/core/arbitrage/oracle.py)."""
from __future__ import annotations

import json
import time

import orjson
import pytest
from confluent_kafka import Producer

from core.contracts.signal import route_of
from core.contracts.tick import Tick, watermark_value, with_levels
from core.settings import Settings
from tests.core.arbitrage import oracle

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

T0 = 1_700_000_000_000
LEVELS = 20


def book(venue: str, symbol: str, bid: float, ask: float, size: float, step: float, dt: int) -> Tick:
    """A tick with LEVELS levels a side, each `step` (a fraction) worse than the one before."""
    sizes = [size * (1 + k % 3) for k in range(LEVELS)]  # uneven, so the walk stops on thin and thick levels
    bids = [(bid * (1 - step * k), s) for k, s in enumerate(sizes)]
    asks = [(ask * (1 + step * k), s) for k, s in enumerate(sizes)]
    return with_levels(Tick(venue, symbol, bid, ask, sizes[0], sizes[0], T0 + dt), bids, asks)


PLANTED = [
    # BTC/USDT: buy binance, sell kraken, 29 bps net at the top; about 10 bps less per level walked
    book("binance", "BTC/USDT", 99.9, 100.0, 0.4, 0.0005, 0),
    book("kraken", "BTC/USDT", 100.8, 100.9, 0.3, 0.0005, 10),
    # okx: DOT -> USDC -> LTC -> DOT returns 2% before fees at the top; each leg's book falls off quickly
    book("okx", "DOT/USDC", 5.1, 5.101, 40.0, 0.004, 20),
    book("okx", "LTC/USDC", 99.99, 100.0, 0.5, 0.003, 30),
    book("okx", "DOT/LTC", 0.04999, 0.05, 30.0, 0.005, 40),
]


def limits(detection: str) -> oracle.Limits:
    arbitrage = Settings().arbitrage
    found = arbitrage.thresholds(detection)
    return oracle.Limits({venue: arbitrage.fee(venue) * 10_000 for venue in ("binance", "kraken", "okx")},
                         found.min_profit_bps, found.max_quote_age_ms, found.min_size, found.min_notional)


def expected() -> dict[tuple[str, ...], tuple[float, float, list[float]]]:
    """route -> (profit, size, leg VWAPs), by the oracle's walk of the planted books."""
    cross, ambiguous = oracle.cross_exchange([t for t in PLANTED if t.symbol == "BTC/USDT"], limits("cross_exchange"))
    triangular, more = oracle.triangular([t for t in PLANTED if t.venue == "okx"], limits("triangular"))
    assert not ambiguous and not more
    return {**cross, **triangular}


def test_book_ticks_are_sized_by_walking_their_books(start_stack):
    want = expected()
    assert len(want) == 2 and all(1.0 < size and vwaps for _, size, vwaps in want.values()), want
    stack = start_stack("--source", "none")
    producer = Producer({"bootstrap.servers": stack.info["kafka"]})
    for tick in PLANTED:
        producer.produce("ticks", orjson.dumps(tick.to_json_dict()), partition=0)
    producer.produce("ticks", watermark_value(PLANTED[-1].ts + 1), partition=0)  # releases what waits for later
    assert producer.flush(10) == 0
    del producer

    client = stack.redis()
    deadline = time.monotonic() + 30
    while True:
        stored = [json.loads(client.get(f"ascep:signal:{i}")) for i in client.zrange("ascep:signals", 0, -1)]
        found = {route_of(s["legs"]): s for s in stored}
        if set(found) == set(want) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(found) == set(want), stored
    for route, (profit, size, vwaps) in want.items():
        signal = found[route]
        assert signal["profit_bps"] == pytest.approx(profit, abs=1e-6), route
        assert signal["size"] == pytest.approx(size, rel=1e-9), route
        assert [leg["vwap"] for leg in signal["legs"]] == pytest.approx(vwaps, rel=1e-9), route

    from lake.reader import read_kind
    from lake.storage import open_lake

    lake = open_lake(stack.info["lake"])
    deadline = time.monotonic() + 60  # the archiver flushes on its own roll
    while len(rows := read_kind(lake, "signals", ["id", "size", "legs"]).to_pylist()) < len(want):
        assert time.monotonic() < deadline, "the lake holds no signal states"
        time.sleep(0.5)
    for row in rows:
        route = route_of(row["legs"])
        assert row["size"] == found[route]["size"] and row["legs"] == found[route]["legs"], route
    code, _ = stack.stop()
    assert code == 0, stack.output()
