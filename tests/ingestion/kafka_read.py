"""Reading a test topic back from the broker, for checking exactly what a producer wrote."""
from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from core.contracts.tick import watermark_in


def consume(kafka: str, topic: str, count: int, timeout_s: float = 15.0, partitions: int = 1) -> list[bytes]:
    """Everything in `topic`: waits for `count` messages, then half a second more so extras would show."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                if watermark_in(msg.value()) is None:  # producers' event-time promises are not data
                    values.append(msg.value())
            elif msg is None and len(values) >= count:
                break
    finally:
        consumer.close()
    return values
