"""Reads what the Flink job's RedisSink writes (key layout in core/contracts/redis_keys.py); never writes it (its
one pool also counts the rate limits, dashboard/ratelimit.py).

A stored document that does not decode is skipped with a warning naming its key, so one bad
entry cannot blank the whole dashboard. Documents leave here with `<field>_iso` beside their epoch-ms
times (core/contracts/times.py), so every view serves the same.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.conf import settings

from core.contracts import redis_keys as keys
from core.contracts.times import iso_or_none, signal_document, tick_document, with_iso
from core.health import Checkpoint, Connector, HealthFacts
from core.latency import Histogram, read_summary
from core.log import event
from core.progress import Progress, read_ends, read_progress
from core.stack_file import newest_checkpoint

log = logging.getLogger(__name__)

_client: aioredis.Redis | None = None
SCAN_BATCH = 4 * keys.SIGNALS_KEPT
# the epoch-ms fields of a connector's metrics snapshot (ingestion/metrics.py)
INGEST_TIMES = ("last_frame_ms", "heartbeat_ms")


class UnreadableDocument(ValueError):
    """A stored document that is not valid JSON; the message names its key."""


def client() -> aioredis.Redis:
    """One pool per process: the server runs a single event loop."""
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    return _client


def _decode(name: str, doc: bytes | None) -> dict[str, Any] | None:
    """None for a missing document (deleted between reading the index and the documents) or an undecodable one."""
    if doc is None:
        return None
    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError as exc:
        event(log, "skipped undecodable document", logging.WARNING, key=name, error=str(exc))
        return None


def _decode_all(names: list[str], docs: list[bytes | None]) -> list[dict[str, Any]]:
    return [decoded for name, doc in zip(names, docs) if (decoded := _decode(name, doc)) is not None]


async def latest_signals(limit: int, readable: bool = True) -> list[dict[str, Any]]:
    """Newest first by event_time (the index score); `readable`: with the ISO times (figures need none)."""
    ids = [i.decode() for i in await client().zrevrange(keys.SIGNALS_INDEX, 0, limit - 1)]
    if not ids:
        return []
    names = [keys.signal_key(i) for i in ids]
    signals = _decode_all(names, await client().mget(names))
    return [signal_document(s) for s in signals] if readable else signals


async def one_signal(signal_id: str) -> dict[str, Any] | None:
    key = keys.signal_key(signal_id)
    doc = await client().get(key)
    if doc is None:
        return None
    try:
        return signal_document(orjson.loads(doc))
    except orjson.JSONDecodeError as exc:
        raise UnreadableDocument(f"stored document {key} is not valid JSON: {exc}") from None


async def signal_states(signal_id: str, scan: int) -> list[dict[str, Any]]:
    """Every state of the signal that the bounded stream `ascep:signals:stream` still holds, oldest first: the
    stream's newest `scan` entries are read, a page at a time, and a state is decoded only when its bytes name
    the signal's id."""
    needle = orjson.dumps({"id": signal_id})[1:-1]  # "id":"<id>", as the sink's orjson wrote it
    states: list[dict[str, Any]] = []
    newest, read = b"+", 0
    while read < scan:
        page = await client().xrevrange(keys.SIGNALS_STREAM, max=newest, min="-", count=min(1000, scan - read))
        for entry_id, fields in page:
            doc = fields.get(b"signal", b"")
            if needle in doc and (state := _decode(f"{keys.SIGNALS_STREAM} entry {entry_id.decode()}", doc)):
                if state.get("id") == signal_id:
                    states.append(signal_document(state))
        read += len(page)
        if len(page) < 1000:
            break
        newest = b"(" + page[-1][0]
    return states[::-1]


async def prices() -> list[dict[str, Any]]:
    """Latest tick per venue:symbol, ordered by symbol then venue so one symbol's venues sit together."""
    pairs = sorted(p.decode() for p in await client().smembers(keys.PRICES_INDEX))
    if not pairs:
        return []
    names = [keys.price_key(*pair.split(":", 1)) for pair in pairs]
    ticks = _decode_all(names, await client().mget(names))
    return sorted((tick_document(t) for t in ticks), key=lambda t: (t["symbol"], t["venue"]))


async def counters() -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await client().hgetall(keys.COUNTERS)).items()}


async def overview() -> dict[str, int | None]:
    """How much is stored, and how recent the newest signal is: cheap, for the health check."""
    pipe = client().pipeline(transaction=False)
    pipe.zcard(keys.SIGNALS_INDEX)
    pipe.scard(keys.PRICES_INDEX)
    pipe.zrevrange(keys.SIGNALS_INDEX, 0, 0, withscores=True)
    signals_stored, prices_stored, newest = await pipe.execute()
    newest_time = int(newest[0][1]) if newest else None
    return {"signals_stored": signals_stored, "prices_stored": prices_stored,
            "newest_signal_event_time": newest_time, "newest_signal_event_time_iso": iso_or_none(newest_time)}


