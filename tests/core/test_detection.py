"""Detection over the merged stream: trades reach the rules' windows, in the order given, and no arbitrage state."""
from __future__ import annotations

import pickle

from core.cep.engine import RuleEngine
from core.contracts.tick import Tick, with_levels
from core.contracts.trade import Trade
from core.detection import Detection, flags_of
from core.settings import ArbitrageSettings

T0 = 1_700_000_000_000


def test_a_trade_feeds_the_rules_windows_where_it_stands_in_the_stream_and_nothing_else():
    engine = RuleEngine()
    engine.apply("vwap", 'IF price("BTC/USDT") > vwap("BTC/USDT", 1m) THEN ABOVE_VWAP')
    detection = Detection(ArbitrageSettings())
    flags = flags_of(["triangular", "direct", "rules"])
    tick = Tick("binance", "BTC/USDT", 100.0, 101.0, None, None, T0)  # mid 100.5
    trade = Trade("kraken", "BTC/USDT", 100.0, 2.0, "buy", T0 + 1)
    assert detection.run([tick], [flags], T0, engine) == []  # no trade yet: vwap unknown
    signals = detection.run([trade, tick._replace(ts=T0 + 1)], [0, flags], T0, engine)
    assert [(s["name"], s["event_time"]) for s in signals] == [("ABOVE_VWAP", T0 + 1)]  # 100.5 > 100
    assert set(detection.venues) == {"binance"}  # the kraken trade is no quote


def test_the_engine_says_whether_a_rule_reads_trades_so_the_job_waits_for_them_only_then():
    engine = RuleEngine()
    engine.apply("high", 'IF price("BTC/USDT") > 100 THEN HIGH')
    assert not engine.reads_trades()
    engine.apply("surge", 'IF volume("BTC/USDT", 1m) > 10 THEN SURGE')
    assert engine.reads_trades()
    engine.apply("surge", None)
    assert not engine.reads_trades()


def test_book_ticks_keep_their_levels_through_the_buckets_and_a_restore():
    """What the job does with a tick between Kafka and the detectors: a bucket gets it as a plain tuple
    (flink_jobs/readers/ticks.py, buckets.py), the state keeps it pickled and rebuilds from take_changes()."""
    levels = {"BTC/USDT": (100.0, 1.0), "ETH/USDT": (10.01, 15.0), "ETH/BTC": (0.102, 100.0)}
    ticks = [with_levels(Tick("v", symbol, price, price * 1.001, None, None, T0 + n),
                         [(price, size), (price * 0.99, 5.0)], [(price * 1.001, size), (price * 1.05, 100.0)])
             for n, (symbol, (price, size)) in enumerate(levels.items())]
    flags = flags_of(["triangular"])
    shipped = [Tick(*entry[2:]) for entry in [(0, flags, *tick) for tick in ticks]]
    assert shipped == ticks and shipped[0].bids == ((100.0, 1.0), (99.0, 5.0))
    settings = ArbitrageSettings(taker_fees_bps={}, default_taker_fee_bps=0.0, min_profit_bps=0.0)
    whole = Detection(settings).run(shipped, [flags] * 3, T0, None)
    detection = Detection(settings)
    detection.run(shipped[:2], [flags] * 2, T0, None)
    quotes, venues, pairs = pickle.loads(pickle.dumps(detection.take_changes()))
    restored = Detection(settings)
    restored.load(quotes.items(), venues.items(), pairs.items())
    signals = restored.run(shipped[2:], [flags], T0, None)
    assert signals == whole and len(signals) == 1 and all("vwap" in leg for leg in signals[0]["legs"])
    assert signals[0]["size"] > 1.0  # walked past the first BTC/USDT level
