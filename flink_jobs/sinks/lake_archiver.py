"""Archives the `ticks` and `signals` topics into the Parquet lake, exactly once, as Kafka Connect's S3 sink does.

PyFlink offers Python no checkpoint hooks, so rows buffered in memory at a checkpoint would be lost
by a crash. The archiver therefore keeps in keyed state only the offset up to which the lake is
durable (it advances after each flush), not the offset it has read. After a restore it re-reads
Kafka from there, and the lake writer's deterministic object names make the rewrite an overwrite.
The names carry the topic's id, looked up when the job is built, so a topic created again (offsets
from 0 again) writes new objects beside the old ones.
"""
from __future__ import annotations

import logging
import time

import orjson

from core.clock import now_ms
from core.contracts.tick import InvalidTick, check_not_ahead, decode_tick
from core.log import event
from core.settings import KafkaSecuritySettings
from flink_jobs.readers.kafka_partition import PartitionReader, written_ms
from lake.layout import SIGNALS, TICKS
from lake.storage import open_lake
from lake.writer import LakeWriter

log = logging.getLogger(__name__)


class LakeArchiver(PartitionReader):
    STAGE = "lake"  # its PROGRESS `next` is the offset up to which the lake is durable

    def __init__(self, bootstrap: str, security: KafkaSecuritySettings, topic: str, topic_id: str, kind: str,
                 lake_uri: str, s3_endpoint: str | None, lake_options: dict, flush_every_s: float, poll_batch: int,
                 fetch_wait_ms: int, max_future_skew_ms: int, redis_url: str | None = None) -> None:
        if kind not in (TICKS, SIGNALS):
            raise ValueError(f"unknown lake kind {kind!r}")
        super().__init__(bootstrap, security, topic, poll_batch, fetch_wait_ms, redis_url)
        self.topic_id = topic_id
        self.kind = kind
        self.lake_uri = lake_uri
        self.s3_endpoint = s3_endpoint
        self.lake_options = lake_options
        self.flush_every_s = flush_every_s
        self.max_future_skew_ms = max_future_skew_ms

    def open(self, ctx) -> None:
        super().open(ctx)
        self.writer = LakeWriter(open_lake(self.lake_uri, self.s3_endpoint), topic_id=self.topic_id,
                                 **self.lake_options)
        self.last_read: dict[int, int] = {}
        self.flushed: dict[int, int] = {}
        self.flush_due: dict[int, float] = {}

    def close(self) -> None:
        super().close()
        self.writer.close()

    def handle(self, partition: int, records: list):
        if self.kind == TICKS:
            for message in records:
                written = written_ms(message)
                try:
                    tick = check_not_ahead(decode_tick(message.value()), now_ms() if written is None else written,
                                           self.max_future_skew_ms)
                except InvalidTick:
                    continue  # the tick reader dead-letters it; the lake holds valid ticks only
                self.writer.add_ticks(partition, message.offset(), (tick,))
        else:
            for message in records:
                self.writer.add_signals(partition, message.offset(), (orjson.loads(message.value()),))
        self.last_read[partition] = records[-1].offset()
        return ()

    def make_durable(self, partition: int, last_read: int | None) -> int | None:
        """Flush every `flush_every_s` per partition; only then may the state offset move."""
        now = time.monotonic()
        due = self.flush_due.setdefault(partition, now + self.flush_every_s)
        read = self.last_read.get(partition)
        if read is None or now < due or self.flushed.get(partition) == read:
            return None
        self.writer.flush(partition, read)
        self.flushed[partition] = read
        self.flush_due[partition] = now + self.flush_every_s
        event(log, "lake flushed", kind=self.kind, partition=partition, upto=read)
        return read