def _readable(read, raw: dict[bytes, bytes]) -> dict:
    """`read` (read_progress, read_ends) entry by entry, so one bad entry is skipped with a warning, not fatal."""
    out = {}
    for name, value in raw.items():
        try:
            out.update(read({name.decode(): value}))
        except ValueError as exc:
            event(log, "skipped unreadable entry", logging.WARNING, error=str(exc))
    return out


def _checkpoint(folder: Path) -> Checkpoint | None:
    newest = newest_checkpoint(folder)
    if newest is None:
        return None
    return Checkpoint(int(newest[0].name.removeprefix("chk-")), int(newest[1] * 1000))


async def health_facts(now: int, ingest: list[dict[str, Any]], checkpoints: Path | None) -> HealthFacts:
    """What the job, the producers and the connectors last reported, for core.health.assess: a few reads,
    since /api/health is polled."""
    pipe = client().pipeline(transaction=False)
    pipe.hgetall(keys.PROGRESS)
    pipe.hgetall(keys.TOPIC_ENDS)
    pipe.hget(keys.JOB, "started_at")
    raw_progress, raw_ends, started_at = await pipe.execute()
    progress: dict[tuple[str, str, int], Progress] = _readable(read_progress, raw_progress)
    newest_tick: dict[str, int] = {}
    for tick in await prices():
        newest_tick[tick["venue"]] = max(newest_tick.get(tick["venue"], tick["ts"]), tick["ts"])
    connectors = {str(m["venue"]): Connector(bool(m.get("connected")), m.get("last_frame_ms")) for m in ingest}
    checkpoint = None if checkpoints is None else await asyncio.to_thread(_checkpoint, checkpoints)
    return HealthFacts(now=now, progress=progress, ends=_readable(read_ends, raw_ends), newest_tick=newest_tick,
                       connectors=connectors, checkpoints_known=checkpoints is not None, checkpoint=checkpoint,
                       job_started_at=int(started_at) if started_at else None)


async def rule_stats() -> list[dict[str, Any]]:
    """The job's per-rule counters, one dict per rule with its id, ordered by id: summed over the rule
    engines of the detection buckets when the job is scaled out (each counts the keys routed to it)."""
    redis = client()
    names = [keys.RULE_STATS, *sorted([name.decode() async for name in redis.scan_iter(match=f"{keys.RULE_STATS}:*")])]
    merged: dict[str, dict[str, Any]] = {}
    for name in names:
        for rule_id, doc in sorted((k.decode(), v) for k, v in (await redis.hgetall(name)).items()):
            stats = _decode(f"{name} field {rule_id}", doc)
            if stats is not None:
                merged[rule_id] = _summed(merged.get(rule_id), stats)
    return [{"rule_id": rule_id, **merged[rule_id]} for rule_id in sorted(merged)]


def _summed(into: dict[str, Any] | None, stats: dict[str, Any]) -> dict[str, Any]:
    """Counters add up; a version or an error is the first engine's that has one."""
    if into is None:
        return dict(stats)
    for name, value in stats.items():
        held = into.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(held, (int, float)):
            into[name] = held + value
        elif held is None:
            into[name] = value
    return into


def _number_or_text(raw: bytes) -> int | float | str:
    """Redis hashes hold text: give the snapshot's counters and rates back as the numbers they were."""
    text = raw.decode()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


async def ingest_metrics() -> list[dict[str, Any]]:
    """The connectors' latest metrics snapshots, ordered by venue; a hash expires when its connector dies.

    The connectors keep no index of their hashes, so this scans; a COUNT above the ~10,000 signal keys
    makes that one round trip, not a hundred, on every health poll.
    """
    pattern = keys.ingest_key("*")
    names = sorted([k.decode() async for k in client().scan_iter(match=pattern, count=SCAN_BATCH)])
    pipe = client().pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    snapshots = await pipe.execute() if names else []
    return [with_iso({k.decode(): _number_or_text(v) for k, v in snapshot.items()}, INGEST_TIMES)
            for snapshot in snapshots if snapshot]


async def latency_summaries() -> dict[str, dict[str, tuple[int, Histogram]]]:
    """writer -> stage -> (at, histogram) of every latency writer's hash (core/latency.py); an entry that does not
    read is skipped with a warning naming it. Found by a scan, as the connectors' hashes are."""
    prefix = keys.latency_key("")
    names = sorted([k.decode() async for k in client().scan_iter(match=f"{prefix}*", count=SCAN_BATCH)])
    pipe = client().pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    out: dict[str, dict[str, tuple[int, Histogram]]] = {}
    for name, fields in zip(names, await pipe.execute() if names else []):
        for stage, doc in fields.items():
            try:
                out.setdefault(name.removeprefix(prefix), {})[stage.decode()] = read_summary(
                    f"{name} field {stage.decode()}", doc)
            except ValueError as exc:
                event(log, "skipped unreadable entry", logging.WARNING, error=str(exc))
    return out
