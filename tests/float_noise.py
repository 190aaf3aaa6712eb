"""What a float artefact is, for the tests that show documents carry none (a module of its own: every test
directory can import it, conftest is not importable by name)."""
from __future__ import annotations

from typing import Any

NOISE_DIGITS = 15  # significant digits of the shortest repr: 36.64645839999999 has 16, a rounded figure far fewer


def significant_digits(value: float) -> int:
    """Of the shortest repr that reads back as `value`: 100.0 has 1, 9.9311e-06 has 5."""
    return len(repr(abs(value)).split("e")[0].replace(".", "").strip("0"))


def noisy_floats(doc: Any, where: str = "") -> list[str]:
    """Every float in `doc` (nested dicts and lists) whose shortest repr has NOISE_DIGITS digits or more, with
    its place: what a sum or a product of binary fractions leaves when nothing rounded it."""
    if isinstance(doc, float):
        return [f"{where}: {doc!r}"] if significant_digits(doc) >= NOISE_DIGITS else []
    if isinstance(doc, dict):
        return [found for key, value in doc.items() for found in noisy_floats(value, f"{where}.{key}")]
    if isinstance(doc, (list, tuple)):
        return [found for i, value in enumerate(doc) for found in noisy_floats(value, f"{where}[{i}]")]
    return []


def default_market_signals(seconds: float = 120.0, start_ms: int = 1_700_000_000_000) -> list[dict[str, Any]]:
    """Every signal state the detectors give over the first `seconds` of `ascep up`'s default source: real
    profits, sizes and prices to check, of every kind (cross-exchange, triangular, direct)."""
    import itertools

    from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
    from core.detection import Detection, flags_of
    from core.settings import ArbitrageSettings
    from ingestion.sim.merged import crypto_and_fx

    settings = ArbitrageSettings()
    cross, detection, states = CrossExchangeDetector(settings), Detection(settings), {}
    flags = [flags_of(["triangular", "direct"])]
    signals: list[dict[str, Any]] = []
    for tick in itertools.takewhile(lambda t: t.ts < start_ms + seconds * 1000, crypto_and_fx().ticks(start_ms)):
        signals += cross.on_tick(states.setdefault(tick.symbol, SymbolState()), tick, tick.ts)
        signals += detection.run([tick], flags, tick.ts, None)
    return signals
