"""Archives the `ticks` (with the same partition of `trades`) and `signals` topics into the Parquet lake, exactly
once, as Kafka Connect's S3 sink does.

PyFlink offers Python no checkpoint hooks, so rows buffered in memory at a checkpoint would be lost
by a crash. The archiver therefore keeps in keyed state only the offset up to which the lake is
durable (it advances after each flush), not the offset it has read. After a restore it re-reads
Kafka from there, and the lake writer's deterministic object names make the rewrite an overwrite.
The names carry the topic's id, looked up when the job is built, so a topic created again (offsets
from 0 again) writes new objects beside the old ones.

Trades are archived by the ticks' archiver, not an operator of their own: one more operator would
change the generated ids of those after it, and no checkpoint of an earlier job would restore.
"""
from __future__ import annotations

import logging
import time

import orjson

from core.clock import now_ms
from core.contracts.tick import InvalidTick, check_not_ahead, decode_tick
from core.contracts.trade import decode_trade
from core.log import event
from core.settings import KafkaSecuritySettings
from flink_jobs.readers.kafka_partition import PartitionReader, written_ms
from lake.layout import SIGNALS, TICKS, TRADES
from lake.storage import open_lake
from lake.writer import LakeWriter

log = logging.getLogger(__name__)


class LakeArchiver(PartitionReader):
    STAGE = "lake"  # its PROGRESS `next` is the offset up to which the lake is durable

    def __init__(self, bootstrap: str, security: KafkaSecuritySettings, topic: str, topic_id: str, kind: str,
                 lake_uri: str, s3_endpoint: str | None, lake_options: dict, flush_every_s: float, poll_batch: int,
                 fetch_wait_ms: int, max_future_skew_ms: int, redis_url: str | None = None,
                 trades: tuple[str, str] | None = None) -> None:
        """`trades`: (topic, topic id) of the trades, archived beside the ticks (kind ticks only)."""
        if kind not in (TICKS, SIGNALS) or (trades is not None and kind != TICKS):
            raise ValueError(f"unknown lake kind {kind!r}" if kind not in (TICKS, SIGNALS)
                             else "only the ticks' archiver archives trades")
        super().__init__(bootstrap, security, topic, poll_batch, fetch_wait_ms, redis_url,
                         () if trades is None else (trades[0],))
        self.topic_ids = {topic: topic_id, **({} if trades is None else {trades[0]: trades[1]})}
        self.kind = kind
        self.lake_uri = lake_uri
        self.s3_endpoint = s3_endpoint
        self.lake_options = lake_options
        self.flush_every_s = flush_every_s
        self.max_future_skew_ms = max_future_skew_ms

    def open(self, ctx) -> None:
        super().open(ctx)
        lake = open_lake(self.lake_uri, self.s3_endpoint)
        # one writer a topic: a topic's id names its objects
        self.writers = {topic: LakeWriter(lake, topic_id=topic_id, **self.lake_options,
                                          read_with=None if topic == self.topic else self.topic_ids[self.topic])
                        for topic, topic_id in self.topic_ids.items()}
        self.last_read: dict[tuple[str, int], int] = {}
        self.flushed: dict[tuple[str, int], int] = {}
        self.flush_due: dict[tuple[str, int], float] = {}

    def close(self) -> None:
        super().close()
        for writer in self.writers.values():
            writer.close()

    def handle(self, partition: int, records: list, *trade_records: list):
        writer = self.writers[self.topic]
        if self.kind == TICKS:
            for message in records:
                tick = self._valid(decode_tick, message)
                if tick is not None:
                    writer.add_ticks(partition, message.offset(), (tick,))
        else:
            for message in records:
                writer.add_signals(partition, message.offset(), (orjson.loads(message.value()),))
        for topic, read in zip(self.topics[1:], trade_records):
            for message in read:
                trade = self._valid(decode_trade, message)
                if trade is not None:
                    self.writers[topic].add_trades(partition, message.offset(), (trade,))
        for topic, read in zip(self.topics, (records, *trade_records)):
            if read:
                self.last_read[(topic, partition)] = read[-1].offset()
        return ()

    def _valid(self, decode, message):
        """The tick or trade, or None for what the tick reader dead-letters (a producer's watermark record too):
        the lake holds valid ones only."""
        written = written_ms(message)
        try:
            return check_not_ahead(decode(message.value()), now_ms() if written is None else written,
                                   self.max_future_skew_ms)
        except InvalidTick:
            return None

    def make_durable(self, topic: str, partition: int, last_read: int | None) -> int | None:
        """Flush every `flush_every_s` per topic and partition; only then may the state offset move."""
        now = time.monotonic()
        key = (topic, partition)
        due = self.flush_due.setdefault(key, now + self.flush_every_s)
        read = self.last_read.get(key)
        if read is None or now < due or self.flushed.get(key) == read:
            return None
        self.writers[topic].flush(partition, read)
        self.flushed[key] = read
        self.flush_due[key] = now + self.flush_every_s
        event(log, "lake flushed", kind=TRADES if topic != self.topic else self.kind, partition=partition, upto=read)
        return read
