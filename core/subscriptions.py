"""The live protocol's pure part: what a client asked for, whether an update matches it, and what is
still to be sent to it (docs/live-protocol.md).

The dashboard's shell (dashboard/live.py) does the I/O: it parses each client message with
parse_request, asks matches() of each update, and keeps one Outbox per client. An Outbox keeps the
newest tick per venue:symbol (so a client that falls behind loses its oldest price updates, counted,
and still gets the newest price of each) and every other message in order, never dropping one: a
client that lets too many pile up is ended instead (Overflow).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar, get_args

import orjson

from core.contracts.signal import SignalType, places
from core.contracts.tick import InvalidTick, parse_symbol, parse_venue

SIGNAL_TYPES = frozenset(get_args(SignalType))
MAX_NAMES = 10_000  # symbols or venues in one request: more than any market, fewer than would cost memory
M = TypeVar("M")


class ProtocolError(ValueError):
    """A client message the server cannot take; `field` names the field at fault (None: the message itself)."""

    def __init__(self, message: str, request: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.request = request
        self.field = field

    def reply(self) -> dict[str, Any]:
        return {"kind": "error", "request": self.request, "field": self.field, "error": str(self)}


class Overflow(Exception):
    """An Outbox holds as many messages as it may: the client is too slow to be sent every signal."""


def _names(kind: str, field: str, value: Any, parse) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ProtocolError(f"{kind}: {field!r} must be a list, or null for any, got {type(value).__name__}",
                            kind, field)
    if len(value) > MAX_NAMES:
        raise ProtocolError(f"{kind}: {field!r} has {len(value)} entries, at most {MAX_NAMES}", kind, field)
    names = []
    for i, name in enumerate(value):
        try:
            names.append(parse(name))
        except InvalidTick as exc:
            raise ProtocolError(f"{kind}: {field}[{i}]: {exc}", kind, field) from None
    return frozenset(names)


def _signal_type(name: Any) -> str:
    if name not in SIGNAL_TYPES:
        raise InvalidTick(f"{str(name)[:40]!r} is not a signal type: expected one of {', '.join(sorted(SIGNAL_TYPES))}")
    return name


def _listed(names: frozenset[str] | None) -> list[str] | None:
    return None if names is None else sorted(names)


@dataclass(frozen=True)
class PriceSubscription:
    """Ticks whose symbol and venue are listed; None lists any, an empty set none."""

    KIND: ClassVar[str] = "subscribe_prices"
    symbols: frozenset[str] | None = None
    venues: frozenset[str] | None = None

    def matches(self, tick: Mapping[str, Any]) -> bool:
        return ((self.symbols is None or tick["symbol"] in self.symbols)
                and (self.venues is None or tick["venue"] in self.venues))

    def to_json(self) -> dict[str, Any]:
        return {"symbols": _listed(self.symbols), "venues": _listed(self.venues)}


class PriceWindow:
    """The ticks of one flush by venue:symbol, indexed by symbol and by venue on first need, so that each of
    hundreds of subscriptions picks its ticks at the cost of what it takes, not of the whole window."""

    def __init__(self, ticks: Mapping[str, dict[str, Any]]) -> None:
        self.ticks = ticks
        self._index: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}

    def _by(self, field: str) -> dict[str, dict[str, dict[str, Any]]]:
        if field not in self._index:
            groups: dict[str, dict[str, dict[str, Any]]] = {}
            for key, tick in self.ticks.items():
                groups.setdefault(tick[field], {})[key] = tick
            self._index[field] = groups
        return self._index[field]

    def select(self, wanted: PriceSubscription) -> Mapping[str, dict[str, Any]]:
        """The ticks `wanted` matches, by venue:symbol (the window itself when it matches all)."""
        if wanted.symbols is None and wanted.venues is None:
            return self.ticks
        if wanted.venues is None or (wanted.symbols is not None and len(wanted.symbols) <= len(wanted.venues)):
            field, names, other, also = "symbol", wanted.symbols, "venue", wanted.venues
        else:
            field, names, other, also = "venue", wanted.venues, "symbol", wanted.symbols
        assert names is not None  # chosen so
        groups = self._by(field)
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            group = groups.get(name)
            if group:
                out.update(group if also is None else {k: t for k, t in group.items() if t[other] in also})
        return out


class SignalFacts(NamedTuple):
    """What a subscription asks of a signal, taken from it once however many clients ask."""

    type: str
    profit_bps: float
    symbols: set[str]
    venues: set[str]

    @classmethod
    def of(cls, signal: Any) -> SignalFacts:
        """ValueError naming what is wrong with a document that is not a signal."""
        if not isinstance(signal, dict):
            raise ValueError(f"a signal must be a JSON object, got {type(signal).__name__}")
        kind, profit = signal.get("type"), signal.get("profit_bps", 0.0)
        if not isinstance(kind, str):
            raise ValueError(f"signal field 'type' must be a string, got {type(kind).__name__}")
        if isinstance(profit, bool) or not isinstance(profit, int | float):
            raise ValueError(f"signal field 'profit_bps' must be a number, got {type(profit).__name__}")
        try:
            symbols, venues = places(signal)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"signal legs, events or key unreadable: {type(exc).__name__}: {exc}") from None
        return cls(kind, float(profit), symbols, venues)


@dataclass(frozen=True)
class SignalSubscription:
    """Signals of the listed types that name a listed symbol and a listed venue (any leg or event will do),
    with at least min_profit_bps. Rule signals carry no profit, so the minimum does not apply to them."""

    KIND: ClassVar[str] = "subscribe_signals"
    types: frozenset[str] | None = None
    symbols: frozenset[str] | None = None
    venues: frozenset[str] | None = None
    min_profit_bps: float | None = None

    def matches(self, facts: SignalFacts) -> bool:
        return ((self.types is None or facts.type in self.types)
                and (self.symbols is None or not self.symbols.isdisjoint(facts.symbols))
                and (self.venues is None or not self.venues.isdisjoint(facts.venues))
                and (self.min_profit_bps is None or facts.type == "rule" or facts.profit_bps >= self.min_profit_bps))

    def to_json(self) -> dict[str, Any]:
        return {"types": _listed(self.types), "symbols": _listed(self.symbols), "venues": _listed(self.venues),
                "min_profit_bps": self.min_profit_bps}


Request = PriceSubscription | SignalSubscription
FIELDS = {PriceSubscription.KIND: ("symbols", "venues"),
          SignalSubscription.KIND: ("types", "symbols", "venues", "min_profit_bps")}


def parse_request(text: str | bytes) -> Request:
    """One client message; ProtocolError names what is wrong and where."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a request must be a JSON object, got {type(message).__name__}")
    if "kind" not in message:
        raise ProtocolError(f"missing field 'kind': expected one of {', '.join(FIELDS)}", None, "kind")
    kind = message["kind"]
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ProtocolError(f"unknown kind {str(kind)[:40]!r}: expected one of {', '.join(FIELDS)}", None, "kind")
    for field in message:
        if field != "kind" and field not in FIELDS[kind]:
            raise ProtocolError(f"{kind}: unknown field {field[:40]!r}: expected {', '.join(FIELDS[kind])}",
                                kind, field)
    symbols = _names(kind, "symbols", message.get("symbols"), parse_symbol)
    venues = _names(kind, "venues", message.get("venues"), parse_venue)
    if kind == PriceSubscription.KIND:
        return PriceSubscription(symbols, venues)
    minimum = message.get("min_profit_bps")
    if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int | float)
                                or not math.isfinite(minimum)):
        raise ProtocolError(f"{kind}: 'min_profit_bps' must be a finite number of basis points, or null for none, "
                            f"got {str(minimum)[:40]!r}", kind, "min_profit_bps")
    return SignalSubscription(_names(kind, "types", message.get("types"), _signal_type), symbols, venues,
                              None if minimum is None else float(minimum))


