"""Built-in rule templates: the common market conditions, as rule text with the numbers filled in.

Each returns text in the rule language, so a template is only a starting point a user can read,
copy and edit; it goes through the same parser as any rule. The single-market ones are partitioned
rules: one line switches them on for a whole market (`covers="*/USDT"`), or for one symbol.
With its defaults each fires within minutes on `ascep up`'s default source, the simulated crypto and FX
markets (tests/core/cep/test_examples_fire.py), except volume_surge, which reads trades: the simulated
markets quote and do not trade.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from .rules.lexer import DURATION_MS

Covers = str | Sequence[str]


def _q(symbol: str) -> str:
    return json.dumps(symbol)


def _partition(covers: Covers, by_venue: bool = False) -> str:
    """The PARTITION line of a template that runs for every symbol (on each venue apart, `by_venue`) its covers
    take (a symbol is a cover too)."""
    listed = [covers] if isinstance(covers, str) else list(covers)
    return ("PARTITION BY symbol, venue" if by_venue else "PARTITION BY symbol") + (
        " FOR " + ", ".join(map(_q, listed)) if listed else "") + "\n"


def price_spike(covers: Covers = (), pct: float = 1.0, window: str = "10s") -> str:
    """The price moved more than pct% (either way) within the window."""
    return f"{_partition(covers)}IF abs(change_pct({window})) > {pct} THEN PRICE_SPIKE"


def volatility_burst(covers: Covers = (), ratio: float = 3.0, short: str = "10s", long: str = "5m") -> str:
    """Short-term volatility is several times the longer-term volatility. One burst in both windows can show
    at most sqrt(long / short) times the long window's: 30s against 10m needed 4.5 minutes of data to reach 3."""
    return f"{_partition(covers)}IF volatility({short}) > {ratio} * volatility({long}) THEN VOLATILITY_BURST"


def volume_surge(covers: Covers = (), ratio: float = 5.0, short: str = "1m", long: str = "30m") -> str:
    """Traded volume over the short window, scaled to the long one, is several times the long window's."""
    scale = _ms(long) / _ms(short)
    return f"{_partition(covers)}IF volume({short}) * {scale!r} > {ratio} * volume({long}) THEN VOLUME_SURGE"


def trend_reversal(covers: Covers = (), up_pct: float = 1.0, down_pct: float = 0.5, window: str = "10s",
                   within: str = "1m") -> str:
    """A rise followed by a fall, within a bounded time."""
    return (f"{_partition(covers)}"
            f"DEFINE rise AS change_pct({window}) > {up_pct}\n"
            f"DEFINE fall AS change_pct({window}) < -{down_pct}\n"
            f"PATTERN rise FOLLOWED BY fall WITHIN {within} AFTER MATCH SKIP PAST LAST EVENT\n"
            f"THEN TREND_REVERSAL")


def breakout(covers: Covers = (), window: str = "15m", zscore: float = 3.0) -> str:
    """The latest price sits far outside the window's recent range."""
    return f"{_partition(covers)}IF abs(zscore({window})) > {zscore} THEN BREAKOUT"


def spread_widening(covers: Covers = (), bps: float = 20.0) -> str:
    """A venue's quoted spread exceeds a threshold, in basis points of the mid price: keyed by symbol and venue,
    so one venue's wide quote is one signal while it lasts, whatever the other venues quote meanwhile."""
    return f"{_partition(covers, by_venue=True)}IF spread_bps() > {bps} THEN SPREAD_WIDENING"


def stat_arb(first: str = "ETH/USDT", second: str = "BTC/USDT", window: str = "10m", entry: float = 2.0,
             exit: float = 0.5) -> str:
    """Pairs trading: the price ratio's z-score leaves its usual range (opens beyond `entry`) and the signal
    stays open until the ratio comes back (closes inside `exit`)."""
    return (f"DEFINE z AS zscore(price({_q(first)}) / price({_q(second)}), {window})\n"
            f"IF abs(z) > {entry} UNTIL abs(z) < {exit} THEN STAT_ARB")


def arbitrage(covers: Covers = (), buy_venue: str = "kraken", sell_venue: str = "binance",
              bps: float = 10.0) -> str:
    """One venue's bid beats another's ask by more than the threshold (before fees), for every symbol covered."""
    sell, buy = _q(f"@{sell_venue}"), _q(f"@{buy_venue}")
    return f"{_partition(covers)}IF (bid({sell}) - ask({buy})) / ask({buy}) * 10000 > {bps} THEN ARBITRAGE"


def _ms(duration: str) -> int:
    unit = duration.lstrip("0123456789")
    return int(duration[: len(duration) - len(unit)]) * DURATION_MS[unit]


TEMPLATES: dict[str, Callable[..., str]] = {
    "price_spike": price_spike,
    "volatility_burst": volatility_burst,
    "volume_surge": volume_surge,
    "trend_reversal": trend_reversal,
    "breakout": breakout,
    "spread_widening": spread_widening,
    "stat_arb": stat_arb,
    "arbitrage": arbitrage,
}
