"""The summary figures, as plain functions."""
from __future__ import annotations

from float_noise import default_market_signals, noisy_floats

from dashboard.stats import PROFIT_EDGES_BPS, distribution, histogram, signal_stats


def test_histogram_buckets_are_half_open_with_catch_alls():
    buckets = histogram([-3.0, 0.0, 0.99, 1.0, 4.999, 5.0, 499.0, 500.0, 9_000.0])
    counts = {(b["lo"], b["hi"]): b["count"] for b in buckets}
    assert len(buckets) == len(PROFIT_EDGES_BPS) + 1
    assert counts[(None, 0.0)] == 1
    assert counts[(0.0, 1.0)] == 2
    assert counts[(1.0, 2.0)] == 1
    assert counts[(2.0, 5.0)] == 1
    assert counts[(5.0, 10.0)] == 1
    assert counts[(200.0, 500.0)] == 1
    assert counts[(500.0, None)] == 2
    assert sum(counts.values()) == 9


def test_distribution_of_nothing_is_nulls_and_of_one_value_is_that_value():
    assert distribution([]) == {"count": 0, "min": None, "mean": None, "max": None,
                                "p50": None, "p90": None, "p95": None, "p99": None}
    assert distribution([4.0]) == {"count": 1, "min": 4.0, "mean": 4.0, "max": 4.0,
                                   "p50": 4.0, "p90": 4.0, "p95": 4.0, "p99": 4.0}


def test_a_signal_counts_once_per_distinct_venue_and_symbol():
    triangular = {"type": "triangular", "status": "open", "profit_bps": 3.0, "event_time": 100, "detected_at": 103,
                  "legs": [{"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "price": 1.0},
                           {"venue": "binance", "symbol": "ETH/BTC", "side": "buy", "price": 1.0},
                           {"venue": "binance", "symbol": "ETH/USDT", "side": "sell", "price": 1.0}]}
    stats = signal_stats([triangular])
    assert stats["by_venue"] == {"binance": 1}
    assert stats["by_symbol"] == {"BTC/USDT": 1, "ETH/BTC": 1, "ETH/USDT": 1}
    assert stats["detection_latency_ms"]["p50"] == 3.0


def test_an_unreadable_signal_is_left_out_and_named():
    good = {"id": "a1", "type": "direct", "status": "closed", "profit_bps": 2.0, "event_time": 10, "legs": []}
    stats = signal_stats([good, {"id": "b2", "type": "direct", "status": "open", "profit_bps": "lots"}])
    assert stats["signals"] == 1 and stats["by_status"] == {"closed": 1}
    assert stats["unreadable"] == {"count": 1, "examples": ["b2: ValueError could not convert string to float: 'lots'"]}


def test_computed_figures_are_rounded_and_given_values_kept():
    figures = distribution([36.646458, 36.646459, 36.646461])
    assert (figures["min"], figures["max"]) == (36.646458, 36.646461)
    assert figures["mean"] == 36.646 and figures["p50"] == 36.646


def test_the_figures_of_the_default_markets_signals_carry_no_float_noise():
    stats = signal_stats(default_market_signals())
    assert stats["signals"] > 100 and stats["unreadable"]["count"] == 0
    assert noisy_floats(stats) == []
