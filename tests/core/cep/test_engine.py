"""RuleEngine: rules applied at runtime, signals from ticks, per-rule counters, state snapshots."""
from __future__ import annotations

import json
import pickle
import time

import pytest

from core.cep.engine import RuleEngine
from core.cep.rules import RuleError, parse, symbols_of, to_json
from core.cep.trial import TrialCancelled, TrialLimit, read_ticks, run_rule
from core.contracts.signal import signal_id
from core.contracts.tick import Tick
from core.settings import RuleSettings

T0 = 1_700_000_000_000
ARBITRAGE = 'IF price("EUR/USD") - price("USD/EUR") > 0.001 THEN ARBITRAGE_SIGNAL'


def quote(symbol: str, price: float, ts: int, venue: str = "fx", half_spread: float = 0.0) -> Tick:
    return Tick(venue, symbol, price - half_spread, price + half_spread, None, None, ts)


def feed(engine: RuleEngine, ticks) -> list[dict]:
    out = []
    for tick in ticks:
        out += engine.on_tick(tick, now_ms=tick.ts)
    return out


def test_the_brief_rule_opens_and_closes_one_signal():
    engine = RuleEngine()
    engine.apply("arb", ARBITRAGE)
    signals = feed(engine, [quote("EUR/USD", 1.1000, T0), quote("USD/EUR", 1.0995, T0 + 1),  # 0.0005: no
                            quote("USD/EUR", 1.0980, T0 + 2),  # 0.0020: opens
                            quote("EUR/USD", 1.1010, T0 + 3),  # still true: nothing new
                            quote("EUR/USD", 1.0985, T0 + 4)])  # 0.0005: closes
    assert [(s["status"], s["event_time"], s.get("closed_at")) for s in signals] == \
        [("open", T0 + 2, None), ("closed", T0 + 2, T0 + 4)]
    opened, closed = signals
    assert opened["id"] == closed["id"] == signal_id("rule", ("arb", "ARBITRAGE_SIGNAL"), T0 + 2)
    assert opened["type"] == "rule" and opened["rule_id"] == "arb" and opened["name"] == "ARBITRAGE_SIGNAL"
    json.dumps(signals)
    stats = engine.stats()["arb"]
    assert (stats["evaluations"], stats["matches"], stats["errors"]) == (5, 1, 0) and stats["time_ns"] > 0


def test_a_tick_evaluates_only_the_rules_that_read_its_symbol():
    engine = RuleEngine()
    engine.apply("eur", 'IF price("EUR/USD") > 2 THEN A')
    engine.apply("btc", 'IF price("BTC/USDT@binance") > 2 THEN B')
    feed(engine, [quote("BTC/USDT", 10.0, T0, venue="kraken"), quote("ETH/USDT", 1.0, T0 + 1)])
    assert engine.stats()["eur"]["evaluations"] == 0 and engine.stats()["btc"]["evaluations"] == 1


def test_venue_qualified_prices_read_that_venue_only():
    engine = RuleEngine()
    engine.apply("gap", 'IF price("BTC/USDT@kraken") - price("BTC/USDT@binance") > 5 THEN GAP')
    signals = feed(engine, [quote("BTC/USDT", 100, T0, "binance"), quote("BTC/USDT", 110, T0 + 1, "kraken"),
                            quote("BTC/USDT", 90, T0 + 2, "coinbase")])
    assert [s["status"] for s in signals] == ["open"]


def test_removing_or_replacing_a_rule_closes_its_open_signal_and_reapplying_it_changes_nothing():
    engine = RuleEngine()
    engine.apply("r", 'IF price("A/B") > 1 THEN X')
    [opened] = feed(engine, [quote("A/B", 2, T0)])
    assert engine.apply("r", 'IF   price("A/B")>1   THEN X') == []  # the same rule: state kept
    assert feed(engine, [quote("A/B", 3, T0 + 1)]) == []
    [closed] = engine.apply("r", 'IF price("A/B") > 5 THEN X')
    assert (closed["id"], closed["status"], closed["closed_at"]) == (opened["id"], "closed", T0 + 1)
    assert engine.apply("r", None) == []


