"""Rules aimed at a whole market: PARTITION BY, per-event conditions, trades as events, UNTIL, windows over
expressions."""
from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.cep import templates
from core.cep.engine import COMPACT_MIN, RuleEngine
from core.cep.rules import parse, to_text
from core.cep.rules.tree import bind
from core.contracts.tick import Tick
from core.contracts.trade import Trade

T0 = 1_700_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ETH/BTC", "EUR/USD"]
VENUES = ["binance", "kraken"]
PARTITIONED = [
    templates.price_spike(pct=0.4, window="2s"),
    templates.breakout(window="5s", zscore=1.5),
    "PARTITION BY symbol\nIF spread_bps() > 12.0 THEN WIDE",
    templates.arbitrage(bps=5.0),  # reads the key's symbol on two venues
    templates.trend_reversal(up_pct=0.3, down_pct=0.3, window="2s", within="10s"),
    templates.volume_surge(ratio=1.5, short="1s", long="10s"),
    "PARTITION BY symbol\nDEFINE up AS event.price > first(up.price) OR count(up) == 0\n"
    "PATTERN up{3} CONSECUTIVE WITHIN 3s THEN THREE_UP",
]


def market(seed: int, n: int, symbols=SYMBOLS, trades: bool = True) -> list[Tick | Trade]:
    """A random walk per symbol, quotes on two venues with random spreads, and trades now and then."""
    rng = random.Random(seed)
    prices = {symbol: rng.uniform(10, 1000) for symbol in symbols}
    events: list[Tick | Trade] = []
    ts = T0
    for _ in range(n):
        ts += rng.randint(0, 150)
        symbol = rng.choice(symbols)
        prices[symbol] *= 1 + rng.gauss(0, 0.003)
        price, venue = prices[symbol], rng.choice(VENUES)
        if trades and rng.random() < 0.25:
            events.append(Trade(venue, symbol, price, rng.expovariate(1.0) * (8 if rng.random() < 0.05 else 1),
                                None, ts))
        else:
            half = price * rng.uniform(0.00001, 0.001)
            events.append(Tick(venue, symbol, price - half, price + half, None, None, ts))
    return events


def run(engine: RuleEngine, events) -> list[dict]:
    out = []
    for event in events:
        out += (engine.on_tick if isinstance(event, Tick) else engine.on_trade)(event, now_ms=0)
    return out + engine.finish()


def essence(signal: dict, key: str) -> tuple:
    return key, signal["name"], signal["status"], signal["event_time"], signal["updated_at"], signal["closed_at"]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(PARTITIONED), st.integers(0, 10**6), st.lists(st.sampled_from(SYMBOLS), min_size=1,
                                                                      max_size=5, unique=True))
def test_a_partitioned_rule_gives_exactly_the_signals_of_one_rule_per_symbol(text, seed, symbols):
    rule = parse(text)
    events = market(seed, 1_500, symbols)
    keyed = RuleEngine()
    keyed.apply("r", rule)
    got = sorted(essence(s, s["key"]) for s in run(keyed, events))
    apart = RuleEngine()
    for symbol in symbols:
        apart.apply(symbol, bind(rule, symbol, None))
    expected = sorted(essence(s, s["rule_id"]) for s in run(apart, events))
    assert got == expected
    assert keyed.stats()["r"]["keys"] == len({e.symbol for e in events})


def wide(covers: str = "", bps: float = 5) -> str:
    """A partitioned rule by symbol: any venue's spread over `bps`."""
    return f"PARTITION BY symbol{' FOR ' + covers if covers else ''}\nIF spread_bps() > {bps} THEN WIDE"


def test_covers_choose_the_symbols_and_venues_a_rule_runs_for():
    engine = RuleEngine()
    engine.apply("usdt", wide('"*/USDT"'))
    engine.apply("btc", wide('"BTC/*"'))
    engine.apply("kraken", wide('"@kraken", "EUR/USD@binance"'))
    quotes = [Tick(venue, symbol, 99.0, 101.0, None, None, T0 + i)
            for i, (venue, symbol) in enumerate([("binance", "BTC/USDT"), ("binance", "ETH/BTC"), ("kraken", "EUR/USD"),
                                                 ("binance", "EUR/USD"), ("binance", "SOL/USDT")])]
    fired = {(s["rule_id"], s["key"]) for s in run(engine, quotes) if s["status"] == "open"}
    assert fired == {("usdt", "BTC/USDT"), ("usdt", "SOL/USDT"), ("btc", "BTC/USDT"),
                     ("kraken", "EUR/USD")}


