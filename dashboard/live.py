"""Live updates: Redis pub/sub (what the job PUBLISHes) -> this process's relay -> each subscribed WebSocket.

One relay per process subscribes to ascep:live, however many browsers are open, and hands each update
to the sockets of this process whose subscription matches (the protocol: docs/live-protocol.md). Prices
can come thousands a second, so the relay coalesces them (newest tick per venue:symbol) for
PRICE_FLUSH_S; signals go at once. The relay never awaits a socket: it puts into each client's Outbox
(core/subscriptions.py) and each socket's own sender task sends, so a slow client fills its own Outbox,
loses its own oldest prices (counted) and holds up nobody.

No channel layer: each process's relay receives every update from Redis already, so fanning out in
memory costs nothing more, where a group_send through Redis would copy every message to every socket
through Redis and drop messages, signals too, for a socket whose channel is full.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.backoff import Backoff
from core.contracts import redis_keys as keys
from core.contracts.times import signal_document, tick_document
from core.log import event
from core.subscriptions import (
    Outbox,
    Overflow,
    PriceBatch,
    PriceSubscription,
    PriceWindow,
    ProtocolError,
    SignalFacts,
    SignalSubscription,
    parse_request,
)
from dashboard import store
from dashboard.latency import observe_websocket

log = logging.getLogger(__name__)

PRICE_FLUSH_S = 0.2
SUBSCRIBE_WAIT_S = 5.0
MAX_QUEUED = 5_000  # signals and replies waiting for one client; past it the client is closed (1013)
MAX_PENDING_PRICES = 20_000  # venue:symbol keys pending for one client: more than a market has
SNAPSHOT_SIGNALS = 50  # the newest matching signals a subscribe_signals reply carries...
SNAPSHOT_SCAN = 500  # ...among the newest stored
SLOW_CLIENTS_SHOWN = 20
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def dumps(message: dict) -> str:
    return orjson.dumps(message).decode()


class LiveClient:
    """One socket as the relay sees it: what it subscribed to and what is still to be sent to it."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.prices: PriceSubscription | None = None  # None until subscribe_prices: no prices
        self.signals: SignalSubscription | None = None  # None until subscribe_signals: no signals
        self.outbox: Outbox[str] = Outbox(MAX_QUEUED, MAX_PENDING_PRICES)
        self.wake = asyncio.Event()
        self.closing: int | None = None  # the close code, once the client is to be closed
        self.drain = True  # send what is queued before closing

    def put(self, text: str) -> None:
        try:
            self.outbox.put(text)
        except Overflow as exc:
            event(log, "live client too slow, closing it", logging.WARNING, client=self.peer, error=str(exc),
                  dropped_prices=self.outbox.dropped)
            self.end(1013, drain=False)
        self.wake.set()

    def offer_prices(self, ticks: Mapping[str, dict]) -> None:
        self.outbox.offer_prices(ticks)
        self.wake.set()

    def end(self, code: int, drain: bool) -> None:
        if self.closing is None:
            self.closing, self.drain = code, drain
            self.wake.set()

    def next_text(self) -> str | None:
        item = None if self.closing is not None and not self.drain else self.outbox.take()
        if isinstance(item, PriceBatch):
            return dumps({"kind": "price_update", "data": item.ticks, "dropped": item.dropped})
        return item