def test_the_json_form_of_the_rule_in_force_changes_nothing_and_snapshots_keep_rules_as_json():
    text = 'DEFINE up AS price("A/B") > 1\nIF up THEN X'
    engine = RuleEngine()
    engine.apply("r", text)
    [opened] = feed(engine, [quote("A/B", 2, T0)])
    assert engine.apply("r", to_json(parse(text))) == [] and engine.apply("r", json.dumps(to_json(parse(text)))) == []
    snap = engine.snapshot()
    assert snap["rules"] == {"r": to_json(parse(text))}
    restored = RuleEngine.restore(pickle.loads(pickle.dumps(snap)))
    assert restored.rules["r"].rule == parse(text) and restored.rules["r"].open_signal == opened


def test_apply_none_deletes_and_a_bad_rule_keeps_the_old_one():
    engine = RuleEngine()
    engine.apply("r", 'IF price("A/B") > 1 THEN X')
    with pytest.raises(RuleError):
        engine.apply("r", "IF price(A/B) > 1 THEN X")
    assert feed(engine, [quote("A/B", 2, T0)])[0]["rule_id"] == "r"
    engine.apply("r", None)
    assert engine.rules == {} and feed(engine, [quote("A/B", 3, T0 + 1)]) == []
    engine.apply("gone", None)  # deleting what is not there is a no-op, like a repeated tombstone


@pytest.mark.parametrize(("value", "kind"), [([], "an array"), (42, "a number"), (True, "true"), (1.5, "a number")])
def test_a_decoded_record_that_is_not_an_object_is_a_rule_error_and_keeps_the_old_rule(value, kind):
    engine = RuleEngine()
    engine.apply("r", 'IF price("A/B") > 1 THEN X')
    with pytest.raises(RuleError, match=f"^\\$: a rule must be a JSON object, not {kind}$"):
        engine.apply("r", value)
    assert feed(engine, [quote("A/B", 2, T0)])[0]["rule_id"] == "r"


def test_window_rules_and_trades():
    engine = RuleEngine()
    engine.apply("spike", 'IF change_pct("BTC/USDT", 10s) > 1 THEN PRICE_SPIKE')
    engine.apply("vwap", 'IF price("BTC/USDT") > vwap("BTC/USDT", 1m) * 1.01 THEN ABOVE_VWAP')

    class Trade:
        def __init__(self, price, size, ts):
            self.venue, self.symbol, self.price, self.size, self.ts = "binance", "BTC/USDT", price, size, ts

    engine.on_trade(Trade(100.0, 1.0, T0))
    engine.on_trade(Trade(102.0, 3.0, T0 + 1))  # vwap 101.5
    signals = feed(engine, [quote("BTC/USDT", 100.0, T0 + 2), quote("BTC/USDT", 100.5, T0 + 5_000),
                            quote("BTC/USDT", 102.6, T0 + 9_000),  # +2.6 % in 10 s, and > 101.5 * 1.01
                            quote("BTC/USDT", 102.6, T0 + 30_000)])  # the 10 s window no longer sees 100
    assert [(s["rule_id"], s["status"], s["updated_at"]) for s in signals] == [
        ("spike", "open", T0 + 9_000), ("vwap", "open", T0 + 9_000), ("spike", "closed", T0 + 30_000)]


def test_a_pattern_rule_emits_one_signal_per_match_and_reports_timeouts():
    rule = """
    DEFINE up AS price("BTC/USDT") > 100
    DEFINE down AS price("BTC/USDT") < up.price - 5
    PATTERN up FOLLOWED BY down WITHIN 1s AFTER MATCH SKIP PAST LAST EVENT
    THEN REVERSAL"""
    prices = [99, 101, 99, 95, 102, 100, 120]
    ticks = [quote("BTC/USDT", p, T0 + i * 300) for i, p in enumerate(prices)]
    result = run_rule(rule, ticks, rule_id="rev")
    [match] = result["signals"]
    assert match["status"] == "closed" and match["event_time"] == T0 + 300 and match["closed_at"] == T0 + 900
    assert [t["bid"] for t in match["events"]["up"]] == [101] and [t["bid"] for t in match["events"]["down"]] == [95]
    # 102 at +1200 and 120 at +1800 never saw a fall within 1 s: at the end of input they time out
    assert [p["start_ts"] for p in result["timed_out"]] == [T0 + 1200, T0 + 1800]
    assert result["stats"]["timeouts"] >= 1


