"""Signals carry no float noise: a profit or size is rounded where it is made, not left as 217214.03852001906."""
from __future__ import annotations

from float_noise import default_market_signals, noisy_floats, significant_digits


def test_no_signal_of_the_default_market_carries_float_noise():
    signals = default_market_signals()
    assert {s["type"] for s in signals} == {"cross_exchange", "triangular", "direct"}
    assert noisy_floats(signals) == []
    sizes = [s["size"] for s in signals if s["size"] is not None]
    assert sizes and max(map(significant_digits, sizes)) <= 12
    assert max(significant_digits(s["profit_bps"]) for s in signals) <= 12
