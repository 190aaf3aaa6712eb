"""Outcomes over a lake with planted opportunities (tests/lake/planted.py): survival and decay exactly as planted."""
from __future__ import annotations

import pytest

from core.outcomes import OutcomeTracker, follow, parse_delays, vwap
from core.settings import ArbitrageSettings
from lake.outcomes import NoSignals, outcomes_report
from lake.storage import open_lake
from tests.lake import planted
from tests.lake.planted import BOOK_ASKS, BOOK_BIDS, BOOK_SIZE, END, FEES, T0, T1

DELAYS = (50, 250, 1_000, 5_000)
HORIZON = 60_000


def net(ask: float, buy_venue: str, bid: float, sell_venue: str) -> float:
    """The cross-exchange formula, written out: sell proceeds net of fee over buy cost with fee."""
    return round((bid * (1.0 - FEES[sell_venue]) / (ask * (1.0 + FEES[buy_venue])) - 1.0) * 10_000.0, 6)


def walked(levels, size: float) -> float:
    cost = filled = 0.0
    for price, quantity in levels:
        take = min(quantity, size - filled)
        cost, filled = cost + take * price, filled + take
    return cost / filled


def triangle(eth_btc_bid: float) -> float:
    fee = FEES["binance"]
    product = 1.0
    for rate in (50_000.0 * (1.0 - fee), 1.0 / (2000.0 * (1.0 + fee)), eth_btc_bid * (1.0 - fee)):
        product *= rate
    return round((product - 1.0) * 10_000.0, 6)


def decay(*pairs: tuple[float, float]) -> list[dict]:
    return [{"delay_ms": d, "available_bps": a, "realised_bps": r} for d, (a, r) in zip(DELAYS, pairs)]


BOOK_BID = walked(BOOK_BIDS, BOOK_SIZE)
EXPECTED = {
    "cross": {"survival_ms": 700, "survived_horizon": False, "depth": "top", "venues": "binance->kraken",
              "profit_at_detection_bps": net(100.0, "binance", 101.0, "kraken"),
              "decay": decay((net(100.0, "binance", 101.0, "kraken"), net(100.0, "binance", 100.6, "kraken")),
                             (net(100.0, "binance", 100.6, "kraken"), net(100.0, "binance", 100.05, "kraken")),
                             (net(100.0, "binance", 100.05, "kraken"),) * 2,
                             (net(100.0, "binance", 100.05, "kraken"),) * 2)},
    "book": {"survival_ms": 2_500, "survived_horizon": False, "depth": "book",
             "profit_at_detection_bps": net(2000.0, "binance", 2030.0, "kraken"),  # survival is top of book
             "decay": decay((net(walked(BOOK_ASKS, BOOK_SIZE), "binance", BOOK_BID, "kraken"),
                             net(walked(((2001.0, 1.0), (2003.0, 1.0)), BOOK_SIZE), "binance", BOOK_BID, "kraken")),
                            (net(walked(((2001.0, 1.0), (2003.0, 1.0)), BOOK_SIZE), "binance", BOOK_BID, "kraken"),
                             net(2040.0, "binance", BOOK_BID, "kraken")),
                            (net(walked(((2001.0, 1.0), (2003.0, 1.0)), BOOK_SIZE), "binance", BOOK_BID, "kraken"),
                             net(2040.0, "binance", BOOK_BID, "kraken")),
                            (net(2040.0, "binance", BOOK_BID, "kraken"),) * 2)},
    "triangle": {"survival_ms": 300, "survived_horizon": False, "depth": "top", "venues": "binance",
                 "profit_at_detection_bps": triangle(0.041),
                 "decay": decay((triangle(0.041), triangle(0.0399)), (triangle(0.041), triangle(0.0399)),
                                (triangle(0.0399),) * 2, (triangle(0.0399),) * 2)},
    "lasting": {"survival_ms": None, "survived_horizon": True, "depth": "top",
                "profit_at_detection_bps": net(10.0, "binance", 10.2, "kraken"),
                "decay": decay(*[(net(10.0, "binance", 10.2, "kraken"),) * 2] * 4)},
}
SKIPPED = {"rule signal: no route to price (a rule's condition is not a trade)": 1,
           "no quote in the lake at its event time for a leg (binance:XRP/USDT, kraken:XRP/USDT)": 1}


