"""Detection over the merged stream: trades reach the rules' windows, in the order given, and no arbitrage state."""
from __future__ import annotations

from core.cep.engine import RuleEngine
from core.contracts.tick import Tick
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