def test_a_held_back_match_becomes_a_signal_when_the_earlier_partial_match_times_out():
    rule = """
    DEFINE up AS price("BTC/USDT") > 100
    DEFINE down AS price("BTC/USDT") < 95
    PATTERN up FOLLOWED BY ANY down WITHIN 1s AFTER MATCH SKIP TO LAST up
    THEN REVERSAL"""
    ticks = [quote("BTC/USDT", p, T0 + i * 100) for i, p in enumerate([101, 102, 90])]
    for ends in (lambda e: e.finish(),  # the end of input times every partial match out
                 lambda e: feed(e, [quote("BTC/USDT", 100, T0 + 1_000)])):  # or a tick 1 s after the first up
        engine = RuleEngine()
        engine.apply("rev", rule)
        [first] = feed(engine, ticks)  # up at +100 with down waits: up at +0 may still take a later down
        assert (first["event_time"], first["closed_at"]) == (T0, T0 + 200)
        [held] = ends(engine)
        assert (held["event_time"], held["closed_at"], held["status"]) == (T0 + 100, T0 + 200, "closed")
        assert engine.stats()["rev"]["matches"] == 2


def test_a_pattern_ending_in_a_negation_signals_once_the_negation_holds():
    defines = 'DEFINE up AS price("BTC/USDT") > 100\nDEFINE down AS price("BTC/USDT") < 95\n'
    engine = RuleEngine()
    engine.apply("held", defines + "PATTERN up NOT FOLLOWED BY down WITHIN 1s THEN HELD")
    engine.apply("next", defines + "PATTERN up NOT NEXT down THEN NO_DROP")
    assert feed(engine, [quote("BTC/USDT", 101, T0)]) == []
    # the tick after up is not a fall: NOT NEXT holds on it; NOT FOLLOWED BY still waits for its window
    [no_drop] = feed(engine, [quote("BTC/USDT", 99, T0 + 500)])
    assert (no_drop["name"], no_drop["event_time"], no_drop["closed_at"], no_drop["detected_at"]) == \
        ("NO_DROP", T0, T0, T0 + 500)
    [held] = feed(engine, [quote("BTC/USDT", 99, T0 + 1_000)])  # 1 s without a fall
    assert (held["name"], held["event_time"], held["closed_at"], held["detected_at"]) == ("HELD", T0, T0, T0 + 1_000)
    # a fall within the second ends both partial matches of the up at +2000
    assert feed(engine, [quote("BTC/USDT", 101, T0 + 2_000), quote("BTC/USDT", 90, T0 + 2_100)]) == []
    assert engine.finish() == []


def test_a_pattern_without_within_stays_within_its_caps_over_100k_ticks():
    # unbounded, every tick starts a partial match that waits forever for a fall that never comes
    limits = RuleSettings(max_partial_matches=1_000, max_events_held=5_000)
    engine = RuleEngine(limits=limits)
    engine.apply("r", 'DEFINE up AS price("A/B") > 0\nDEFINE fall AS price("A/B") < 0\n'
                      "PATTERN up FOLLOWED BY ANY fall THEN NEVER")
    engine.apply("c", 'IF price("A/B") > 10 THEN HIGH')
    warned = []
    for i in range(100_000):
        engine.on_tick(quote("A/B", 1.0 + i % 10 * 0.01, T0 + i), now_ms=T0 + i)
        warned += engine.take_capped()
        if i % 10_000 == 0:
            stats = engine.stats()["r"]
            assert stats["partial_matches"] <= 1_000 and stats["events_held"] <= 5_000
    stats = engine.stats()["r"]
    assert 900 <= stats["partial_matches"] <= 1_000 and stats["events_held"] == stats["partial_matches"]
    assert stats["partial_matches_dropped"] == 100_000 - stats["partial_matches"]  # every start is live or counted
    assert warned == ["r"]  # once per rule, for the host to log
    assert {k: engine.stats()["c"][k] for k in ("partial_matches", "events_held", "partial_matches_dropped")} == \
        {"partial_matches": 0, "events_held": 0, "partial_matches_dropped": 0}


def test_the_caps_hold_per_key_of_a_partitioned_rule_and_its_stats_sum_them():
    limits = RuleSettings(max_partial_matches=10)
    engine = RuleEngine(limits=limits)
    engine.apply("p", 'PARTITION BY symbol\nDEFINE up AS price() > 0\nDEFINE fall AS price() < 0\n'
                      "PATTERN up FOLLOWED BY ANY fall THEN NEVER")
    ticks = [quote(symbol, 1.0, T0 + i) for i in range(50) for symbol in ("A/B", "C/D")]
    feed(engine, ticks[:60])
    per_key = [len(unit.nfa.runs) for unit in engine.partitioned["p"].instances.values()]
    assert len(per_key) == 2 and all(9 <= n <= 10 for n in per_key)  # each key its own NFA, its own cap
    stats = engine.stats()["p"]
    assert (stats["keys"], stats["partial_matches"], stats["events_held"]) == (2, sum(per_key), sum(per_key))
    assert stats["partial_matches_dropped"] == 60 - sum(per_key)
    assert engine.take_capped() == ["p"]
    restored = RuleEngine.restore(pickle.loads(pickle.dumps(engine.snapshot())), limits=limits)
    feed(restored, ticks[60:])
    assert restored.take_capped() == []  # warned about before the restore
    assert restored.stats()["p"]["partial_matches_dropped"] == 100 - restored.stats()["p"]["partial_matches"]


