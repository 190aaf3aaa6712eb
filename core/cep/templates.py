"""Built-in rule templates: the common market conditions, as rule text with the numbers filled in.

Each returns text in the rule language, so a template is only a starting point a user can read,
copy and edit; it goes through the same parser as any rule.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from .rules.lexer import DURATION_MS


def _q(symbol: str) -> str:
    return json.dumps(symbol)


def price_spike(symbol: str = "BTC/USDT", pct: float = 1.0, window: str = "10s") -> str:
    """The price moved more than pct% (either way) within the window."""
    return f"IF abs(change_pct({_q(symbol)}, {window})) > {pct} THEN PRICE_SPIKE"


def volatility_burst(symbol: str = "BTC/USDT", ratio: float = 3.0, short: str = "30s", long: str = "10m") -> str:
    """Short-term volatility is several times the longer-term volatility."""
    return (f"IF volatility({_q(symbol)}, {short}) > {ratio} * volatility({_q(symbol)}, {long}) "
            f"THEN VOLATILITY_BURST")


def volume_surge(symbol: str = "BTC/USDT", ratio: float = 5.0, short: str = "1m", long: str = "30m") -> str:
    """Traded volume over the short window, scaled to the long one, is several times the long window's."""
    scale = _ms(long) / _ms(short)
    return f"IF volume({_q(symbol)}, {short}) * {scale!r} > {ratio} * volume({_q(symbol)}, {long}) THEN VOLUME_SURGE"


def trend_reversal(symbol: str = "BTC/USDT", up_pct: float = 1.0, down_pct: float = 0.5, window: str = "10s",
                   within: str = "1m") -> str:
    """A rise followed by a fall, within a bounded time."""
    return (f"DEFINE rise AS change_pct({_q(symbol)}, {window}) > {up_pct}\n"
            f"DEFINE fall AS change_pct({_q(symbol)}, {window}) < -{down_pct}\n"
            f"PATTERN rise FOLLOWED BY fall WITHIN {within} AFTER MATCH SKIP PAST LAST EVENT\n"
            f"THEN TREND_REVERSAL")


def breakout(symbol: str = "BTC/USDT", window: str = "15m", zscore: float = 3.0) -> str:
    """The latest price sits far outside the window's recent range."""
    return f"IF abs(zscore({_q(symbol)}, {window})) > {zscore} THEN BREAKOUT"


def spread_widening(symbol: str = "BTC/USDT", bps: float = 20.0) -> str:
    """The quoted spread exceeds a threshold, in basis points of the mid price."""
    return f"IF spread_bps({_q(symbol)}) > {bps} THEN SPREAD_WIDENING"


def arbitrage(symbol: str = "BTC/USDT", buy_venue: str = "kraken", sell_venue: str = "binance",
              bps: float = 10.0) -> str:
    """One venue's bid beats another's ask by more than the threshold (before fees)."""
    sell, buy = _q(f"{symbol}@{sell_venue}"), _q(f"{symbol}@{buy_venue}")
    return f"IF (bid({sell}) - ask({buy})) / ask({buy}) * 10000 > {bps} THEN ARBITRAGE"


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
    "arbitrage": arbitrage,
}
