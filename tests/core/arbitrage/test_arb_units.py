"""Targeted cases: fees, staleness, minimum sizes, the signal lifecycle, ids, depth and the keyed state."""
from __future__ import annotations

import pickle

import pytest

from core.arbitrage.cross_exchange import CrossExchangeDetector
from core.arbitrage.depth import vwap_size
from core.arbitrage.direct import DirectDetector
from core.arbitrage.triangular import TriangularDetector
from core.contracts.signal import route_of, signal_id
from core.contracts.tick import Tick, with_levels
from core.settings import ArbitrageSettings, Settings

T = 1_700_000_000_000


def config(fee_bps: float = 10.0, **fields) -> ArbitrageSettings:
    return ArbitrageSettings(taker_fees_bps={}, default_taker_fee_bps=fee_bps, **fields)


def feed(detector, ticks: list[Tick], states: dict | None = None) -> list[dict]:
    states = {} if states is None else states
    out = []
    for tick in ticks:
        out += detector.on_tick(states.setdefault(detector.key_for(tick), detector.State()), tick, 42)
    return out


def cross_pair(ts_b: int = T, size: float | None = 1.0, sell_bid: float = 100.5):
    """Buying X at 100 on a and selling at 100.5 on b makes 50 bps before fees."""
    return [Tick("a", "X/Y", 99.9, 100.0, size, size, T),
            Tick("b", "X/Y", sell_bid, sell_bid + 0.1, size, size, ts_b)]


def direct_pair(ts_inverse: int = T, size: float | None = 1.0):
    """EUR/USD bid 1.10 and USD/EUR bid 0.915: selling both returns 1.0065 EUR per EUR before fees."""
    return [Tick("a", "EUR/USD", 1.10, 1.1001, size, size, T),
            Tick("b", "USD/EUR", 0.915, 0.9151, size, size, ts_inverse)]


def triangle(ts_last: int = T, size: float | None = 1.0):
    """BTC -> USDT -> ETH -> BTC returns 100 / 10.01 * 0.102 = 1.01898 BTC per BTC before fees."""
    return [Tick("v", "BTC/USDT", 100.0, 100.01, size, size, T),
            Tick("v", "ETH/USDT", 10.0, 10.01, size, size, T),
            Tick("v", "ETH/BTC", 0.102, 0.1021, size, size, ts_last)]


CASES = [(CrossExchangeDetector, cross_pair, 50.0, 2),
         (DirectDetector, direct_pair, 65.0, 2),
         (TriangularDetector, triangle, 189.8, 3)]
"""(detector, market, gross profit in bps, legs per route)"""


@pytest.mark.parametrize("detector, market, gross, legs", CASES)
def test_an_opportunity_opens_when_fees_leave_profit(detector, market, gross, legs):
    assert [s["status"] for s in feed(detector(config(0.0)), market())] == ["open"]
    assert feed(detector(config(gross / legs - 3)), market())[0]["profit_bps"] > 0


@pytest.mark.parametrize("detector, market, gross, legs", CASES)
def test_fees_larger_than_the_spread_give_nothing(detector, market, gross, legs):
    assert feed(detector(config(gross / legs + 1)), market()) == []


@pytest.mark.parametrize("detector, market, gross, legs", CASES)
def test_a_stale_leg_gives_nothing(detector, market, gross, legs):
    assert feed(detector(config(0.0, max_quote_age_ms=2_000)), market(T + 2_001)) == []
    assert len(feed(detector(config(0.0, max_quote_age_ms=2_000)), market(T + 2_000))) == 1


@pytest.mark.parametrize("detector, market, gross, legs", CASES)
def test_a_size_below_the_minimum_gives_nothing(detector, market, gross, legs):
    assert feed(detector(config(0.0, min_size=5.0)), market(size=1.0)) == []
    assert feed(detector(config(0.0, min_notional=10_000.0)), market(size=1.0)) == []
    assert feed(detector(config(0.0, min_size=5.0)), market(size=None))[0]["size"] is None  # unknown passes
    assert len(feed(detector(config(0.0, min_size=0.05)), market(size=1.0))) == 1


def test_cross_exchange_notional_is_the_buy_legs_quote_amount():
    # 2 X at ask 100 costs 200 Y
    assert feed(CrossExchangeDetector(config(0.0, min_notional=200.0)), cross_pair(size=2.0))[0]["size"] == 2.0
    assert feed(CrossExchangeDetector(config(0.0, min_notional=200.01)), cross_pair(size=2.0)) == []


