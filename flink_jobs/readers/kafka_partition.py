"""Reads Kafka from Python inside the job (Flink's KafkaSource needs a connector jar we cannot install).

A reader is keyed by partition, and a pulse stream gives each key a turn. On each turn it reads
the next batch from the offset held in Flink keyed state and stores the new offset in the same
call that emits the batch's results. A checkpoint therefore captures offsets and downstream state
consistently, and a restore resumes exactly where the state says. A reader may read the same
partition of further topics on the same turns (the tick reader: `trades` beside `ticks`), each
with its offset in keyed state.

Each reader reports where it is to Redis (PROGRESS, per STAGE, topic and partition) about once a
second: health and a clean stop compare that with the topics' ends.
"""
from __future__ import annotations

import logging

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from clients.kafka import kafka_config
from core.clock import now_ms
from core.contracts.redis_keys import progress_field
from core.log import event
from core.progress import ProgressClock
from core.settings import KafkaSecuritySettings
from flink_jobs.sinks.redis_sink import RedisSink

log = logging.getLogger(__name__)


def written_ms(message) -> int | None:
    """When the record was written (the producer's create time, or the broker's append time), as the log keeps
    it, so a decision made on it is the same on every re-read; None when the record carries no timestamp."""
    kind, ms = message.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE or ms <= 0 else ms


class PartitionReading:
    """Kafka reading with the offset in keyed state; subclasses say what a batch of records becomes.
    A mixin, so that a reader may be a keyed process function or, to hear the rules, a keyed broadcast one."""

    STAGE = "read"  # its name in PROGRESS

    def __init__(self, bootstrap: str, security: KafkaSecuritySettings, topic: str, poll_batch: int, fetch_wait_ms: int,
                 redis_url: str | None = None, also: tuple[str, ...] = ()) -> None:
        """`also`: topics read at the same partition number as `topic`, one consumer for all; handle() gets
        their records after `topic`'s."""
        self.bootstrap = bootstrap
        self.security = security
        self.topic = topic
        self.topics = (topic, *also)
        self.poll_batch = poll_batch
        self.fetch_wait_ms = fetch_wait_ms
        self.redis_url = redis_url

    def open(self, ctx: RuntimeContext) -> None:
        # `topic`'s under the name it always had, so that older checkpoints restore
        self.next_offsets = [ctx.get_state(ValueStateDescriptor("next_offset" if i == 0 else f"next_offset {topic}",
                                                                Types.LONG())) for i, topic in enumerate(self.topics)]
        self.consumers: dict[int, Consumer] = {}
        self.redis = RedisSink(self.redis_url) if self.redis_url else None
        self.progress: dict[tuple[str, int], ProgressClock] = {}

    def close(self) -> None:
        for consumer in self.consumers.values():
            consumer.close()

    def _consumer(self, partition: int) -> Consumer:
        """One consumer per partition (of every topic read), positioned from keyed state when the operator
        (re)starts; a partition with no offset in state yet is read from its beginning."""
        consumer = self.consumers.get(partition)
        if consumer is None:
            consumer = Consumer(kafka_config(self.bootstrap, self.security, {
                "group.id": "ascep-job", "enable.auto.commit": False, "fetch.wait.max.ms": self.fetch_wait_ms,
                "auto.offset.reset": "earliest", "queued.max.messages.kbytes": 65536,
            }))
            offsets = [state.value() for state in self.next_offsets]
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING if offset is None else offset)
                             for topic, offset in zip(self.topics, offsets)])
            self.consumers[partition] = consumer
        return consumer

    def process_element(self, pulse, ctx):
        partition = ctx.get_current_key()
        self.turn = ctx  # what handle() may read besides the records: the broadcast rules, for one
        read: dict[str, list] = {topic: [] for topic in self.topics}
        for message in self._consumer(partition).consume(self.poll_batch, timeout=0.002):
            error = message.error()
            if error is None:
                read[message.topic()].append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                event(log, "kafka read error", logging.WARNING, topic=message.topic(), partition=partition,
                      error=str(error))
        batches = list(read.values())
        if any(batches):
            yield from self.handle(partition, *batches)
        for topic, state, records in zip(self.topics, self.next_offsets, batches):
            durable = self.make_durable(topic, partition, records[-1].offset() if records else None)
            if durable is not None:
                state.update(durable + 1)
            if self.redis is not None:
                report = self.progress.setdefault((topic, partition), ProgressClock()).poll(state.value() or 0,
                                                                                            now_ms())
                if report is not None:
                    self.redis.report_progress(progress_field(self.STAGE, topic, partition), report.to_json())

    def make_durable(self, topic: str, partition: int, last_read: int | None) -> int | None:
        """The offset up to which what was read of a topic is durable, so keyed state may advance to it. By
        default the batch's results are emitted in the same call, which a checkpoint captures with the offset."""
        return last_read

    def handle(self, partition: int, records: list, *more: list):
        """`more`: the records of the topics `also` names, in that order."""
        raise NotImplementedError


class PartitionReader(PartitionReading, KeyedProcessFunction):
    """A partition reader as a keyed process function: the pulses keyed by partition drive it."""
