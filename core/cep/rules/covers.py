"""Which symbols and venues a partitioned rule covers: "*/USDT", "BTC/*", "BTC/USDT@binance", "@kraken"."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_ASSET = r"(?:\*|[A-Z0-9]+)"
COVER = re.compile(rf"(?:(?P<base>{_ASSET})/(?P<quote>{_ASSET}))?(?:@(?P<venue>[a-z0-9_]+))?", re.ASCII)
FORM = "a cover is BASE/QUOTE (either may be *), optionally @venue, or @venue alone: \"*/USDT\", \"@binance\""


def is_cover(text: str) -> bool:
    return bool(text) and COVER.fullmatch(text) is not None


def matcher(covers: Iterable[str]) -> Callable[[str, str], bool]:
    """(symbol, venue) -> whether any cover takes it; no covers take everything."""
    parts = []
    for text in covers:
        found = COVER.fullmatch(text)
        assert found is not None, text  # the checker let only covers through
        parts.append((found["base"], found["quote"], found["venue"]))
    if not parts:
        return lambda symbol, venue: True

    def covered(symbol: str, venue: str) -> bool:
        base, _, quote = symbol.partition("/")
        for want_base, want_quote, want_venue in parts:
            if ((want_base in (None, "*") or want_base == base) and (want_quote in (None, "*") or want_quote == quote)
                    and (want_venue is None or want_venue == venue)):
                return True
        return False
    return covered
