"""Run a simulated market live: pace its ticks to the wall clock and produce them to Kafka.

The markets are pure and run at any speed; here event time is pinned to now, so a tick is sent
when the clock reaches its timestamp and the stack sees what a live feed would look like.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from core.clock import now_ms
from core.contracts.tick import Tick
from core.contracts.topics import TICKS_TOPIC
from core.log import event
from core.settings import KafkaSecuritySettings
from ingestion.producer import TickProducer, Topics

from .fx import fx_market
from .market import SimulatedMarket
from .merged import MergedMarkets, crypto_and_fx

log = logging.getLogger(__name__)

MARKETS: dict[str, Callable[..., SimulatedMarket | MergedMarkets]] = {
    "sim": SimulatedMarket, "fx": fx_market, "sim+fx": crypto_and_fx}


def paced(ticks: Iterator[Tick], stop: threading.Event, clock: Callable[[], float] = time.time) -> Iterator[Tick]:
    """Yield each tick once the clock reaches its timestamp; end when `stop` is set."""
    for tick in ticks:
        wait_s = tick.ts / 1000.0 - clock()
        if wait_s > 0 and stop.wait(wait_s):
            return
        if stop.is_set():
            return
        yield tick


def run(bootstrap: str, security: KafkaSecuritySettings, rate: float = 50.0, seed: int = 0,
        stop_event: threading.Event | None = None, market: str = "sim", topic: str = TICKS_TOPIC,
        ends_to: str | None = None, **options) -> int:
    """Produce the `market` (a name in MARKETS) until `stop_event` is set; return how many ticks were sent.

    `ends_to` is a Redis URL for the topic ends (TickProducer); `options` go to the market (opportunity_every_s,
    venues, symbols, ...).
    """
    if market not in MARKETS:
        raise ValueError(f"unknown simulated market {market!r}; choose one of {sorted(MARKETS)}")
    stop = stop_event or threading.Event()
    simulated = MARKETS[market](seed=seed, rate=rate, **options)
    event(log, "simulated market started", market=market, rate=rate, seed=seed, topic=topic)
    with TickProducer(bootstrap, security, topics=Topics(ticks=topic), ends_to=ends_to) as producer:
        for tick in paced(simulated.ticks(now_ms()), stop):
            producer.tick(tick, now_ms())  # the simulated exchange's clock is ours: its latency is the pacing's
        left = producer.flush(10)
    if left or producer.counts.failed:
        raise RuntimeError(f"Kafka at {bootstrap} did not take {left + producer.counts.failed} of "
                           f"{producer.counts.ticks} ticks: {producer.counts.errors[:1] or 'flush timed out'}")
    sent = producer.counts.ticks
    event(log, "simulated market stopped", market=market, sent=sent, planted=len(simulated.planted))
    return sent