class LiveRelay:
    def __init__(self, redis_url: str, flush_s: float = PRICE_FLUSH_S, max_backoff_s: float = 5.0) -> None:
        self.redis_url = redis_url
        self.flush_s = flush_s
        self.backoff = Backoff(initial_s=0.1, max_s=max_backoff_s, jitter=False)
        self.subscribed = asyncio.Event()
        self.relayed = 0
        self.skipped = 0
        self.clients: set[LiveClient] = set()
        self._gone_dropped = 0  # price updates lost by clients since disconnected
        self._closed_slow = 0
        self._pending_prices: dict[str, dict] = {}
        self._pending_published: list = []  # when each price message now coalesced was published (its latency)
        self._flush_task: asyncio.Task | None = None
        self.task = asyncio.create_task(self._run(), name="ascep-live-relay")
        self.task.add_done_callback(_log_failure)

    def add(self, client: LiveClient) -> None:
        self.clients.add(client)

    def remove(self, client: LiveClient) -> None:
        self.clients.discard(client)
        self._gone_dropped += client.outbox.dropped
        self._closed_slow += client.closing == 1013

    def status(self) -> dict:
        clients = list(self.clients)
        slow = sorted((c for c in clients if c.outbox.dropped), key=lambda c: -c.outbox.dropped)
        return {"running": not self.task.done(), "subscribed": self.subscribed.is_set(),
                "relayed": self.relayed, "skipped": self.skipped, "clients": len(clients),
                "dropped_prices": self._gone_dropped + sum(c.outbox.dropped for c in clients),
                "closed_slow": self._closed_slow + sum(c.closing == 1013 for c in clients),
                "slow_clients": [{"client": c.peer, "dropped_prices": c.outbox.dropped, "queued": c.outbox.queued}
                                 for c in slow[:SLOW_CLIENTS_SHOWN]]}

    async def _run(self) -> None:
        """Resubscribe with backoff while Redis is away. Its sockets are closed (1011), since what is published
        meanwhile is lost to the relay: the pages reconnect and take a fresh snapshot."""
        attempt = 0
        try:
            while True:
                try:
                    await self._relay()
                except REDIS_ERRORS as exc:
                    if self.subscribed.is_set():
                        attempt = 0  # it was working: a fresh outage starts the backoff over
                    self.subscribed.clear()
                    self._end_all()
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    event(log, "live relay lost redis, resubscribing", logging.WARNING, error=str(exc),
                          retry_in_s=delay)
                    await asyncio.sleep(delay)
        finally:
            self._end_all()

    def _end_all(self) -> None:
        for client in self.clients:
            client.end(1011, drain=True)

    async def _relay(self) -> None:
        client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(keys.LIVE_CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self.subscribed.set()
                    elif message["type"] == "message":
                        self._forward(message["data"])
        finally:
            await client.aclose()

    def _forward(self, data: bytes) -> None:
        try:
            update = orjson.loads(data)
            kind = update["kind"]
            if kind == "prices":
                self._pending_prices.update({f"{t['venue']}:{t['symbol']}": t for t in update["data"]})
                self._pending_published.append(update.get("published_at"))
                if self._flush_task is None:
                    self._flush_task = asyncio.create_task(self._flush_prices_later())
                    self._flush_task.add_done_callback(_log_failure)
            elif kind == "signal":
                self._send_signal(signal_document(update["data"]), SignalFacts.of(update["data"]))
                observe_websocket(update.get("published_at"))
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self.skipped += 1
            event(log, "skipped malformed live message", logging.WARNING, channel=keys.LIVE_CHANNEL,
                  error=f"{type(exc).__name__}: {exc}", message=data[:200].decode(errors="replace"))
            return
        self.relayed += 1

    def _send_signal(self, signal: dict, facts: SignalFacts) -> None:
        text = dumps({"kind": "rule_signal" if facts.type == "rule" else "arbitrage_signal", "data": signal})
        for client, _ in self._subscribed(lambda client: client.signals, lambda wanted: wanted.matches(facts)):
            client.put(text)

    def _subscribed(self, wanted_of: Callable[[LiveClient], Any], answer: Callable[[Any], Any]
                    ) -> Iterator[tuple[LiveClient, Any]]:
        """(client, answer) for each open client whose subscription (`wanted_of`) gets a truthy `answer`: clients
        share subscriptions, so each distinct one is asked once."""
        answers: dict[Any, Any] = {}
        for client in self.clients:
            wanted = wanted_of(client)
            if wanted is None or client.closing is not None:
                continue
            if wanted not in answers:
                answers[wanted] = answer(wanted)
            if found := answers[wanted]:
                yield client, found

    async def _flush_prices_later(self) -> None:
        await asyncio.sleep(self.flush_s)
        # The ISO twins of the times once per venue:symbol of the window, not for every tick that came in it.
        pending = {key: tick_document(tick) for key, tick in self._pending_prices.items()}
        window, self._pending_prices, self._flush_task = PriceWindow(pending), {}, None
        published, self._pending_published = self._pending_published, []
        for client, mine in self._subscribed(lambda client: client.prices, window.select):
            client.offer_prices(mine)
        for published_at in published:
            observe_websocket(published_at)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        event(log, "live relay task failed", logging.ERROR, task=task.get_name(),
              error=f"{type(task.exception()).__name__}: {task.exception()}")


_relay: LiveRelay | None = None


def relay_status() -> dict:
    return _relay.status() if _relay else {"running": False, "subscribed": False, "relayed": 0, "skipped": 0,
                                           "clients": 0, "dropped_prices": 0, "closed_slow": 0, "slow_clients": []}


async def ensure_relay() -> LiveRelay:
    """Start the relay on first use and wait until it is subscribed, so no update after a snapshot is lost."""
    global _relay
    if _relay is None or _relay.task.done():
        _relay = LiveRelay(settings.REDIS_URL)
    await asyncio.wait_for(_relay.subscribed.wait(), SUBSCRIBE_WAIT_S)
    return _relay


async def subscribed_reply(request: PriceSubscription | SignalSubscription) -> dict:
    """The reply to a subscription: what it matches now, read after it took effect."""
    if isinstance(request, PriceSubscription):
        return {"kind": "subscribed", "to": "prices", "subscription": request.to_json(),
                "prices": [tick for tick in await store.prices() if request.matches(tick)]}
    matching = []
    for signal in await store.latest_signals(SNAPSHOT_SCAN):
        try:
            if request.matches(SignalFacts.of(signal)):
                matching.append(signal)
        except ValueError:
            continue  # not a signal: the live relay skips such a document too, and says so
    return {"kind": "subscribed", "to": "signals", "subscription": request.to_json(),
            "signals": matching[:SNAPSHOT_SIGNALS]}


class LiveConsumer(AsyncWebsocketConsumer):
    """Sends nothing until the client subscribes; then the reply (what matches now), then each matching update."""

    relay: LiveRelay | None = None
    client: LiveClient | None = None
    sender: asyncio.Task | None = None

    async def connect(self) -> None:
        try:
            relay = await ensure_relay()
        except (TimeoutError, *REDIS_ERRORS) as exc:
            event(log, "live socket refused: redis unavailable", logging.ERROR, error=str(exc) or type(exc).__name__)
            await self.close(code=1011)
            return
        await self.accept()
        host, port = self.scope.get("client") or ("?", 0)
        self.relay, self.client = relay, LiveClient(f"{host}:{port}")
        relay.add(self.client)
        self.sender = asyncio.create_task(self._send_all(self.client), name=f"ascep-live-send-{host}:{port}")
        self.sender.add_done_callback(_log_failure)

    async def disconnect(self, code: int) -> None:
        if self.relay and self.client:
            self.relay.remove(self.client)
        if self.sender:
            self.sender.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        client = self.client
        if client is None or client.closing is not None:
            return
        try:
            if text_data is None:
                raise ProtocolError("a binary frame: requests are JSON text")
            request = parse_request(text_data)
        except ProtocolError as exc:
            client.put(dumps(exc.reply()))
            return
        client.outbox.hold()  # the reply goes out before the updates that come while it is read
        if isinstance(request, PriceSubscription):
            client.prices = request
            client.outbox.clear_prices()  # Redis holds them already: the reply has those that match
        else:
            client.signals = request
        try:
            reply = await subscribed_reply(request)
        except REDIS_ERRORS as exc:
            event(log, "live socket closed: redis unavailable", logging.WARNING, error=str(exc) or type(exc).__name__)
            client.outbox.release(dumps({"kind": "error", "request": request.KIND, "field": None,
                                         "error": "redis unavailable"}))
            client.end(1011, drain=True)
            return
        client.outbox.release(dumps(reply))
        client.wake.set()

    async def _send_all(self, client: LiveClient) -> None:
        """The only task that writes to this socket: it waits on it, the relay never does."""
        try:
            while True:
                text = client.next_text()
                if text is not None:
                    await self.send(text_data=text)
                elif client.closing is not None:
                    await self.close(code=client.closing)
                    return
                else:
                    client.wake.clear()
                    await client.wake.wait()
        except OSError:
            return  # the socket is gone (uvicorn's ClientDisconnected): disconnect() is on its way