def test_per_detection_settings_override_the_top_level():
    settings = config(0.0, min_profit_bps=1_000.0, triangular={"min_profit_bps": 1.0})
    assert feed(CrossExchangeDetector(settings), cross_pair()) == []
    assert len(feed(TriangularDetector(settings), triangle())) == 1


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASCEP_ARBITRAGE__DIRECT__MIN_NOTIONAL", "250")
    monkeypatch.setenv("ASCEP_ARBITRAGE__MAX_QUOTE_AGE_MS", "900")
    limits = Settings().arbitrage.thresholds("direct")
    assert (limits.min_notional, limits.max_quote_age_ms) == (250.0, 900)


def test_lifecycle_opens_updates_at_a_peak_and_closes():
    detector, states = CrossExchangeDetector(config(0.0)), {}
    opened, = feed(detector, cross_pair(sell_bid=100.5), states)
    peak, = feed(detector, [Tick("b", "X/Y", 100.8, 100.9, 1.0, 1.0, T + 10)], states)
    assert feed(detector, [Tick("b", "X/Y", 100.6, 100.9, 1.0, 1.0, T + 20)], states) == []  # below the peak
    closed, = feed(detector, [Tick("b", "X/Y", 99.95, 100.05, 1.0, 1.0, T + 30)], states)
    assert opened["id"] == peak["id"] == closed["id"]
    assert (opened["status"], peak["status"], closed["status"]) == ("open", "open", "closed")
    assert peak["profit_bps"] > opened["profit_bps"] and peak["updated_at"] == T + 10
    assert closed["closed_at"] == T + 30 and closed["event_time"] == T and closed["detected_at"] == 42
    reopened, = feed(detector, [Tick("b", "X/Y", 100.5, 100.6, 1.0, 1.0, T + 40)], states)
    assert reopened["id"] != opened["id"], "a new opportunity on the same route gets a new id"


def test_triangular_closes_a_cycle_whose_leg_went_stale_without_ticking():
    detector, states = TriangularDetector(config(0.0, max_quote_age_ms=1_000)), {}
    assert len(feed(detector, triangle(), states)) == 1
    closed, = feed(detector, [Tick("v", "SOL/USDT", 20.0, 20.01, 1.0, 1.0, T + 1_001)], states)
    assert closed["status"] == "closed" and closed["closed_at"] == T + 1_001


@pytest.mark.parametrize("detector, market, gross, legs", CASES)
def test_ids_are_deterministic_across_replays(detector, market, gross, legs):
    first, second = feed(detector(config(0.0)), market()), feed(detector(config(0.0)), market())
    assert first == second
    signal = first[0]
    assert signal["id"] == signal_id(signal["type"], route_of(signal["legs"]), signal["event_time"])


@pytest.mark.parametrize("detector, market, gross, legs", CASES)
def test_state_survives_pickling(detector, market, gross, legs):
    """Flink keeps the state between ticks by pickling it; a restored state must carry on the same."""
    ticks = market()
    states: dict = {}
    feed(detector(config(0.0)), ticks[:-1], states)
    restored = pickle.loads(pickle.dumps(states))
    assert feed(detector(config(0.0)), ticks[-1:], restored) == feed(detector(config(0.0)), ticks[-1:], states)


def test_keys():
    eur_usd, usd_eur = direct_pair()
    assert DirectDetector.key_for(eur_usd) == DirectDetector.key_for(usd_eur) == "EUR/USD"
    assert CrossExchangeDetector.key_for(eur_usd) == "EUR/USD"
    assert TriangularDetector.key_for(eur_usd) == "a"


def test_direct_checks_the_mirror_with_asks():
    """Buying USD at ask 0.905 and EUR at ask 1.09 returns 1 / (0.905 * 1.09) = 1.01374 EUR per EUR."""
    ticks = [Tick("a", "EUR/USD", 1.089, 1.09, 1.0, 1.0, T), Tick("a", "USD/EUR", 0.904, 0.905, 1.0, 1.0, T)]
    signal, = feed(DirectDetector(config(0.0)), ticks)
    assert [(leg["symbol"], leg["side"], leg["price"]) for leg in signal["legs"]] == [
        ("USD/EUR", "buy", 0.905), ("EUR/USD", "buy", 1.09)]
    assert signal["profit_bps"] == pytest.approx((1 / (0.905 * 1.09) - 1) * 10_000, abs=1e-6)


