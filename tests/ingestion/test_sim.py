"""The simulated markets: reproducible, internally consistent, and arbitrage-free except where planted."""
from __future__ import annotations

import itertools
import math
import threading

import orjson
import pytest

from clients.kafka import EMBEDDED
from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from core.contracts.tick import tick_from_dict
from core.settings import ArbitrageSettings
from ingestion.sim import run
from ingestion.sim.fx import fx_market, inverse
from ingestion.sim.market import SimulatedMarket
from ingestion.sim.merged import MergedMarkets, crypto_and_fx

START = 1_700_000_000_000
FEES = ArbitrageSettings()


def take(market: SimulatedMarket, n: int, start: int = START) -> list:
    return list(itertools.islice(market.ticks(start), n))


def mid(tick) -> float:
    return (tick.bid + tick.ask) / 2.0


def test_same_seed_same_ticks_and_other_seed_other_ticks():
    first = take(SimulatedMarket(seed=7), 3_000)
    assert first == take(SimulatedMarket(seed=7), 3_000)
    assert first != take(SimulatedMarket(seed=8), 3_000)
    assert [t[:6] for t in take(SimulatedMarket(seed=7), 3_000, START + 12_345)] == [t[:6] for t in first]


def test_ticks_are_valid_and_in_event_time_order():
    ticks = take(SimulatedMarket(seed=1, rate=200), 20_000)
    for tick in ticks:
        assert tick_from_dict(orjson.loads(orjson.dumps(tick.to_json_dict()))) == tick
        assert tick.bid < tick.ask and tick.bid_size > 0 and tick.ask_size > 0
    assert all(a.ts <= b.ts for a, b in zip(ticks, ticks[1:]))
    span_s = (ticks[-1].ts - ticks[0].ts) / 1000
    assert 20_000 / span_s == pytest.approx(200, rel=0.1)
    assert {t.venue for t in ticks} == {"binance", "coinbase", "kraken"}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="'DOGE'"):
        SimulatedMarket(symbols=["DOGE/USDT"])
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        SimulatedMarket(symbols=["btc-usdt"])
    with pytest.raises(ValueError, match="overlap"):
        SimulatedMarket(opportunity_every_s=2, opportunity_duration_s=3)
    with pytest.raises(ValueError, match="triangular"):
        SimulatedMarket(symbols=["BTC/USDT", "ETH/USDT"], kinds=["triangular"])


def latest_quotes(ticks):
    """Each tick with the book of latest quotes by (venue, symbol) after it."""
    book = {}
    for tick in ticks:
        book[(tick.venue, tick.symbol)] = tick
        yield tick, book


def in_plant(market, ts: int, slack_ms: int = 2_500) -> bool:
    return any(p.start_ms <= ts <= p.end_ms + slack_ms for p in market.planted)


def test_cross_rates_agree_within_spreads_outside_plants():
    market = SimulatedMarket(seed=3, rate=300)
    worst = 0.0
    for tick, book in latest_quotes(take(market, 30_000)):
        legs = [book.get((tick.venue, s)) for s in ("ETH/BTC", "ETH/USDT", "BTC/USDT")]
        if all(legs) and not in_plant(market, tick.ts):
            implied = mid(legs[1]) / mid(legs[2])
            worst = max(worst, abs(math.log(mid(legs[0]) / implied)) * 10_000)
    assert 0 < worst < 15  # bps: spreads and the few ms between the legs' quotes, far below any fee


def cycle_profit_bps(book, venue: str, symbols: list[str]) -> float:
    """Best net profit of converting around the cycle of `symbols` on `venue`, either way round."""
    quotes = [book.get((venue, s)) for s in symbols]
    if not all(quotes):
        return -math.inf
    best = -math.inf
    for start in {a for q in quotes for a in q.symbol.split("/")}:
        for order in itertools.permutations(quotes):
            amount, holding = 1.0, start
            for q in order:
                base, quote_asset = q.symbol.split("/")
                if holding == quote_asset:
                    amount, holding = amount / q.ask, base
                elif holding == base:
                    amount, holding = amount * q.bid, quote_asset
                else:
                    break
                amount *= 1.0 - FEES.fee(venue)
            else:
                if holding == start:
                    best = max(best, (amount - 1.0) * 10_000)
    return best