def test_partition_by_venue_keeps_each_venue_apart():
    engine = RuleEngine()
    engine.apply("spike", "PARTITION BY symbol, venue\nIF abs(change_pct(10s)) > 1 THEN SPIKE")
    ticks = [Tick("binance", "BTC/USDT", 100, 100, None, None, T0),
             Tick("kraken", "BTC/USDT", 103, 103, None, None, T0 + 1),
             Tick("binance", "BTC/USDT", 100.5, 100.5, None, None, T0 + 2),  # +0.5 % on binance: nothing
             Tick("kraken", "BTC/USDT", 105, 105, None, None, T0 + 3)]  # +1.9 % on kraken
    opened = [s for s in run(engine, ticks) if s["status"] == "open"]
    assert [(s["key"], s["event_time"]) for s in opened] == [("BTC/USDT@kraken", T0 + 3)]
    # by symbol alone, binance's 100 and kraken's 103 are one series: +3 % at once
    engine = RuleEngine()
    engine.apply("spike", "PARTITION BY symbol\nIF abs(change_pct(10s)) > 1 THEN SPIKE")
    assert [s["event_time"] for s in run(engine, ticks) if s["status"] == "open"][0] == T0 + 1


def test_a_stage_tests_the_event_itself_as_flink_where_does():
    """DEFINE a AS price("A/USD") > 0 stays true on every later tick of any symbol; event.symbol does not."""
    ticks = [Tick("v", "A/USD", 1, 1, None, None, T0), Tick("v", "C/USD", 1, 1, None, None, T0 + 1),
             Tick("v", "B/USD", 1, 1, None, None, T0 + 2)]
    by_quotes = RuleEngine()
    by_quotes.apply("q", 'DEFINE a AS price("A/USD") > 0\nDEFINE b AS price("B/USD") > 0\nPATTERN a NEXT b THEN AB')
    assert len(run(by_quotes, ticks)) == 1  # C/USD is not read, B/USD's tick follows A/USD's quote "next"
    by_event = RuleEngine()
    by_event.apply("e", 'DEFINE a AS event.symbol == "A/USD"\nDEFINE b AS event.symbol == "B/USD"\n'
                        'PATTERN a NEXT b THEN AB')
    assert run(by_event, ticks) == []  # the C/USD tick came between: NEXT is broken
    by_event = RuleEngine()
    by_event.apply("e", 'DEFINE a AS event.symbol == "A/USD"\nDEFINE b AS event.symbol == "B/USD"\n'
                        'PATTERN a NEXT b THEN AB')
    assert len(run(by_event, [ticks[0], ticks[2]])) == 1


def test_trades_are_events_that_rules_test_and_that_fill_volume_windows():
    engine = RuleEngine()
    engine.apply("surge", templates.volume_surge("*/USDT", ratio=3.0, short="1s", long="10s"))
    engine.apply("whale", 'IF event.kind == "trade" AND event.size * event.price > 1000000 THEN WHALE')
    quiet = [Trade("binance", symbol, 100.0, 1.0, "buy", T0 + i * 1_000) for i in range(10)
             for symbol in ("BTC/USDT", "ETH/USDT")]
    burst = [Trade("binance", "ETH/USDT", 100.0, 20.0, "sell", T0 + 10_000 + i) for i in range(3)]
    whale = [Trade("kraken", "BTC/USD", 50_000.0, 30.0, "buy", T0 + 10_500), Tick("kraken", "BTC/USD", 1, 2, 1e6, 1e6,
                                                                                 T0 + 10_600)]
    signals = run(engine, quiet + burst + whale)
    # (while the long window fills, any trade is a surge: look after it)
    opened = [(s["rule_id"], s.get("key")) for s in signals if s["status"] == "open" and s["event_time"] >= T0 + 10_000]
    assert opened == [("surge", "ETH/USDT"), ("whale", None)]
    closed = [s for s in signals if s["rule_id"] == "whale" and s["status"] == "closed"]
    assert [s["closed_at"] for s in closed] == [T0 + 10_600]  # the next event is a quote


