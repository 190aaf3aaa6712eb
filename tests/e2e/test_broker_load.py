"""The job keeps reading once the embedded broker holds many record batches.

Tansu (memory storage) lists every batch of a partition on every fetch. With the 5 ms fetch wait the
job once asked for, the broker's CPU grew with the batches it held until the readers got nothing at
all: the stack froze after 4-5 minutes of the simulated market (about 12,000 one-tick batches) while
health said "ok". This drives the batch count directly instead of waiting minutes for it.
"""
from __future__ import annotations

from confluent_kafka import Producer

from core.clock import now_ms

BATCHES = 30_000


def one_tick_batches(bootstrap: str, count: int) -> None:
    """`count` ticks, each in a record batch of its own, as a connector at a few ticks a second writes them:
    a batch holds one message (batch.num.messages), and a produce request one batch of a partition, so
    pipelined requests give one batch a tick without waiting for each acknowledgement in turn. Idempotent, as the
    product's producers are: a loaded broker times requests out, and a plain producer's retries wrote ticks twice
    (a CI run beside a soak counted 30,002)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1,
                         "enable.idempotence": True})
    start = now_ms() - count
    for i in range(count):
        value = (b'{"venue":"binance","symbol":"BTC/USDT","bid":100.0,"ask":100.1,"bid_size":1.0,'
                 b'"ask_size":1.0,"ts":%d}' % (start + i))
        producer.produce("ticks", value, key=b"binance:BTC/USDT")
        producer.poll(0)
    assert producer.flush(400) == 0  # idempotent: at most 5 requests in flight, slow on a loaded broker (CI: >120 s)
    del producer


def test_the_job_keeps_reading_a_broker_that_holds_many_batches(start_stack):
    stack = start_stack("--source", "none")
    one_tick_batches(stack.info["kafka"], BATCHES)
    assert stack.wait_counter("ticks", BATCHES, timeout=180) == BATCHES
