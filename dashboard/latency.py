"""The Redis -> WebSocket stage, measured in this process, and the report /api/latency gives.

The relay (dashboard/live.py) calls observe_websocket() when a live message has gone to the sockets, with the
`published_at` the job's sink put in it. That window lives in this process only (the dashboard writes nothing to
Redis): with several dashboard processes, each reports its own relay beside every writer's summaries in Redis.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any

from core.latency import Histogram, LatencyWindow, stage_report
from dashboard import store

WRITER = f"dashboard:{socket.gethostname()}:{os.getpid()}"
_websocket = LatencyWindow()


def observe_websocket(published_at_ms: Any, count: int = 1) -> None:
    """A live message published at `published_at_ms` (epoch ms), or `count` coalesced ones, just went to the
    sockets. Anything but a number (a message from a job that does not stamp them) is not a sample."""
    if type(published_at_ms) not in (int, float):
        return
    now_s = time.time()
    _websocket.add(now_s * 1000 - published_at_ms, now_s, count)


def own_summaries(now_ms: int) -> dict[str, dict[str, tuple[int, Histogram]]]:
    """This process's relay as one more writer, in the form store.latency_summaries() gives the others."""
    own = _websocket.histogram(now_ms / 1000)
    return {WRITER: {"redis_websocket": (now_ms, own)}} if own else {}


async def report(now_ms: int) -> list[dict[str, Any]]:
    """Every stage over the last minute: the writers' summaries in Redis merged, this relay's included."""
    return stage_report({**await store.latency_summaries(), **own_summaries(now_ms)}, now_ms)
