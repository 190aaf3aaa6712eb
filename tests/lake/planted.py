"""A lake with planted opportunities whose lifetimes and decays are known, for the outcome tests (docs/outcomes.md).

Fees are the defaults (binance 10 bps, kraken 40 bps); the detectors' minimum profit is the default 1 bps.
- `cross`: BTC/USDT bought on binance, sold on kraken at T0; kraken's bid falls at +100 ms (still profitable) and
  at +700 ms (no longer): survival 700 ms.
- `book`: ETH/USDT at T1, a second before an hour boundary, with book levels and size 1.5, so the VWAP at the
  size is not the top of book; binance's ask jumps at +2500 ms (in the next hour): survival 2500 ms.
- `triangle`: BTC -> USDT -> ETH -> BTC on binance at T2; ETH/BTC's bid falls at +300 ms: survival 300 ms.
- `lasting`: SOL/USDT across binance and kraken at T3, profitable past the horizon (60 s).
- `rule` (a rule signal) and `unquoted` (a leg the lake has no quote of) are skipped.
"""
from __future__ import annotations

from core.contracts.tick import Tick
from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake.synthetic import TOPIC_ID

T0 = 1_763_700_000_000  # 2025-11-21T04:40:00Z
T1 = 1_763_701_199_000  # 04:59:59, a second before the hour
T2 = 1_763_701_800_000  # 05:10
T3 = 1_763_702_400_000  # 05:20
END = 1_763_703_000_000  # 05:30: the range's end, and the last tick's time
FEES = {"binance": 10.0 / 10_000, "kraken": 40.0 / 10_000}
BOOK_SIZE = 1.5


def quote(venue: str, symbol: str, bid: float, ask: float, ts: int, bids=None, asks=None) -> Tick:
    return Tick(venue, symbol, bid, ask, 1.0 if bids is None else bids[0][1], 1.0 if asks is None else asks[0][1],
                ts, None if bids is None else tuple(bids), None if asks is None else tuple(asks))


BOOK_ASKS = ((2000.0, 1.0), (2004.0, 2.0))  # 1.5 bought: (2000 + 0.5 * 2004) / 1.5
BOOK_BIDS = ((2030.0, 1.0), (2021.0, 5.0))  # 1.5 sold: (2030 + 0.5 * 2021) / 1.5

TICKS = [
    quote("binance", "BTC/USDT", 99.9, 100.0, T0 - 500),  # in force at T0
    quote("kraken", "BTC/USDT", 101.0, 101.1, T0),
    quote("kraken", "BTC/USDT", 100.6, 100.7, T0 + 100),
    quote("kraken", "BTC/USDT", 100.05, 100.15, T0 + 700),
    quote("binance", "BTC/USDT", 99.95, 100.0, T0 + 3_000),
    quote("binance", "BTC/USDT", 99.9, 100.0, T0 + 6_000),
    quote("kraken", "ETH/USDT", 2030.0, 2031.0, T1 - 1_000, bids=BOOK_BIDS, asks=((2031.0, 1.0),)),
    quote("binance", "ETH/USDT", 1999.0, 2000.0, T1, bids=((1999.0, 1.0),), asks=BOOK_ASKS),
    quote("binance", "ETH/USDT", 2000.0, 2001.0, T1 + 200, bids=((2000.0, 1.0),), asks=((2001.0, 1.0), (2003.0, 1.0))),
    quote("binance", "ETH/USDT", 2039.0, 2040.0, T1 + 2_500),  # past the hour, no book: top of book
    quote("binance", "BTC/USDT", 50_000.0, 50_001.0, T2 - 100),
    quote("binance", "ETH/USDT", 1999.0, 2000.0, T2 - 50),
    quote("binance", "ETH/BTC", 0.041, 0.0411, T2),
    quote("binance", "ETH/BTC", 0.0399, 0.04, T2 + 300),
    quote("binance", "SOL/USDT", 9.9, 10.0, T3),
    quote("kraken", "SOL/USDT", 10.2, 10.3, T3),
    quote("kraken", "SOL/USDT", 10.21, 10.3, END - 1),
]


def signal(signal_id: str, kind: str, legs: list[tuple[str, str, str, float]], event_time: int, profit: float,
           size: float | None = None) -> dict:
    return {"id": signal_id, "type": kind, "status": "open", "profit_bps": profit, "size": size,
            "legs": [{"venue": v, "symbol": s, "side": side, "price": p} for v, s, side, p in legs],
            "event_time": event_time, "updated_at": event_time, "detected_at": event_time + 7, "closed_at": None}


SIGNALS = [
    signal("cross", "cross_exchange", [("binance", "BTC/USDT", "buy", 100.0), ("kraken", "BTC/USDT", "sell", 101.0)],
           T0, 49.5),
    signal("book", "cross_exchange", [("binance", "ETH/USDT", "buy", 2000.0), ("kraken", "ETH/USDT", "sell", 2030.0)],
           T1, 99.0, BOOK_SIZE),
    signal("triangle", "triangular", [("binance", "BTC/USDT", "sell", 50_000.0), ("binance", "ETH/USDT", "buy", 2000.0),
                                      ("binance", "ETH/BTC", "sell", 0.041)], T2, 220.0),
    signal("lasting", "cross_exchange", [("binance", "SOL/USDT", "buy", 10.0), ("kraken", "SOL/USDT", "sell", 10.2)],
           T3, 150.0),
    {**signal("rule", "rule", [], T3 + 10, 0.0), "rule_id": "r1", "name": "spike"},
    signal("unquoted", "cross_exchange", [("binance", "XRP/USDT", "buy", 1.0), ("kraken", "XRP/USDT", "sell", 1.1)],
           T3 + 20, 900.0),
]


def write(uri: str) -> None:
    """Each tick at its own offset of partition 0, the signals at theirs, in one object per hour and venue."""
    writer = LakeWriter(open_lake(uri), topic_id=TOPIC_ID, tick_range=1_000, signal_range=1_000,
                        roll_event_span_ms=10**12)
    for offset, tick in enumerate(TICKS):
        writer.add_ticks(0, offset, [tick])
    for offset, item in enumerate(SIGNALS):
        writer.add_signals(0, offset, [item])
    writer.flush(0, len(TICKS) - 1)
    writer.close()