class PriceBatch(NamedTuple):
    """The ticks to send in one price_update, and how many of this client's price updates were lost so far."""

    ticks: list[dict[str, Any]]
    dropped: int


class Outbox(Generic[M]):
    """What is still to be sent to one client: messages (signals, replies) in order, then the pending prices.

    Prices pending are the newest tick per venue:symbol, at most max_prices of them: a tick replaced before
    it was sent, or pushed out as the oldest, is a lost price update, counted in `dropped`. Messages are
    never dropped; put() raises Overflow when max_messages are waiting. While held (a subscription is
    reading its snapshot) nothing is taken, so the reply, put first by release(), goes out before the
    updates that came meanwhile.
    """

    def __init__(self, max_messages: int, max_prices: int) -> None:
        if max_messages < 1 or max_prices < 1:
            raise ValueError(f"an Outbox needs room: max_messages={max_messages}, max_prices={max_prices}")
        self.max_messages = max_messages
        self.max_prices = max_prices
        self.dropped = 0
        self._messages: deque[M] = deque()
        self._prices: dict[str, dict[str, Any]] = {}
        self._held = False

    @property
    def queued(self) -> int:
        return len(self._messages)

    @property
    def pending_prices(self) -> int:
        return len(self._prices)

    def put(self, message: M) -> None:
        if len(self._messages) >= self.max_messages:
            raise Overflow(f"{len(self._messages)} messages waiting, at most {self.max_messages}")
        self._messages.append(message)

    def offer_prices(self, ticks: Mapping[str, dict[str, Any]]) -> None:
        """`ticks` by venue:symbol, newer than any pending for the same key."""
        pending = self._prices
        if not pending:
            pending.update(ticks)
        else:
            for key, tick in ticks.items():
                if pending.pop(key, None) is not None:
                    self.dropped += 1
                pending[key] = tick  # at the end: the oldest pending tick stays first
        while len(pending) > self.max_prices:
            del pending[next(iter(pending))]
            self.dropped += 1

    def clear_prices(self) -> None:
        """A new price subscription's snapshot holds anything pending that it still matches."""
        self._prices = {}

    def hold(self) -> None:
        self._held = True

    def release(self, first: M) -> None:
        """Ends the hold; `first` is taken before anything that waits (it may exceed max_messages by one)."""
        self._held = False
        self._messages.appendleft(first)

    def take(self) -> M | PriceBatch | None:
        if self._held:
            return None
        if self._messages:
            return self._messages.popleft()
        if self._prices:
            ticks, self._prices = list(self._prices.values()), {}
            return PriceBatch(ticks, self.dropped)
        return None
