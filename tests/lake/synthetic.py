"""A known input for the lake tests: ticks and signal states on two partitions, with their offsets.

Every record is a function of (partition, offset), so the tests can recompute any figure on
their own. Kraken falls silent for a while on each partition to make tick gaps.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.contracts.tick import Tick

TOPIC_ID = "01a23131-4080-75e1-9f0a-df66b0ae3303"  # the incarnation of the topic the offsets are of
START_MS = 1_763_700_000_000  # 2025-11-21T04:40Z: the input crosses two hour boundaries
STEP_MS = 3_000
VENUES = ("binance", "coinbase", "kraken")
SYMBOLS = ("BTC/USDT", "ETH/USDT")
KRAKEN_SILENT = range(1_000, 1_200)  # offsets where kraken's record carries no tick
OPEN_EVERY = 50  # an opportunity opens at every 50th offset...
PEAK_AFTER = 10  # ...peaks 10 offsets later and closes 20 to 35 offsets later


def close_after(opened: int) -> int:
    return 20 + (opened // OPEN_EVERY) % 4 * 5


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    ticks: tuple[Tick, ...]
    signals: tuple[dict, ...]


def ts_at(partition: int, offset: int) -> int:
    return START_MS + offset * STEP_MS + partition * 700


def tick_at(partition: int, offset: int) -> Tick | None:
    venue = VENUES[(offset + partition) % 3]
    if venue == "kraken" and offset in KRAKEN_SILENT:
        return None
    mid = 100.0 + offset % 17
    return Tick(venue, SYMBOLS[offset % 2], mid - 0.01, mid + 0.01, 1.5 if offset % 3 else None, 2.0,
                ts_at(partition, offset))


def opening(partition: int, offset: int) -> dict:
    symbol = SYMBOLS[offset // OPEN_EVERY % 2]
    buy, sell = VENUES[offset % 3], VENUES[(offset + 1) % 3]
    event_time = ts_at(partition, offset)
    return {
        "id": f"s{partition}-{offset}", "type": "cross_exchange" if offset % 150 else "triangular",
        "legs": [{"venue": buy, "symbol": symbol, "side": "buy", "price": 100.0},
                 {"venue": sell, "symbol": symbol, "side": "sell", "price": 100.2}],
        "profit_bps": 1.0 + (offset % 37) * 1.5, "size": None, "event_time": event_time, "updated_at": event_time,
        "closed_at": None, "status": "open", "detected_at": event_time + 5 + (offset % 7) * 10,
    }


def signals_at(partition: int, offset: int) -> list[dict]:
    """States emitted at this offset: an opening, the peak of one opened earlier, or a close."""
    out = []
    if offset % OPEN_EVERY == 0:
        out.append(opening(partition, offset))
    opened = offset - PEAK_AFTER
    if opened >= 0 and opened % OPEN_EVERY == 0:
        out.append({**opening(partition, opened), "profit_bps": opening(partition, opened)["profit_bps"] + 3.0,
                    "updated_at": ts_at(partition, offset)})
    opened = (offset - 20) - (offset - 20) % OPEN_EVERY  # the one opening that may close here
    if opened >= 0 and offset == opened + close_after(opened):
        peak = opening(partition, opened)["profit_bps"] + 3.0
        out.append({**opening(partition, opened), "profit_bps": peak, "updated_at": ts_at(partition, offset),
                    "closed_at": ts_at(partition, offset), "status": "closed"})
    return out


def records(count: int = 3_000, partitions: tuple[int, ...] = (0, 1)) -> list[Record]:
    out = []
    for offset in range(count):
        for partition in partitions:
            tick = tick_at(partition, offset)
            out.append(Record(partition, offset, (tick,) if tick else (), tuple(signals_at(partition, offset))))
    return out


def final_states(count: int = 3_000, partitions: tuple[int, ...] = (0, 1)) -> list[dict]:
    """The last state of each opportunity, built directly rather than from the lake rows."""
    out = []
    for partition in partitions:
        for offset in range(0, count, OPEN_EVERY):
            state = opening(partition, offset)
            if offset + PEAK_AFTER < count:
                state = {**state, "profit_bps": state["profit_bps"] + 3.0,
                         "updated_at": ts_at(partition, offset + PEAK_AFTER)}
            closes = offset + close_after(offset)
            if closes < count:
                state = {**state, "closed_at": ts_at(partition, closes), "status": "closed",
                         "updated_at": ts_at(partition, closes)}
            out.append(state)
    return out