@pytest.mark.parametrize("widenings", [False, True])
def test_planted_cross_exchange_opportunities_are_found_and_nothing_else(widenings):
    market = SimulatedMarket(seed=11, rate=100, opportunity_every_s=10, opportunity_duration_s=2,
                             kinds=["cross_exchange"], spread_widenings=widenings)
    detector, states, opened = CrossExchangeDetector(FEES), {}, []
    for tick in take(market, 30_000):
        for signal in detector.on_tick(states.setdefault(tick.symbol, SymbolState()), tick, 0):
            if signal["status"] == "open" and signal["updated_at"] == signal["event_time"]:
                opened.append(signal)
    plants = [p for p in market.planted if p.end_ms < START + 290_000]
    assert len(plants) >= 25
    for plant in plants:
        found = [s for s in opened if plant.start_ms <= s["event_time"] <= plant.end_ms
                 and {(leg["venue"], leg["symbol"]) for leg in s["legs"]} == set(plant.legs)]
        assert found, f"planted {plant} was not detected"
        assert found[0]["profit_bps"] == pytest.approx(plant.profit_bps, abs=6)
    stray = [s for s in opened if not in_plant(market, s["event_time"])]
    assert not stray


def spread_bps(tick) -> float:
    return (tick.ask - tick.bid) / mid(tick) * 10_000


def test_spread_widenings_widen_one_quote_at_a_time_halfway_between_plants():
    market = SimulatedMarket(seed=2, rate=200, spread_widenings=True)
    ticks = list(itertools.takewhile(lambda t: t.ts < START + 200_000, market.ticks(START)))
    assert [w.start_ms - START for w in market.widenings] == [10_000 + 20_000 * i for i in range(10)]
    assert all(w.end_ms - w.start_ms == 3_000 and 4 <= w.factor <= 8 for w in market.widenings)
    usual: dict = {}
    for tick in ticks:
        if not any(w.start_ms <= tick.ts < w.end_ms + 200 for w in market.widenings):
            usual.setdefault((tick.venue, tick.symbol), []).append(spread_bps(tick))
    for widening in market.widenings:
        key = (widening.venue, widening.symbol)
        inside = [spread_bps(t) for t in ticks if (t.venue, t.symbol) == key and widening.start_ms + 200 <= t.ts
                  < widening.end_ms]
        assert inside and min(inside) > 2.5 * max(usual[key]), widening  # 4x at least, jitter 1.5x at most
    calm = list(itertools.takewhile(lambda t: t.ts < START + 200_000, SimulatedMarket(seed=2, rate=200).ticks(START)))
    assert [(t.venue, t.symbol, t.ts, t.bid_size) for t in ticks] == [(t.venue, t.symbol, t.ts, t.bid_size)
                                                                      for t in calm]  # the same market but spreads
    with pytest.raises(ValueError, match="at most half of opportunity_every_s"):
        SimulatedMarket(spread_widenings=True, opportunity_every_s=4, opportunity_duration_s=3)


def test_planted_triangles_pay_only_while_planted():
    market = SimulatedMarket(seed=5, rate=100, opportunity_every_s=10, opportunity_duration_s=2, kinds=["triangular"])
    triangles = {(legs[0][0], tuple(sorted(s for _, s in legs))) for legs in market.opportunities["triangular"]}
    paying = set()
    for tick, book in latest_quotes(take(market, 20_000)):
        for venue, symbols in triangles:
            if tick.venue == venue and tick.symbol in symbols and cycle_profit_bps(book, venue, list(symbols)) > 0:
                assert in_plant(market, tick.ts), f"{venue} {symbols} pays at {tick.ts} with nothing planted"
                paying.update(p for p in market.planted if p.start_ms <= tick.ts <= p.end_ms + 500
                              and p.venue == venue and p.symbol in symbols)
    assert len(market.planted) >= 15 and set(market.planted[:-1]) <= paying


