"""Live updates: Redis pub/sub (what the job PUBLISHes) -> channel layer group -> each WebSocket.

One relay per process subscribes to ascep:live, however many browsers are open. Prices can come
thousands a second, so the relay coalesces them (newest tick per venue:symbol) and forwards at
most one prices message per PRICE_FLUSH_S; signals are rare and go through at once. Both leave with the
ISO times the JSON API gives (core/contracts/times.py), as the snapshot does.
"""
from __future__ import annotations

import asyncio
import logging

import orjson
import redis.asyncio as aioredis
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.backoff import Backoff
from core.contracts import redis_keys as keys
from core.contracts.times import signal_document, tick_document
from core.log import event
from dashboard import store

log = logging.getLogger(__name__)

GROUP = "live"
PRICE_FLUSH_S = 0.2
SNAPSHOT_SIGNALS = 50
SUBSCRIBE_WAIT_S = 5.0


class LiveRelay:
    def __init__(self, redis_url: str, flush_s: float = PRICE_FLUSH_S, max_backoff_s: float = 5.0) -> None:
        self.redis_url = redis_url
        self.flush_s = flush_s
        self.backoff = Backoff(initial_s=0.1, max_s=max_backoff_s, jitter=False)
        self.subscribed = asyncio.Event()
        self.relayed = 0
        self.skipped = 0
        self._layer = get_channel_layer()
        self._pending_prices: dict[str, dict] = {}
        self._flush_task: asyncio.Task | None = None
        self.task = asyncio.create_task(self._run(), name="ascep-live-relay")
        self.task.add_done_callback(_log_failure)

    def status(self) -> dict:
        return {"running": not self.task.done(), "subscribed": self.subscribed.is_set(),
                "relayed": self.relayed, "skipped": self.skipped}

    async def _run(self) -> None:
        """Resubscribe with backoff while Redis is away; the browsers keep their sockets."""
        attempt = 0
        while True:
            try:
                await self._relay()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self.subscribed.is_set():
                    attempt = 0  # it was working: a fresh outage starts the backoff over
                self.subscribed.clear()
                delay = self.backoff.delay(attempt)
                attempt += 1
                event(log, "live relay lost redis, resubscribing", logging.WARNING, error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)

    async def _relay(self) -> None:
        client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(keys.LIVE_CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self.subscribed.set()
                    elif message["type"] == "message":
                        await self._forward(message["data"])
        finally:
            await client.aclose()

    async def _forward(self, data: bytes) -> None:
        try:
            update = orjson.loads(data)
            kind = update["kind"]
            if kind == "prices":
                self._pending_prices.update({f"{t['venue']}:{t['symbol']}": t for t in update["data"]})
                if self._flush_task is None:
                    self._flush_task = asyncio.create_task(self._flush_prices_later())
                    self._flush_task.add_done_callback(_log_failure)
                return
            if kind != "signal":
                raise ValueError(f"unknown kind {kind!r}")
            shown = {**update, "data": signal_document(update["data"])}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self.skipped += 1
            event(log, "skipped malformed live message", logging.WARNING, channel=keys.LIVE_CHANNEL,
                  error=f"{type(exc).__name__}: {exc}", message=data[:200].decode(errors="replace"))
            return
        await self._send(orjson.dumps(shown).decode())

    async def _flush_prices_later(self) -> None:
        await asyncio.sleep(self.flush_s)
        ticks, self._pending_prices, self._flush_task = list(self._pending_prices.values()), {}, None
        await self._send(orjson.dumps({"kind": "prices", "data": [tick_document(t) for t in ticks]}).decode())

    async def _send(self, text: str) -> None:
        await self._layer.group_send(GROUP, {"type": "live.message", "text": text})
        self.relayed += 1


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        event(log, "live relay task failed", logging.ERROR, task=task.get_name(),
              error=f"{type(task.exception()).__name__}: {task.exception()}")


_relay: LiveRelay | None = None


def relay_status() -> dict:
    return _relay.status() if _relay else {"running": False, "subscribed": False, "relayed": 0, "skipped": 0}


async def ensure_relay() -> None:
    """Start the relay on first use and wait until it is subscribed, so no update after a snapshot is lost."""
    global _relay
    if _relay is None or _relay.task.done():
        _relay = LiveRelay(settings.REDIS_URL)
    await asyncio.wait_for(_relay.subscribed.wait(), SUBSCRIBE_WAIT_S)


async def snapshot() -> dict:
    return {"kind": "snapshot", "prices": await store.prices(),
            "signals": await store.latest_signals(SNAPSHOT_SIGNALS)}


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the group before reading the snapshot: an update racing the snapshot arrives after it, never lost."""

    groups = [GROUP]

    async def __call__(self, scope, receive, send) -> None:
        """Redis going away ends the socket with 1011 (the page reconnects) and one log line, not a traceback."""
        try:
            await super().__call__(scope, receive, send)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            event(log, "live socket closed: redis unavailable", logging.WARNING, error=str(exc) or type(exc).__name__)
            try:
                await send({"type": "websocket.close", "code": 1011})
            except (RuntimeError, OSError):
                pass  # the client is already gone

    async def connect(self) -> None:
        try:
            await ensure_relay()
            current = await snapshot()
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            event(log, "live socket refused: redis unavailable", logging.ERROR, error=str(exc) or type(exc).__name__)
            await self.close(code=1011)
            return
        await self.accept()
        await self.send(text_data=orjson.dumps(current).decode())

    async def live_message(self, message: dict) -> None:
        await self.send(text_data=message["text"])
