"""The reader's per-batch core: a tick dated too far ahead of its Kafka record is dead-lettered before any state."""
from __future__ import annotations

import orjson

from core.arbitrage.batches import TickBatchProcessor
from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from core.settings import ArbitrageSettings, Settings

WRITTEN = 1_700_000_000_000
YEAR_2100 = 4_102_444_800_000


def record(offset: int, ts: int, venue: str = "binance", bid: float = 100.0, written: int | None = WRITTEN):
    value = orjson.dumps({"venue": venue, "symbol": "BTC/USDT", "bid": bid, "ask": bid + 1.0, "ts": ts})
    return offset, value, written


def run(records, skew_ms: int = 5_000, now_ms: int = WRITTEN):
    states: dict[str, SymbolState] = {}
    processor = TickBatchProcessor(CrossExchangeDetector(ArbitrageSettings(min_profit_bps=-1e9)), skew_ms)
    outcome = processor.process(records, 0, lambda symbol: states.setdefault(symbol, SymbolState()), now_ms)
    return outcome, states


def test_a_tick_dated_2100_is_dead_lettered_with_its_reason_and_reaches_no_state():
    outcome, states = run([record(0, WRITTEN), record(1, YEAR_2100, venue="kraken", bid=50.0), record(2, WRITTEN + 1)])
    assert [t.ts for t in outcome.valid] == [WRITTEN, WRITTEN + 1]
    assert [(d.offset, d.partition) for d in outcome.deadletters] == [(1, 0)]
    reason = outcome.deadletters[0].reason
    assert "2100-01-01T00:00:00.000Z" in reason and "job.max_future_skew_ms" in reason and "5000 ms" in reason
    assert "kraken:BTC/USDT" not in outcome.latest and outcome.signals == []  # no quote, no opportunity from it
    assert not any("kraken" in repr(state) for state in states.values())


def test_the_skew_is_measured_from_the_records_timestamp_not_the_clock_so_a_replay_decides_the_same():
    late_read = WRITTEN + 3_600_000  # read an hour after it was written, as a restore re-reads it
    ahead = [record(0, WRITTEN + 6_000)]
    assert len(run(ahead, now_ms=late_read)[0].deadletters) == 1
    assert len(run([record(0, WRITTEN + 5_000)], now_ms=late_read)[0].valid) == 1  # at the limit: allowed


def test_a_record_without_a_timestamp_is_compared_with_the_clock():
    assert len(run([record(0, WRITTEN + 6_000, written=None)], now_ms=WRITTEN)[0].deadletters) == 1
    assert len(run([record(0, WRITTEN + 6_000, written=None)], now_ms=WRITTEN + 2_000)[0].valid) == 1


def test_old_ticks_pass_whatever_their_age():
    assert len(run([record(0, WRITTEN - 5 * 365 * 86_400_000)])[0].valid) == 1


def test_the_skew_is_a_setting_with_a_few_seconds_by_default():
    assert Settings().job.max_future_skew_ms == 5_000
    assert Settings(job={"max_future_skew_ms": 250}).job.max_future_skew_ms == 250


def test_a_producers_watermark_record_is_kept_in_order_and_one_dated_2100_is_dead_lettered():
    from core.contracts.tick import watermark_value

    outcome, _ = run([record(0, WRITTEN), (1, watermark_value(WRITTEN + 10), WRITTEN), record(2, WRITTEN + 20),
                      (3, watermark_value(YEAR_2100), WRITTEN), (4, b'{"watermark": "soon"}', WRITTEN)])
    assert [t.ts for t in outcome.valid] == [WRITTEN, WRITTEN + 20]
    assert outcome.watermarks == [(1, WRITTEN + 10)]  # after the first tick, before the second
    assert [d.offset for d in outcome.deadletters] == [3, 4]
    assert "watermark record 2100-01-01T00:00:00.000Z" in outcome.deadletters[0].reason
    assert "job.max_future_skew_ms" in outcome.deadletters[0].reason
    assert "field 'venue'" in outcome.deadletters[1].reason  # not a promise: so checked as a tick, and not one


def test_trades_are_checked_as_the_producer_writes_them_and_bad_ones_dead_lettered_with_their_reason():
    from core.arbitrage.batches import check_trades
    from core.contracts.tick import watermark_value
    from core.contracts.trade import Trade

    good = Trade("kraken", "ETH/BTC", 0.05, 2.0, "buy", WRITTEN, "7")
    records = [(0, orjson.dumps(good), WRITTEN), (1, watermark_value(WRITTEN + 10), WRITTEN),
               (2, orjson.dumps({**orjson.loads(orjson.dumps(good)), "size": -1}), WRITTEN),
               (3, orjson.dumps(Trade("kraken", "ETH/BTC", 0.05, 1.0, None, YEAR_2100)), WRITTEN),
               (4, orjson.dumps({**orjson.loads(orjson.dumps(good)), "side": "up"}), WRITTEN), (5, b"\x00", None),
               (6, orjson.dumps(good), WRITTEN)]
    checked = check_trades(records, 3, now_ms=WRITTEN, max_future_skew_ms=5_000)
    assert checked.valid == [good, good]
    assert checked.watermarks == [(1, WRITTEN + 10)]  # after the first trade, before the second
    assert [(d.offset, d.partition) for d in checked.deadletters] == [(2, 3), (3, 3), (4, 3), (5, 3)]
    size, ahead, side, garbage = (d.reason for d in checked.deadletters)
    assert size == "field 'size' must be >= 0, got -1.0"
    assert "2100-01-01T00:00:00.000Z" in ahead and "job.max_future_skew_ms" in ahead
    assert side == "field 'side' must be 'buy', 'sell' or null, got 'up'" and garbage.startswith("not JSON")