def test_depth_sizes_by_vwap_profit():
    buy = Tick("a", "X/Y", 99.9, 100.0, 1.0, 1.0, T)
    sell = Tick("b", "X/Y", 100.5, 100.6, 1.5, 1.0, T)
    asks, bids = ((100.0, 1.0), (100.2, 2.0)), ((100.5, 1.5), (99.9, 5.0))
    size = vwap_size(asks, 0.0, bids, 0.0, 10.0)
    cost = 100.0 + 100.2 * (size - 1.0)
    proceeds = 100.5 * 1.5 + 99.9 * (size - 1.5)
    assert 1.5 < size < 3.0 and proceeds / cost == pytest.approx(1.001, abs=1e-12)
    detector, states = CrossExchangeDetector(config(0.0, min_profit_bps=10.0)), {}
    state = states.setdefault("X/Y", detector.State())
    detector.on_tick(state, with_levels(buy, [(99.9, 1.0)], asks), 0)
    signal, = detector.on_tick(state, with_levels(sell, bids, [(100.6, 1.0)]), 0)
    assert signal["size"] == pytest.approx(size, rel=1e-11)  # to 12 significant digits, as signals carry sizes
    assert [leg["vwap"] for leg in signal["legs"]] == pytest.approx([cost / size, proceeds / size], rel=1e-12)
    later = sell._replace(ts=T + 1)  # no book with it: b falls back to its top of book, 1.5 at 100.5
    assert detector.on_tick(state, later, 0) == []  # the same profit is no new peak: its size shows at the next
    peak, = detector.on_tick(state, later._replace(bid=100.55, ts=T + 2), 0)
    assert peak["size"] == 1.5 and [leg["vwap"] for leg in peak["legs"]] == [
        pytest.approx((100.0 + 100.2 * 0.5) / 1.5), 100.55]  # a's book is still walked


def test_a_triangle_is_sized_walking_each_legs_book():
    """BTC -> USDT -> ETH -> BTC with no fees: 1 BTC sells for 100 USDT on the first level and 99 on the
    next; ETH costs 10.01 then 10.5; ETH sells for 0.102 BTC. The second USDT level alone still pays
    (99 / 10.01 * 0.102 = 1.00889), the second ETH level does not (100 / 10.5 * 0.102 = 0.9714), so the
    size is where the average over both crosses 1."""
    btc, eth_usdt, eth_btc = triangle(size=None)
    ticks = [with_levels(btc, [(100.0, 1.0), (99.0, 5.0)], [(100.01, 1.0)]),
             with_levels(eth_usdt, [(10.0, 1.0)], [(10.01, 15.0), (10.5, 100.0)]),
             with_levels(eth_btc, [(0.102, 100.0)], [(0.1021, 1.0)])]
    signal, = feed(TriangularDetector(config(0.0, min_profit_bps=0.0)), ticks)
    size = signal["size"]
    usdt = 100.0 + 99.0 * (size - 1.0)
    eth = 15.0 + (usdt - 15.0 * 10.01) / 10.5
    assert 1.0 < size < 6.0 and eth * 0.102 == pytest.approx(size, rel=1e-10)  # what comes back is what went in
    assert [leg["vwap"] for leg in signal["legs"]] == pytest.approx([usdt / size, usdt / eth, 0.102], rel=1e-10)
    plain, = feed(TriangularDetector(config(0.0)), triangle())
    assert "vwap" not in plain["legs"][0]


# an empty SymbolState pickled by the job before depth came with the ticks (c4be657): it had a "depth" slot
OLD_STATE = (b"\x80\x04\x95\xa5\x00\x00\x00\x00\x00\x00\x00\x8c\x1dcore.arbitrage.cross_exchange\x94\x8c\x0bSymbolState"
             b"\x94\x93\x94)\x81\x94N}\x94(\x8c\x06quotes\x94}\x94\x8c\x05depth\x94}\x94\x8c\x04book\x94\x8c\x18core."
             b"arbitrage.lifecycle\x94\x8c\x0fOpportunityBook\x94\x93\x94)\x81\x94N}\x94\x8c\x04open\x94}\x94s\x86\x94b"
             b"\x8c\x06newest\x94K\x00u\x86\x94b.")


def test_state_pickled_with_the_old_depth_slot_restores():
    """Keyed state checkpointed before the ticks carried their books still restores, and detects."""
    state = pickle.loads(OLD_STATE)
    assert not hasattr(state, "depth")
    assert [s["status"] for s in feed(CrossExchangeDetector(config(0.0)), cross_pair(), {"X/Y": state})] == ["open"]
