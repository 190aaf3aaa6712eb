"""Real FX quotes from Alpha Vantage's REST API (CURRENCY_EXCHANGE_RATE), within its rate limits.

The free tier allows 25 requests a day and 5 a minute, so the poller is a slow trickle of real
rates next to the simulated FX market, not a feed: pairs are asked in turn, each request waits for
a token from every limit, and a "Note"/"Information" reply (the API's way of saying the limit was
hit) empties the budget instead of being retried. The limits are kept in memory only: a restart
starts with a fresh budget, so keep restarts rare on the free tier.
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from core.clock import now_ms
from core.contracts.tick import InvalidTick, Tick, parse_symbol, tick_from_values
from core.log import event
from ingestion.producer import TickProducer

log = logging.getLogger(__name__)

VENUE = "alphavantage"
API_URL = "https://www.alphavantage.co/query"
KEY_ENV = "ASCEP_ALPHAVANTAGE_KEY"
FREE_TIER = ((5, 60.0), (25, 86_400.0))  # (requests, per seconds)
RATE_FIELD = "Realtime Currency Exchange Rate"


class TokenBucket:
    """At most `limit` takes in any window of `window_s`: a burst of one, refilled at (limit - 1) / window_s."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"a rate limit needs >= 1 request per > 0 seconds, got {limit} per {window_s}s")
        self.window_s = window_s
        self.rate = (limit - 1) / window_s if limit > 1 else 1 / window_s
        self.clock = clock
        self.tokens = 1.0
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(1.0, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_s(self) -> float:
        """Seconds until a token is available (0 if one is)."""
        self._refill()
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1.0

    def empty(self) -> None:
        """The server says the limit is hit (someone else may share the key): wait a whole window."""
        self._refill()
        self.tokens = 1.0 - self.rate * self.window_s


class PollError(ValueError):
    """A reply that holds no rate; the message is the dead-letter reason."""


class RateLimited(PollError):
    """The API refused for the rate limit; not a bad reply, so not a dead letter."""


def parse_exchange_rate(body: bytes, symbol: str, venue: str = VENUE) -> Tick:
    """The tick in one CURRENCY_EXCHANGE_RATE reply for `symbol` ("EUR/USD"); raises PollError naming the field."""
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PollError(f"reply is not JSON: {exc}") from None
    if not isinstance(reply, dict):
        raise PollError(f"reply must be a JSON object, got {type(reply).__name__}")
    for notice in ("Note", "Information"):
        if notice in reply:
            raise RateLimited(f"{notice}: {str(reply[notice])[:200]}")
    if "Error Message" in reply:
        raise PollError(f"API error: {str(reply['Error Message'])[:200]}")
    rate = reply.get(RATE_FIELD)
    if not isinstance(rate, dict):
        raise PollError(f"missing object {RATE_FIELD!r}")
    base, quote = symbol.split("/")
    for field, expected in (("1. From_Currency Code", base), ("3. To_Currency Code", quote)):
        if rate.get(field) != expected:
            raise PollError(f"field {field!r} is {str(rate.get(field))[:20]!r}, asked for {expected!r}")
    zone = rate.get("7. Time Zone")
    if zone != "UTC":
        raise PollError(f"field '7. Time Zone' must be 'UTC', got {str(zone)[:20]!r}")
    refreshed = rate.get("6. Last Refreshed")
    try:
        moment = datetime.strptime(str(refreshed), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise PollError(f"field '6. Last Refreshed' is not 'YYYY-MM-DD HH:MM:SS': {str(refreshed)[:30]!r}") from None
    try:
        return tick_from_values(venue, symbol, rate.get("8. Bid Price"), rate.get("9. Ask Price"), None, None,
                                int(moment.timestamp() * 1000))
    except InvalidTick as exc:
        raise PollError(f"bad rate: {exc} (fields '8. Bid Price'/'9. Ask Price')") from None


@dataclass
class PollCounts:
    requests: int = 0
    ticks: int = 0
    unchanged: int = 0  # replies with the same refresh time and prices as the previous one of that pair
    rate_limited: int = 0
    deadletters: int = 0


class FxPoller:
    def __init__(self, api_key: str, pairs: Sequence[str], producer: TickProducer, *, url: str = API_URL,
                 limits: Sequence[tuple[int, float]] = FREE_TIER, timeout_s: float = 10.0) -> None:
        if not api_key:
            raise ValueError(f"an Alpha Vantage API key is needed: set {KEY_ENV} or pass --key")
        if not pairs:
            raise ValueError("at least one currency pair is needed")
        self.api_key = api_key
        self.pairs = [parse_symbol(p) for p in pairs]
        self.producer = producer
        self.url = url
        self.buckets = [TokenBucket(limit, window) for limit, window in limits]
        self.timeout_s = timeout_s
        self.counts = PollCounts()
        self.latest: dict[str, Tick] = {}

    def request_url(self, symbol: str) -> str:
        base, quote = symbol.split("/")
        query = urllib.parse.urlencode({"function": "CURRENCY_EXCHANGE_RATE", "from_currency": base,
                                        "to_currency": quote, "apikey": self.api_key})
        return f"{self.url}?{query}"

    def run(self, stop: threading.Event) -> None:
        """Ask for each pair in turn, as the limits allow, until `stop`."""
        turn = 0
        while not stop.is_set():
            wait = max(bucket.wait_s() for bucket in self.buckets)
            if wait > 0:
                stop.wait(wait)
                continue
            for bucket in self.buckets:
                bucket.take()
            self.poll(self.pairs[turn % len(self.pairs)])
            turn += 1

    def poll(self, symbol: str) -> None:
        self.counts.requests += 1
        received_ms = now_ms()
        try:
            with urllib.request.urlopen(self.request_url(symbol), timeout=self.timeout_s) as reply:
                body = reply.read()
        except (urllib.error.URLError, OSError) as exc:
            event(log, "alpha vantage request failed", logging.WARNING, symbol=symbol, error=str(exc))
            return
        try:
            tick = parse_exchange_rate(body, symbol)
        except RateLimited as exc:
            self.counts.rate_limited += 1
            for bucket in self.buckets:
                bucket.empty()
            event(log, "alpha vantage rate limit reached, waiting", logging.WARNING, symbol=symbol, reply=str(exc))
            return
        except PollError as exc:
            self.counts.deadletters += 1
            self.producer.deadletter(VENUE, f"{symbol}: {exc}", body, received_ms, source=self.url)
            return
        if self.latest.get(symbol) == tick:
            self.counts.unchanged += 1
            return
        self.latest[symbol] = tick
        self.producer.tick(tick)
        self.counts.ticks += 1
