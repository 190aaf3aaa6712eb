"""One module per venue; each only turns a received frame into ticks (see base.py).

VENUES maps a venue name to a factory taking `symbols` (normalized "BASE/QUOTE"; None accepts every
symbol the venue's naming rules can map, which is what replaying a recording wants).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from ingestion.venues.base import VenueParser
from ingestion.venues.binance import Binance
from ingestion.venues.coinbase import Coinbase
from ingestion.venues.gemini import Gemini
from ingestion.venues.kraken import Kraken
from ingestion.venues.okx import Okx

VENUES: dict[str, Callable[..., VenueParser]] = {
    "binance": Binance,
    "binance_us": partial(Binance, name="binance_us", host="stream.binance.us:9443", rest="https://api.binance.us"),
    "coinbase": Coinbase,
    "gemini": Gemini,
    "kraken": Kraken,
    "okx": Okx,
}


def get_venue(name: str, symbols: Iterable[str] | None = None, *, any_symbol: bool = False, **options) -> VenueParser:
    """The parser for `name`: its default symbols, the given `symbols`, or with any_symbol every mappable one."""
    try:
        factory = VENUES[name]
    except KeyError:
        raise ValueError(f"unknown venue {name!r}; known venues: {', '.join(sorted(VENUES))}") from None
    if any_symbol:
        return factory(None, **options)
    return factory(**options) if symbols is None else factory(symbols, **options)