def test_stat_arb_opens_at_the_entry_z_score_and_closes_at_the_exit():
    rule = templates.stat_arb("ETH/USDT", "BTC/USDT", window="1m", entry=2.0, exit=0.5)
    engine = RuleEngine()
    engine.apply("pairs", rule)
    rng = random.Random(3)
    ticks, ts = [], T0
    ratios = [0.05 + rng.gauss(0, 0.0001) for _ in range(40)] + [0.0512] + [0.0505, 0.0503] + [0.05] * 3
    for ratio in ratios:
        ts += 500
        ticks += [Tick("binance", "BTC/USDT", 40_000, 40_000, None, None, ts),
                  Tick("binance", "ETH/USDT", 40_000 * ratio, 40_000 * ratio, None, None, ts + 1)]
    opened_at = T0 + 41 * 500 + 1
    signals = [s for s in run(engine, ticks) if s["updated_at"] >= opened_at]  # after the window's warm-up
    assert [s["status"] for s in signals] == ["open", "closed"]
    assert signals[0]["event_time"] == opened_at  # the jump to 0.0512
    # 0.0505 and 0.0503 are still more than 0.5 standard deviations out: the signal stays open through them
    assert signals[1]["closed_at"] > opened_at + 2 * 500
    assert signals[0]["id"] == signals[1]["id"]


def test_a_restored_engine_continues_every_key_exactly():
    rule = templates.trend_reversal(up_pct=0.3, down_pct=0.3, window="2s", within="10s")
    events = market(11, 4_000)
    whole = RuleEngine()
    whole.apply("r", rule)
    whole.apply("spike", templates.price_spike(pct=0.4, window="2s"))
    expected = run(whole, events)
    first = RuleEngine()
    first.apply("r", rule)
    first.apply("spike", templates.price_spike(pct=0.4, window="2s"))
    got = [s for event in events[:2_000] for s in (first.on_tick if isinstance(event, Tick) else first.on_trade)(
        event, now_ms=0)]
    second = RuleEngine.restore(pickle.loads(pickle.dumps(first.snapshot())))
    got += run(second, events[2_000:])
    assert [s["id"] for s in got] == [s["id"] for s in expected] and expected
    assert second.stats()["spike"]["keys"] == len(SYMBOLS)


def test_removing_a_partitioned_rule_closes_the_signal_of_every_key():
    engine = RuleEngine()
    engine.apply("wide", wide())
    opened = run(engine, [Tick("v", symbol, 99, 101, None, None, T0) for symbol in SYMBOLS[:3]])
    closed = engine.apply("wide", None)
    assert sorted(s["key"] for s in closed) == sorted(SYMBOLS[:3]) and all(s["status"] == "closed" for s in closed)
    assert {s["id"] for s in closed} == {s["id"] for s in opened}


def test_templates_switch_on_for_a_whole_market_in_one_line():
    assert to_text(parse(templates.price_spike("*/USDT"))) == (
        'PARTITION BY symbol FOR "*/USDT"\nIF abs(change_pct(10s)) > 1.0\nTHEN PRICE_SPIKE')


@pytest.mark.parametrize("log_min", [COMPACT_MIN, 700])  # the log replayed whole; the windows written whole too
def test_the_changes_of_each_batch_add_up_to_the_whole_state(log_min):
    """What the job writes back after each batch (take_changes), folded like keyed state, restores an engine
    that goes on exactly as the one that never stopped."""
    events = market(5, 6_000)
    rules = {"spike": templates.price_spike(pct=0.4, window="2s"),
             "turn": templates.trend_reversal("*/USDT", up_pct=0.3, down_pct=0.3, window="2s", within="10s"),
             "named": 'IF spread_bps("BTC/USDT") > 5 THEN WIDE',
             "pairs": templates.stat_arb("ETH/USDT", "BTC/USDT", window="20s", entry=1.5, exit=0.3),
             "surge": templates.volume_surge("*/USDT", ratio=1.5, short="1s", long="10s")}  # trades in the log
    whole = RuleEngine()
    for rule_id, text in rules.items():
        whole.apply(rule_id, text)
    expected = run(whole, events)

    engine = RuleEngine(log_min=log_min)
    state: dict = {}
    got = []
    compactions = 0
    for rule_id, text in rules.items():
        engine.apply(rule_id, text)
    for start in range(0, 3_000, 250):  # batches
        if start == 1_000:
            engine.apply("gone", wide(bps=1))
        if start == 1_500:
            engine.apply("gone", None)  # (what it closes is not in `whole`'s signals)
        for event in events[start:start + 250]:
            got += [s for s in (engine.on_tick if isinstance(event, Tick) else engine.on_trade)(event, now_ms=0)
                    if s["rule_id"] != "gone"]
        changed, removed = engine.take_changes()
        compactions += any(name.startswith("log") for name in removed)
        state.update(changed)
        for name in removed:
            del state[name]
    assert (compactions == 0) == (log_min == COMPACT_MIN) and compactions != 1
    assert not any("gone" in name for name in state)
    restored = RuleEngine.restore(pickle.loads(pickle.dumps(state)))
    assert set(restored.snapshot()) | set(restored.log_entries) == set(state)  # nothing left that should have gone
    midway = RuleEngine()
    for rule_id, text in rules.items():
        midway.apply(rule_id, text)
    for event in events[:3_000]:
        (midway.on_tick if isinstance(event, Tick) else midway.on_trade)(event, now_ms=0)
    windows = restored.market.windows()
    assert {key: windows[key].events for key in windows} == {
        key: window.events for key, window in midway.market.windows().items()}  # every event, its size too
    got += run(restored, events[3_000:])
    assert [s["id"] for s in got] == [s["id"] for s in expected] and expected


