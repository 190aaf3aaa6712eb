"""Writes signals, latest prices and counters to Redis, idempotently by signal id.

Only the newest SIGNALS_KEPT signals are kept (the Parquet lake has them all). A replay or a
restart re-sends signal states; the Lua script below applies a state only if it is
newer than the stored one (by updated_at, then closed-after-open, then profit), and keeps the
first detected_at. So the dashboard never shows one opportunity twice or goes backwards.
While Redis is unreachable, writes retry with backoff and block: the job backs up, nothing drops.
Every message on ascep:live carries `published_at` (epoch ms), from which the dashboard measures the Redis ->
WebSocket latency (dashboard/latency.py).
"""
from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import TypeVar

import orjson
import redis

from core.backoff import Backoff, retry_forever
from core.clock import now_ms
from core.contracts import redis_keys as keys
from core.contracts.signal import public_view
from core.contracts.tick import Tick
from core.log import event
from core.stack_file import redacted

log = logging.getLogger(__name__)
T = TypeVar("T")

UPSERT_SIGNAL = """
local old = redis.call('GET', KEYS[1])
local doc = ARGV[1]
if old then
  local ou = tonumber(string.match(old, '"updated_at":(%d+)'))
  local oc = string.find(old, '"status":"closed"') and 1 or 0
  local op = tonumber(string.match(old, '"profit_bps":([-%d%.eE+]+)'))
  local nu, nc, np = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if nu < ou or (nu == ou and (nc < oc or (nc == oc and np <= op))) then return 0 end
  local detected = string.match(old, '"detected_at":(%d+)')
  if detected then doc = string.gsub(doc, '"detected_at":%d+', '"detected_at":' .. detected, 1) end
else
  redis.call('HINCRBY', KEYS[4], 'signals:' .. ARGV[6], 1)
end
redis.call('SET', KEYS[1], doc)
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[8])
if excess >= 100 then  -- keep the newest ARGV[8] signals; trim in chunks, not on every write
  for _, old_id in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    redis.call('DEL', ARGV[9] .. old_id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'signal', doc)
redis.call('PUBLISH', KEYS[5], '{"kind":"signal","published_at":' .. ARGV[10] .. ',"data":' .. doc .. '}')
return 1
"""


_writers = itertools.count()


def latency_writer(role: str) -> str:
    """A name of its own for one operator instance's latencies (ascep:latency:job:<role>:<host>:<pid>:<n>): PyFlink's
    thread mode cannot tell a function its subtask index (Flink 2 moved it off the RuntimeContext)."""
    return f"job:{role}:{socket.gethostname()}:{os.getpid()}:{next(_writers)}"


