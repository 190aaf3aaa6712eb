"""Triangular, direct and rule detection over ticks in event-time order (core/event_order.py).

The job runs these in its tick reader when `ticks` has one partition, and in keyed buckets fed by
every partition's reader when it has more; either way each sees the same ticks in the same order, so
the signals are the same. Trades come in the same order, for the rules only (their vwap and volume).
Detection remembers which entries a batch changed, so the host writes back only those: a venue's
quotes one by one, not the venue's whole state after every batch.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Protocol

from core.arbitrage.direct import DirectDetector, PairState, pair_key
from core.arbitrage.triangular import TriangularDetector, VenueState
from core.contracts.signal import Signal
from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.settings import ArbitrageSettings

TRIANGULAR, DIRECT, RULES = 1, 2, 4  # what a tick is for, in a bucket that runs several detectors
COUNTED = 8  # set on one copy of each tick only, so that ticks detected are counted once (ascep:counters)
KEYED_RULES = 16  # for the partitioned rules, which run keyed by symbol; RULES: the rules over named symbols
ROUTED = {"triangular": (TRIANGULAR,), "direct": (DIRECT,), "rules": (RULES, KEYED_RULES)}  # each flag its bucket
FLAGS = {name: sum(flags) for name, flags in ROUTED.items()}
RULES_BUCKET = 0  # the bucket that evaluates the rules over named symbols (and gets every trade for them)


class RuleRunner(Protocol):
    def on_ordered(self, event: Tick | Trade, now_ms: int, named: bool = ..., keyed: bool = ...,
                   source: str = ...) -> list[Signal]: ...


def bucket_of(key: str, buckets: int) -> int:
    """A stable bucket for a detector's key (a venue, a currency pair): the same in every process."""
    return zlib.crc32(key.encode()) % buckets


def flags_of(detectors: Iterable[str]) -> int:
    """The flags of a tick that every detector here sees, counted once."""
    flags = COUNTED
    for name in detectors:
        flags |= FLAGS[name]
    return flags


def routes(stamped: Iterable[tuple[int, Tick]], detectors: Iterable[str], buckets: int
           ) -> dict[int, list[tuple[int, Tick, int]]]:
    """Which bucket gets each (order key, tick) and what for: triangular by venue; direct, and partitioned
    rules, by pair (a symbol's ticks all go to its pair's bucket: one copy serves both); the other rules all
    in RULES_BUCKET. Every bucket is present, so every bucket hears every partition's watermark."""
    wanted = [flag for name in detectors for flag in ROUTED[name]]
    out: dict[int, list[tuple[int, Tick, int]]] = {bucket: [] for bucket in range(buckets)}
    venue_buckets: dict[str, int] = {}
    pair_buckets: dict[str, int] = {}
    for key, tick in stamped:
        flags: dict[int, int] = {}
        for flag in wanted:
            if flag == TRIANGULAR:
                bucket = venue_buckets.get(tick.venue, -1)
                if bucket < 0:
                    bucket = venue_buckets[tick.venue] = bucket_of(tick.venue, buckets)
            elif flag == DIRECT or flag == KEYED_RULES:
                bucket = pair_buckets.get(tick.symbol, -1)
                if bucket < 0:
                    bucket = pair_buckets[tick.symbol] = bucket_of(pair_key(tick.symbol), buckets)
            else:
                bucket = RULES_BUCKET
            flags[bucket] = flags.get(bucket, 0) | flag
        counted = COUNTED
        for bucket, flag in flags.items():
            out[bucket].append((key, tick, flag | counted))
            counted = 0
    return out


def trade_routes(stamped: Iterable[tuple[int, Trade]], buckets: int) -> dict[int, list[tuple[int, Trade, int]]]:
    """Which bucket gets each (order key, trade): RULES_BUCKET for the rules over named symbols, the bucket of
    its symbol's pair for the partitioned ones (as routes() sends ticks). Every bucket is present."""
    out: dict[int, list[tuple[int, Trade, int]]] = {bucket: [] for bucket in range(buckets)}
    pair_buckets: dict[str, int] = {}
    for key, trade in stamped:
        bucket = pair_buckets.get(trade.symbol, -1)
        if bucket < 0:
            bucket = pair_buckets[trade.symbol] = bucket_of(pair_key(trade.symbol), buckets)
        if bucket == RULES_BUCKET:
            out[bucket].append((key, trade, RULES | KEYED_RULES))
        else:
            out[RULES_BUCKET].append((key, trade, RULES))
            out[bucket].append((key, trade, KEYED_RULES))
    return out