def test_fx_quotes_ten_pairs_and_their_inverses_consistently():
    market = fx_market(seed=2, rate=200, opportunity_every_s=0)
    ticks = take(market, 20_000)
    dealer = {t.symbol for t in ticks if t.venue == "fx_dealer"}
    assert len({t.symbol for t in ticks if t.venue == "fx_ecn"}) == 10 and len(dealer) == 20
    assert "USD/EUR" in dealer and "JPY/USD" in dealer
    worst = 0.0
    for tick, book in latest_quotes(ticks):
        ecn = {s: book.get(("fx_ecn", s)) for s in ("EUR/JPY", "EUR/USD", "USD/JPY")}
        if all(ecn.values()):
            implied = mid(ecn["EUR/USD"]) * mid(ecn["USD/JPY"])
            worst = max(worst, abs(math.log(mid(ecn["EUR/JPY"]) / implied)) * 10_000)
        pair = book.get(("fx_dealer", tick.symbol)), book.get(("fx_dealer", inverse(tick.symbol)))
        if tick.venue == "fx_dealer" and all(pair):
            assert mid(pair[0]) * mid(pair[1]) == pytest.approx(1.0, abs=1e-3)
            assert pair[0].bid * pair[1].bid < 1.0  # no free round trip A->B->A
    assert 0 < worst < 6


def test_fx_direct_dislocation_pays_both_ways_round():
    market = fx_market(seed=4, rate=200, opportunity_every_s=5, opportunity_duration_s=1, kinds=["direct"])
    paid = set()
    for tick, book in latest_quotes(take(market, 20_000)):
        if tick.venue == "fx_dealer" and cycle_profit_bps(book, "fx_dealer", [tick.symbol, inverse(tick.symbol)]) > 0:
            plant = next(p for p in market.planted if p.start_ms <= tick.ts <= p.end_ms + 500)
            assert {plant.symbol, inverse(plant.symbol)} == {tick.symbol, inverse(tick.symbol)}
            paid.add(plant)
    assert len(market.planted) >= 15 and set(market.planted[:-1]) <= paid


def test_the_default_source_is_both_markets_each_as_it_is_alone_merged_in_event_time():
    merged = crypto_and_fx(seed=3, rate=200)
    ticks = [t for t in itertools.takewhile(lambda t: t.ts < START + 180_000, merged.ticks(START))]
    assert all(a.ts <= b.ts for a, b in zip(ticks, ticks[1:]))
    crypto = [t for t in ticks if not t.venue.startswith("fx_")]
    fx = [t for t in ticks if t.venue.startswith("fx_")]
    assert crypto == take(SimulatedMarket(seed=3, rate=100, spread_widenings=True), len(crypto))
    assert fx == take(fx_market(seed=3, rate=100, spread_widenings=True), len(fx))
    assert len(merged.widenings) == 18 and {w.venue for w in merged.widenings} & {"fx_ecn", "fx_dealer"}
    assert len(crypto) == pytest.approx(len(fx), rel=0.1)
    kinds = {plant.kind for plant in merged.planted}
    assert "direct" in kinds and kinds <= {"cross_exchange", "triangular", "direct"}
    assert [p.start_ms for p in merged.planted] == sorted(p.start_ms for p in merged.planted)
    with pytest.raises(ValueError, match="at least one market"):
        MergedMarkets([])


def test_runner_streams_the_seeded_market_to_kafka_paced_to_the_clock(kafka, topic_prefix, make_topics):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = f"{topic_prefix}ticks"
    make_topics({topic: 1})
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    sent = run(kafka, EMBEDDED, rate=200, seed=9, stop_event=stop, topic=topic)
    assert 250 < sent < 550
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    received = []
    try:
        while len(received) < sent:
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(received)} of {sent} ticks arrived"
            received.append((tick_from_dict(orjson.loads(msg.value())), msg.timestamp()[1]))
    finally:
        consumer.close()
    expected = take(SimulatedMarket(seed=9, rate=200), sent)
    assert [t[:6] for t, _ in received] == [t[:6] for t in expected]
    assert all(tick.ts <= produced_ms + 5 for tick, produced_ms in received)


def test_books_ride_along_without_changing_the_quotes():
    plain = take(SimulatedMarket(seed=5), 3000)
    booked = take(SimulatedMarket(seed=5, book_levels=4), 3000)
    assert [tick[:7] for tick in booked] == [tick[:7] for tick in plain]
    for tick in booked:
        assert len(tick.asks) == 4 and 1 <= len(tick.bids) <= 4
        assert tick_from_dict(orjson.loads(orjson.dumps(tick.to_json_dict()))) == tick  # the contract's checks
    assert take(SimulatedMarket(seed=5, book_levels=4), 3000) == booked
    with pytest.raises(ValueError, match="book_levels"):
        SimulatedMarket(book_levels=-1)