def test_a_trial_stops_at_its_limits_or_when_cancelled():
    flapping = [quote("A/B", 2.0 if i % 2 else 0.5, T0 + i) for i in range(50)]  # opens and closes at every tick
    rule = 'IF price("A/B") > 1 THEN X'
    with pytest.raises(TrialLimit) as stopped:
        run_rule(rule, flapping, limits=RuleSettings(trial_max_signals=10))
    assert (stopped.value.limit, stopped.value.value) == ("trial_max_signals", 10)
    assert str(stopped.value) == "the trial made too many signals (rules.trial_max_signals = 10) after 12 ticks"
    with pytest.raises(TrialLimit, match=r"ran out of time \(rules.trial_time_budget_ms = 1\) after \d+ ticks"):
        run_rule(rule, (time.sleep(0.001) or tick for tick in flapping), limits=RuleSettings(trial_time_budget_ms=1))
    asked = []
    with pytest.raises(TrialCancelled):
        run_rule(rule, flapping, cancelled=lambda: asked.append(1) or len(asked) > 5)
    assert len(asked) == 6  # asked before each tick, stopped at once
    assert len(run_rule(rule, flapping, limits=RuleSettings(trial_max_signals=49))["signals"]) == 49  # at the cap


def test_late_ticks_are_set_aside_not_evaluated():
    engine = RuleEngine(out_of_orderness_ms=100)
    engine.apply("r", 'IF price("A/B") > 1 THEN X')
    feed(engine, [quote("A/B", 0.5, T0), quote("A/B", 0.5, T0 + 1_000)])
    assert feed(engine, [quote("A/B", 5.0, T0 + 10)]) == []
    assert [t.ts for t in engine.take_late()] == [T0 + 10] and engine.late_count == 1
    assert engine.stats()["r"]["evaluations"] == 1


def test_snapshot_restore_continues_exactly():
    rule = ('DEFINE up AS change_pct("A/B", 5s) > 1\nDEFINE down AS change_pct("A/B", 5s) < -1\n'
            'PATTERN up FOLLOWED BY down WITHIN 20s THEN R')
    ticks = [quote("A/B", 100 + (i % 7) * (1 if i % 3 else -1), T0 + i * 700) for i in range(60)]
    whole = RuleEngine()
    whole.apply("p", rule)
    whole.apply("c", 'IF volatility("A/B", 3s) > 0.01 THEN V')
    expected = feed(whole, ticks)
    first = RuleEngine()
    first.apply("p", rule)
    first.apply("c", 'IF volatility("A/B", 3s) > 0.01 THEN V')
    got = feed(first, ticks[:31])
    restored = RuleEngine.restore(pickle.loads(pickle.dumps(first.snapshot())))
    got += feed(restored, ticks[31:])
    assert got == expected and expected
    assert restored.stats() == whole.stats() | {k: {**v, "time_ns": restored.stats()[k]["time_ns"]}
                                                for k, v in whole.stats().items()}


def test_symbols_of_names_every_symbol_a_rule_reads():
    assert symbols_of(parse(ARBITRAGE)) == {"EUR/USD", "USD/EUR"}
    assert symbols_of(parse('DEFINE a AS vwap("BTC/USDT@binance", 1m) > ask("ETH/BTC")\nPATTERN a THEN X')) == \
        {"BTC/USDT", "ETH/BTC"}


def test_read_ticks_names_bad_lines_and_keeps_the_rest():
    lines = [json.dumps(quote("A/B", 1.0, T0).to_json_dict()), "not json", "",
             json.dumps({"venue": "fx", "symbol": "A/B", "bid": 2, "ask": 1, "ts": T0})]
    ticks, problems = read_ticks(lines)
    assert len(ticks) == 1
    assert [p["line"] for p in problems] == [2, 4] and "crossed" in problems[1]["error"]
