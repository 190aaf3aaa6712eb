"""One backoff policy for everything that waits out an outage: connectors, the sinks, the lake, the live relay."""
from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Backoff:
    """Exponential delays up to `max_s`. Jitter keeps many clients from reconnecting in lockstep after an
    outage; a single writer that must resume as soon as it can goes without."""

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (0 for the first)."""
        base = min(self.max_s, self.initial_s * 2.0 ** attempt)
        return base * self.rng.uniform(0.5, 1.0) if self.jitter else base


def retry_forever(fn: Callable[[], T], transient: tuple[type[BaseException], ...], backoff: Backoff,
                  on_retry: Callable[[BaseException, float], None]) -> T:
    """fn(), retried after each `transient` error until it succeeds: the caller blocks (backpressure) and
    drops nothing. `on_retry(error, delay)` is told before each wait, to log it."""
    for attempt in itertools.count():
        try:
            return fn()
        except transient as exc:
            delay = backoff.delay(attempt)
            on_retry(exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