class RedisSink:
    def __init__(self, url: str, max_backoff_s: float = 5.0) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.backoff = Backoff(initial_s=0.1, max_s=max_backoff_s, jitter=False)
        self._upsert = self.client.register_script(UPSERT_SIGNAL)
        self._raise_ends = self.client.register_script(keys.RAISE_ENDS)

    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        def warn(exc: BaseException, delay: float) -> None:
            event(log, "redis unavailable, retrying", logging.WARNING, what=what, url=redacted(self.url),
                  error=str(exc), retry_in_s=delay)
        transient = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
        return retry_forever(fn, transient, self.backoff, warn)

    def write_signals(self, signals: Iterable[dict]) -> int:
        """Upsert each signal state; returns how many changed what Redis holds."""
        pipe_args = []
        published_at = now_ms()
        for signal in signals:
            doc = orjson.dumps(public_view(signal)).decode()
            pipe_args.append(([keys.signal_key(signal["id"]), keys.SIGNALS_INDEX, keys.SIGNALS_STREAM, keys.COUNTERS,
                               keys.LIVE_CHANNEL],
                              [doc, signal["updated_at"], 1 if signal["status"] == "closed" else 0,
                               repr(float(signal["profit_bps"])), signal["event_time"], signal["type"], signal["id"],
                               keys.SIGNALS_KEPT, keys.signal_key(""), published_at]))
        if not pipe_args:
            return 0

        def run():
            pipe = self.client.pipeline(transaction=False)
            for k, a in pipe_args:
                self._upsert(keys=k, args=a, client=pipe)
            return sum(int(x) for x in pipe.execute())

        return self._retrying("signals", run)

    def raise_topic_ends(self, ends: dict[str, int]) -> None:
        """The offsets after the records the job's producer had acknowledged (TOPIC_ENDS, never lowered)."""
        if ends:
            args = [value for item in ends.items() for value in item]
            self._retrying("topic ends", lambda: self._raise_ends(keys=[keys.TOPIC_ENDS], args=args))

    def report_progress(self, field: str, doc: bytes) -> None:
        """One reader's place (PROGRESS); monitoring only, so Redis away costs a warning, not a blocked reader."""
        try:
            self.client.hset(keys.PROGRESS, field, doc)
        except redis.RedisError as exc:
            event(log, "could not report progress", logging.WARNING, field=field, url=redacted(self.url),
                  error=str(exc))

    def report_latency(self, writer: str, docs: dict[str, bytes]) -> None:
        """One writer's stage latencies (core/latency.py); monitoring only, like report_progress."""
        name = keys.latency_key(writer)
        try:
            self.client.pipeline(transaction=False).hset(name, mapping=docs).expire(name, keys.LATENCY_TTL_S).execute()
        except redis.RedisError as exc:
            event(log, "could not report latencies", logging.WARNING, writer=writer, url=redacted(self.url),
                  error=str(exc))

    def announce_job(self) -> None:
        """Tells `ascep up` (and the health endpoint) that the job is running and can write."""
        self._retrying("job status", lambda: self.client.hset(keys.JOB, "started_at", now_ms()))

    def write_rule_stats(self, stats: dict[str, dict], part: int = 0) -> None:
        """Replaces one engine's per-rule counters (each detection bucket has its own: `part`), so a deleted
        rule's counters disappear too."""
        docs = {rule_id: orjson.dumps(values) for rule_id, values in stats.items()}
        name = keys.rule_stats_key(part)

        def run():
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(name)
            if docs:
                pipe.hset(name, mapping=docs)
            pipe.execute()

        self._retrying("rule stats", run)

    def write_rules_taken(self, taken: dict[str, bytes | None]) -> None:
        """Mirrors the rules in force, so they outlive a `rules` topic kept in memory; None deletes."""
        kept = {rule_id: value for rule_id, value in taken.items() if value is not None}
        gone = [rule_id for rule_id, value in taken.items() if value is None]

        def run():
            pipe = self.client.pipeline(transaction=True)
            if kept:
                pipe.hset(keys.RULES_IN_FORCE, mapping=kept)
            if gone:
                pipe.hdel(keys.RULES_IN_FORCE, *gone)
            pipe.execute()

        self._retrying("rules in force", run)

    def write_prices(self, latest: Iterable[Tick], ticks_seen: int = 0, deadletters: int = 0,
                     counters: dict[str, int] | None = None) -> None:
        """One round trip per batch: the newest tick per venue:symbol, counters, and one live message."""
        newest = {t.key: t for t in latest}  # a venue:symbol given twice: the last one wins
        if not newest and not ticks_seen and not deadletters and not counters:
            return
        docs = {keys.price_key(t.venue, t.symbol): orjson.dumps(t.to_json_dict()) for t in newest.values()}

        def run():
            pipe = self.client.pipeline(transaction=False)
            if docs:
                pipe.mset(docs)
                pipe.sadd(keys.PRICES_INDEX, *newest)
                pipe.publish(keys.LIVE_CHANNEL, b'{"kind":"prices","published_at":%d,"data":[%b]}'
                             % (now_ms(), b",".join(docs.values())))
            if ticks_seen:
                pipe.hincrby(keys.COUNTERS, "ticks", ticks_seen)
            if deadletters:
                pipe.hincrby(keys.COUNTERS, "deadletters", deadletters)
            for name, count in (counters or {}).items():
                pipe.hincrby(keys.COUNTERS, name, count)
            pipe.execute()

        self._retrying("prices", run)
