"""Rate limits counted in Redis, so that every dashboard process behind one address shares them.

A fixed window per limit and per client: the first request sets the counter to expire after the window,
every request increments it, in one MULTI, so no two processes lose a count. Neither django-ninja's
throttles (a history list read and written back through Django's cache: concurrent processes overwrite
each other's requests; and synchronous) nor django-ratelimit (a decorator for Django's own views, on the
synchronous cache API) count atomically from async views across processes; this is 20 lines.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from django.conf import settings

from core.contracts.redis_keys import rate_limit_key
from core.settings import RateLimit
from dashboard import store


class RateLimited(Exception):
    """Over a limit: a 429 naming it, with Retry-After."""

    def __init__(self, name: str, rate: RateLimit, retry_after_s: int) -> None:
        super().__init__(f"rate limit {name}: {rate.requests} per {rate.per_s} s; retry in {retry_after_s} s")
        self.name, self.retry_after_s = name, retry_after_s


async def hit(name: str, who: str) -> None:
    """Counts one request of `who` against the limit `name` (a field of dashboard.rate_limits); RateLimited
    when it is one too many."""
    rate: RateLimit = getattr(settings.RATE_LIMITS, name)
    key = rate_limit_key(name, who)
    async with store.client().pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=rate.per_s, nx=True)
        pipe.incr(key)
        pipe.pttl(key)
        _, count, left_ms = await pipe.execute()
    if count > rate.requests:
        raise RateLimited(name, rate, max(1, math.ceil(left_ms / 1000)))


def limited(name: str) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """For an async API view under @router.<method>: counts each request by whom the auth found (request.auth,
    a dashboard.access.Principal), after authentication, so refused requests use up nobody's allowance."""
    def decorate(view: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @wraps(view)
        async def counted(request, *args, **kwargs):
            await hit(name, request.auth.ident)
            return await view(request, *args, **kwargs)
        # ninja resolves the parameters' annotations in the globals of the function it is given: this module's,
        # where the view's schemas are unknown. Its signature, resolved where the view lives, tells them.
        counted.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
        return counted
    return decorate