def test_a_pattern_key_whose_events_start_nothing_is_not_written_again():
    """Such an event changes only the key's event count, which orders the events of live runs and nothing else:
    a batch of them writes nothing for the key (a market of 1,000 keys wrote a unit per key touched, each batch)."""
    engine = RuleEngine()
    engine.apply("turn", templates.trend_reversal("*/USDT", up_pct=5, down_pct=5, window="2s", within="10s"))

    def batch(prices: list[float], at: int) -> list[str]:
        for i, price in enumerate(prices):
            engine.on_tick(Tick("v", "BTC/USDT", price, price + 0.1, None, None, T0 + at + i), now_ms=0)
        return [name for name in engine.take_changes()[0] if name.startswith("unit")]

    assert batch([100.0] * 5, 0) == ["unit\x1fturn\x1fBTC/USDT"]  # the key's first event makes it
    assert batch([100.0] * 5, 5) == []
    assert batch([100.0, 110.0], 10) == ["unit\x1fturn\x1fBTC/USDT"]  # a rise starts a partial match
    assert batch([110.0] * 3, 12) != []  # a live partial match: the key changes with every event


def test_an_engine_says_whether_it_reads_trades_before_any_key_has_come():
    """The job's merge waits for trades only while a rule reads them: a partitioned rule has no window
    until its key's first event, so the rules themselves say."""
    engine = RuleEngine()
    engine.apply("spike", templates.price_spike("*/USDT"))
    assert not engine.reads_trades()
    engine.apply("surge", templates.volume_surge("*/USDT"))
    assert engine.reads_trades()
    engine.apply("surge", None)
    engine.apply("whale", 'IF event.kind == "trade" AND event.size > 100 THEN WHALE')
    assert engine.reads_trades()


def test_an_engine_that_never_had_a_rule_restores_from_its_changes():
    """The job writes an engine's changes after every batch, rules or none: a restore must read them back
    (it raised KeyError: 'rules', and the job failed for good; tests/faults/test_recovery.py caught it)."""
    engine = RuleEngine()
    engine.on_tick(Tick("v", "BTC/USDT", 1, 2, None, None, T0), now_ms=0)
    changed, removed = engine.take_changes()
    restored = RuleEngine.restore(changed)
    assert restored.has_rules is False and removed == []
    restored.apply("wide", wide(bps=1))
    assert [s["key"] for s in restored.on_tick(Tick("v", "BTC/USDT", 1, 2, None, None, T0 + 1), now_ms=0)] == [
        "BTC/USDT"]


def test_a_rule_keyed_by_symbol_reads_its_key_on_a_named_venue():
    engine = RuleEngine()
    engine.apply("arb", templates.arbitrage(bps=10))  # kraken's ask under binance's bid, for every symbol
    ticks = [Tick("binance", "BTC/USDT", 100.00, 100.01, None, None, T0),
             Tick("kraken", "BTC/USDT", 99.80, 99.85, None, None, T0 + 1),  # 16 bps under binance's bid
             Tick("kraken", "ETH/USDT", 10.0, 10.01, None, None, T0 + 2),  # no binance quote of ETH: unknown
             Tick("kraken", "BTC/USDT", 99.99, 100.0, None, None, T0 + 3)]  # back
    signals = run(engine, ticks)
    assert [(s["key"], s["status"], s["event_time"]) for s in signals] == [
        ("BTC/USDT", "open", T0 + 1), ("BTC/USDT", "closed", T0 + 1)]