class Detection:
    """Triangular by venue and direct by pair, over one stream of (tick, flags) in event-time order."""

    def __init__(self, arbitrage: ArbitrageSettings) -> None:
        self.triangular = TriangularDetector(arbitrage)
        self.direct = DirectDetector(arbitrage)
        self.venues: dict[str, VenueState] = {}
        self.pairs: dict[str, PairState] = {}
        self.pair_keys: dict[str, str] = {}  # symbol -> its pair's key, worked out once
        self.touched_quotes: list[Tick] = []  # ticks triangular took since take_changes(), duplicates and all
        self.touched_pairs: list[str] = []

    def run(self, ticks: list[Tick | Trade], flags: Iterable[int], now_ms: int, rules: RuleRunner | None
            ) -> list[Signal]:
        """`flags` says, tick by tick, which detectors a tick is for; a trade is for the rules only.
        `rules` runs the rules, if any."""
        out: list[Signal] = []
        venues, pairs, pair_keys = self.venues, self.pairs, self.pair_keys
        triangular, direct = self.triangular.on_tick, self.direct.on_tick
        touched_quotes, touched_pairs = self.touched_quotes, self.touched_pairs
        for tick, flag in zip(ticks, flags):
            if isinstance(tick, Trade):
                if rules is not None:
                    signals = rules.on_ordered(tick, now_ms, bool(flag & RULES), bool(flag & KEYED_RULES), "ticks")
                    if signals:
                        out.extend(signals)
                continue
            if flag & TRIANGULAR:
                state = venues.get(tick.venue)
                if state is None:
                    state = venues[tick.venue] = VenueState()
                signals = triangular(state, tick, now_ms)
                if signals:
                    out.extend(signals)
                touched_quotes.append(tick)
            if flag & DIRECT:
                key = pair_keys.get(tick.symbol)
                if key is None:
                    key = pair_keys[tick.symbol] = pair_key(tick.symbol)
                pair = pairs.get(key)
                if pair is None:
                    pair = pairs[key] = PairState()
                signals = direct(pair, tick, now_ms)
                if signals:
                    out.extend(signals)
                touched_pairs.append(key)
            if flag & (RULES | KEYED_RULES) and rules is not None:
                signals = rules.on_ordered(tick, now_ms, bool(flag & RULES), bool(flag & KEYED_RULES), "ticks")
                if signals:
                    out.extend(signals)
        return out

    def take_changes(self) -> tuple[dict[str, Tick], dict[str, tuple], dict[str, PairState]]:
        """What changed since the last call, as state entries: quotes by quote_key, venues, pairs."""
        venues, pairs = self.venues, self.pairs
        touched = {(tick.venue, tick.symbol) for tick in self.touched_quotes}
        quotes = {quote_key(venue, symbol): venues[venue].quotes[symbol] for venue, symbol in touched}
        saved = {venue: self.triangular.saved(venues[venue]) for venue in {venue for venue, _ in touched}}
        changed_pairs = {key: pairs[key] for key in set(self.touched_pairs)}
        self.touched_quotes, self.touched_pairs = [], []
        return quotes, saved, changed_pairs

    def load(self, quotes: Iterable[tuple[str, Tick]], venues: Iterable[tuple[str, tuple]],
             pairs: Iterable[tuple[str, PairState]]) -> None:
        """Rebuild from the entries take_changes() gave (after a restore)."""
        by_venue: dict[str, dict[str, Tick]] = {}
        for _, tick in quotes:
            by_venue.setdefault(tick.venue, {})[tick.symbol] = tick
        for venue, saved in venues:
            self.venues[venue] = self.triangular.restore(venue, by_venue.get(venue, {}), saved)
        self.pairs.update(pairs)


def quote_key(venue: str, symbol: str) -> str:
    return f"{venue} {symbol}"