@pytest.fixture(scope="module")
def lake_uri(tmp_path_factory) -> str:
    uri = str(tmp_path_factory.mktemp("planted") / "lake")
    planted.write(uri)
    return uri


def test_the_book_walk_differs_from_the_top_of_book():
    """Else the `book` signal would not tell a VWAP walk from a top-of-book price."""
    assert walked(BOOK_ASKS, BOOK_SIZE) != BOOK_ASKS[0][0] and BOOK_BID != BOOK_BIDS[0][0]
    assert EXPECTED["book"]["decay"][0]["available_bps"] != net(2000.0, "binance", 2030.0, "kraken")


def test_survival_and_decay_over_the_lake_are_as_planted(lake_uri):
    report = outcomes_report(open_lake(lake_uri), ArbitrageSettings(), T0, END, DELAYS, HORIZON)
    by_id = {record["id"]: record for record in report["outcomes"]}
    assert sorted(by_id) == sorted(EXPECTED)
    for signal_id, expected in EXPECTED.items():
        assert {k: by_id[signal_id][k] for k in expected} == expected, signal_id
    assert report["skipped"] == SKIPPED
    assert (report["signals"], report["followed"]) == (6, 4)


def test_the_pure_tracker_agrees_with_the_lake_read():
    """The same planted input without the lake: only the order of the stream matters."""
    outcomes, skipped = follow(planted.SIGNALS, planted.TICKS, ArbitrageSettings(), DELAYS, HORIZON, END + HORIZON)
    assert {o.signal["id"]: o.survival_ms for o in outcomes} == {k: v["survival_ms"] for k, v in EXPECTED.items()}
    assert {o.signal["id"]: o.record()["decay"] for o in outcomes} == {k: v["decay"] for k, v in EXPECTED.items()}
    assert skipped == SKIPPED


def test_summary_shares_by_type(lake_uri):
    report = outcomes_report(open_lake(lake_uri), ArbitrageSettings(), T0, END, DELAYS, HORIZON)
    shares = {(row["value"], row["delay_ms"]): (row["priced"], row["still_profitable"])
              for row in report["summary"] if row["dimension"] == "type"}
    # cross_exchange: cross (fell at 700), book (at 2500), lasting (never)
    assert [shares["cross_exchange", d] for d in DELAYS] == [(3, 3), (3, 3), (3, 2), (3, 1)]
    assert [shares["triangular", d] for d in DELAYS] == [(1, 1), (1, 1), (1, 0), (1, 0)]


def test_a_range_of_signals_is_read_alone(lake_uri):
    report = outcomes_report(open_lake(lake_uri), ArbitrageSettings(), T1, T1 + 1, DELAYS, HORIZON)
    assert [r["id"] for r in report["outcomes"]] == ["book"] and report["skipped"] == {}


def test_bad_input_is_named(lake_uri, tmp_path):
    with pytest.raises(NoSignals, match="holds no signals from 2025-11-21T04:00:00.000Z"):
        outcomes_report(open_lake(lake_uri), ArbitrageSettings(), T0 - 2_400_000, T0 - 1, DELAYS, HORIZON)
    with pytest.raises(FileNotFoundError, match="no lake at"):
        outcomes_report(open_lake(str(tmp_path / "none")), ArbitrageSettings(), T0, END, DELAYS, HORIZON)
    with pytest.raises(ValueError, match="'5x' is not a whole number"):
        parse_delays("50,5x")
    with pytest.raises(ValueError, match="horizon 100 ms is shorter than the longest delay 5000 ms"):
        OutcomeTracker(ArbitrageSettings(), DELAYS, 100)
    tracker = OutcomeTracker(ArbitrageSettings())
    tracker.feed(planted.TICKS[1])
    with pytest.raises(ValueError, match="event-time order"):
        tracker.feed(planted.TICKS[0])