def test_the_spread_widening_template_keeps_each_venue_apart():
    """One venue's wide quote is one signal while it lasts, however the other venues quote meanwhile."""
    engine = RuleEngine()
    engine.apply("wide", templates.spread_widening(bps=20))
    ticks = [Tick("kraken", "BTC/USDT", 99.0, 101.0, None, None, T0),  # 200 bps
             Tick("binance", "BTC/USDT", 99.99, 100.0, None, None, T0 + 1),
             Tick("kraken", "BTC/USDT", 99.5, 100.5, None, None, T0 + 2),
             Tick("binance", "BTC/USDT", 99.99, 100.0, None, None, T0 + 3),
             Tick("kraken", "BTC/USDT", 99.99, 100.0, None, None, T0 + 4)]
    assert [(s["key"], s["status"], s.get("closed_at")) for s in run(engine, ticks)] == [
        ("BTC/USDT@kraken", "open", None), ("BTC/USDT@kraken", "closed", T0 + 4)]


NAMED = ['IF price("BTC/USDT") - price("ETH/USDT") > 100 THEN GAP', 'IF volume("ETH/USDT", 5s) > 20 THEN HEAVY',
         templates.stat_arb("ETH/USDT", "BTC/USDT", window="20s", entry=1.5, exit=0.3),
         'IF event.kind == "trade" AND event.size > 3 THEN BIG']


def test_a_restore_reads_the_quotes_written_a_symbol_at_a_time_and_deletes_those_entries():
    """Engines wrote every venue's latest quote of a symbol in one entry; now each venue's is one. The newest quote
    wins whatever the order of the entries, and the old entry is deleted with the next changes."""
    engine = RuleEngine()
    engine.apply("wide", wide(bps=1))
    newer = Tick("kraken", "BTC/USDT", 99, 101, None, None, T0 + 5)
    older = [Tick("binance", "BTC/USDT", 98, 100, None, None, T0),
             Tick("kraken", "BTC/USDT", 97, 99, None, None, T0 + 1)]
    engine.on_ordered(newer, 0)
    state = engine.snapshot()
    state = {"quotes\x1fBTC/USDT": [tuple(t) for t in older], **state}  # as written before, and newer ones since
    restored = RuleEngine.restore(pickle.loads(pickle.dumps(state)))
    assert restored.market.quote("BTC/USDT", "kraken") == newer == restored.market.quote("BTC/USDT", None)
    assert restored.market.quote("BTC/USDT", "binance") == older[0]
    assert restored.take_changes()[1] == ["quotes\x1fBTC/USDT"]


def test_a_state_written_before_the_log_restores_and_is_rewritten_whole():
    """Engines wrote each market window in segments of event time; a restore reads those, goes on exactly as
    the engine that wrote them, and its next changes hold the windows whole and delete the segments."""
    from core.cep.engine import _SEP
    from core.cep.windows import segment_ms

    events = market(5, 4_000)
    rules = {"spike": templates.price_spike(pct=0.4, window="2s"), "named": 'IF spread_bps("BTC/USDT") > 5 THEN WIDE'}
    engine = RuleEngine()
    for rule_id, text in rules.items():
        engine.apply(rule_id, text)
    got = [s for e in events[:2_000] for s in (engine.on_tick if isinstance(e, Tick) else engine.on_trade)(e, now_ms=0)]
    state = engine.snapshot()
    old = {name: value for name, value in state.items() if not name.startswith("series")}
    for name, (_, whole) in ((n, v) for n, v in state.items() if n.startswith("series")):
        for segment, events_of in whole.items():
            old[f"window{name[len('series'):]}{_SEP}{segment}"] = events_of
    old["meta"] = {key: value for key, value in state["meta"].items() if key != "log"}
    assert any(name.startswith("window") for name in old) and segment_ms(2_000) == 250
    restored = RuleEngine.restore(pickle.loads(pickle.dumps(old)))
    changed, removed = restored.take_changes()
    assert {n for n in old if n.startswith("window")} == set(removed)
    assert {n for n in changed if n.startswith("series")} == {n for n in state if n.startswith("series")}

    whole = RuleEngine()
    for rule_id, text in rules.items():
        whole.apply(rule_id, text)
    assert got + run(restored, events[2_000:]) == run(whole, events) and got


def test_an_engine_whose_changes_nobody_takes_keeps_no_log():
    """A backtest or a rule trial runs an engine over millions of events and never writes its state: logging them
    for the state would hold every one."""
    engine = RuleEngine()
    engine.apply("spike", templates.price_spike(pct=0.4, window="2s"))
    events = market(3, 2_010, trades=False)
    for tick in events[:2_000]:
        engine.on_tick(tick, now_ms=0)
    assert not engine.market.log.symbols and engine.market.logged == 0
    engine.take_changes()  # now a host writes the state: from here on the events are logged
    for tick in events[2_000:]:
        engine.on_tick(tick, now_ms=0)
    assert engine.market.logged == 10