def test_a_direct_signal_is_priced_as_its_cycle():
    """EUR/USD against USD/EUR on one venue (a fee of 10 bps, the default): sell both, until USD/EUR's bid falls."""
    fee = 10.0 / 10_000
    start = T0
    ticks = [planted.quote("fxco", "EUR/USD", 1.1, 1.1001, start),
             planted.quote("fxco", "USD/EUR", 0.92, 0.9201, start),
             planted.quote("fxco", "USD/EUR", 0.905, 0.9051, start + 400)]
    signal = planted.signal("direct", "direct", [("fxco", "EUR/USD", "sell", 1.1), ("fxco", "USD/EUR", "sell", 0.92)],
                            start, 99.0)
    (outcome,), skipped = follow([signal], ticks, ArbitrageSettings(), (0, 1_000), HORIZON, start + HORIZON)

    def cycle(usd_eur_bid: float) -> float:
        product = 1.0
        for rate in (1.1 * (1.0 - fee), usd_eur_bid * (1.0 - fee)):
            product *= rate
        return round((product - 1.0) * 10_000.0, 6)

    assert (outcome.survival_ms, skipped) == (400, {})
    assert outcome.record()["decay"] == [{"delay_ms": 0, "available_bps": cycle(0.92), "realised_bps": cycle(0.905)},
                                         {"delay_ms": 1_000, "available_bps": cycle(0.905),
                                          "realised_bps": cycle(0.905)}]
    # A horizon as long as the longest delay: the delay still gets its quotes before the horizon ends the signal.
    (short,), _ = follow([signal], ticks, ArbitrageSettings(), (0, 1_000), 1_000, start + HORIZON)
    assert short.record()["decay"] == outcome.record()["decay"] and short.survival_ms == 400


def test_a_book_holding_less_than_the_size_is_walked_as_far_as_it_goes():
    assert vwap(((100.0, 1.0), (101.0, 1.0)), 1.5) == (100.0 + 0.5 * 101.0) / 1.5
    assert vwap(((100.0, 1.0), (101.0, 1.0)), 5.0) == (100.0 + 101.0) / 2.0


def test_a_triangle_with_books_goes_round_them_at_its_size():
    """0.5 BTC round BTC/USDT (sold down its bids), ETH/USDT (USDT spent up its asks), ETH/BTC (ETH sold down its
    bids), each leg's output the next one's input; the ETH/BTC leg has no book and is priced at its top."""
    fee = FEES["binance"]
    btc_bids = ((50_000.0, 0.2), (49_900.0, 1.0))
    eth_asks = ((2000.0, 5.0), (2010.0, 20.0))
    ticks = [planted.quote("binance", "BTC/USDT", 50_000.0, 50_010.0, T0, bids=btc_bids),
             planted.quote("binance", "ETH/USDT", 1999.0, 2000.0, T0, asks=eth_asks),
             planted.quote("binance", "ETH/BTC", 0.041, 0.0411, T0)]
    legs = [("binance", "BTC/USDT", "sell", 50_000.0), ("binance", "ETH/USDT", "buy", 2000.0),
            ("binance", "ETH/BTC", "sell", 0.041)]
    signal = planted.signal("tri-book", "triangular", legs, T0, 50.0, size=0.5)
    (outcome,), _ = follow([signal], ticks, ArbitrageSettings(), (0,), HORIZON, T0 + HORIZON)

    btc_price = (0.2 * 50_000.0 + 0.3 * 49_900.0) / 0.5  # 24,970 USDT, less the fee
    usdt = 0.5 * btc_price * (1.0 - fee)
    spend = usdt / (1.0 + fee)  # 5 ETH cost 10,000; the rest at 2010
    eth = 5.0 + (spend - 10_000.0) / 2010.0
    back = eth * 0.041 * (1.0 - fee)
    assert outcome.record()["depth"] == "book"
    assert outcome.record()["decay"][0]["available_bps"] == pytest.approx((back / 0.5 - 1.0) * 10_000.0, abs=1e-6)
    # without a size, the same quotes at their tops: the detector's own opening test
    (top,), _ = follow([{**signal, "size": None}], ticks, ArbitrageSettings(), (0,), HORIZON, T0 + HORIZON)
    expected_top = (50_000.0 * (1 - fee) / (2000.0 * (1 + fee)) * 0.041 * (1 - fee) - 1.0) * 10_000.0
    assert top.record()["decay"][0]["available_bps"] == pytest.approx(expected_top, abs=1e-6)
    assert top.record()["depth"] == "top"
