"""Reads Kafka from Python inside the job (Flink's KafkaSource needs a connector jar we cannot install).

A reader is keyed by partition, and a pulse stream gives each key a turn. On each turn it reads
the next batch from the offset held in Flink keyed state and stores the new offset in the same
call that emits the batch's results. A checkpoint therefore captures offsets and downstream state
consistently, and a restore resumes exactly where the state says.
"""
from __future__ import annotations

import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from ascep.log import event
from ascep.settings import ArbitrageSettings
from flink_jobs.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from flink_jobs.tick_batches import SinkBatch, TickBatchProcessor, group_by
from ingestion.producer import deadletter_value

log = logging.getLogger(__name__)


class PartitionReader(KeyedProcessFunction):
    """Kafka reading with the offset in keyed state; subclasses say what a batch of records becomes."""

    def __init__(self, bootstrap: str, topic: str, poll_batch: int) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.poll_batch = poll_batch

    def open(self, ctx: RuntimeContext) -> None:
        self.next_offset = ctx.get_state(ValueStateDescriptor("next_offset", Types.LONG()))
        self.consumers: dict[int, Consumer] = {}

    def close(self) -> None:
        for consumer in self.consumers.values():
            consumer.close()

    def _consumer(self, partition: int) -> Consumer:
        """One consumer per partition, positioned from keyed state when the operator (re)starts; a partition
        with no offset in state yet is read from its beginning."""
        consumer = self.consumers.get(partition)
        if consumer is None:
            consumer = Consumer({
                "bootstrap.servers": self.bootstrap, "group.id": "ascep-job", "enable.auto.commit": False,
                "fetch.wait.max.ms": 5, "auto.offset.reset": "earliest", "queued.max.messages.kbytes": 65536,
            })
            offset = self.next_offset.value()
            consumer.assign([TopicPartition(self.topic, partition, OFFSET_BEGINNING if offset is None else offset)])
            self.consumers[partition] = consumer
        return consumer

    def process_element(self, pulse, ctx: "KeyedProcessFunction.Context"):
        partition = ctx.get_current_key()
        records = []
        for message in self._consumer(partition).consume(self.poll_batch, timeout=0.002):
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                event(log, "kafka read error", logging.WARNING, topic=self.topic, partition=partition, error=str(error))
        if records:
            yield from self.handle(partition, records)
        committed = self.committed_offset(partition, records[-1].offset() if records else None)
        if committed is not None:
            self.next_offset.update(committed + 1)

    def committed_offset(self, partition: int, last_read: int | None) -> int | None:
        """The offset that keyed state may advance to: by default everything read is done with."""
        return last_read

    def handle(self, partition: int, records: list):
        raise NotImplementedError


TRIANGULAR = OutputTag("triangular", Types.PICKLED_BYTE_ARRAY())
DIRECT = OutputTag("direct", Types.PICKLED_BYTE_ARRAY())
RULES = OutputTag("rules", Types.PICKLED_BYTE_ARRAY())


class TickReader(PartitionReader):
    """Reads `ticks`, detects cross-exchange arbitrage in place (the topic is partitioned by symbol, so
    every venue of a symbol is here), and hands ticks on, batched per key, to the other detectors."""

    def __init__(self, bootstrap: str, topic: str, deadletter_topic: str, arbitrage: ArbitrageSettings,
                 poll_batch: int, fan_out: tuple[str, ...]) -> None:
        super().__init__(bootstrap, topic, poll_batch)
        self.deadletter_topic = deadletter_topic
        self.arbitrage = arbitrage
        self.fan_out = fan_out

    def open(self, ctx: RuntimeContext) -> None:
        super().open(ctx)
        self.symbols = ctx.get_map_state(MapStateDescriptor("symbols", Types.STRING(), Types.PICKLED_BYTE_ARRAY()))
        self.processor = TickBatchProcessor(CrossExchangeDetector(self.arbitrage))
        self.cache: dict[int, dict[str, SymbolState]] = {}
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20})
        from flink_jobs.arbitrage.direct import DirectDetector
        from flink_jobs.arbitrage.triangular import TriangularDetector

        self.routes = [(tag, key_for) for name, tag, key_for in (
            ("triangular", TRIANGULAR, TriangularDetector.key_for), ("direct", DIRECT, DirectDetector.key_for))
            if name in self.fan_out]

    def close(self) -> None:
        super().close()
        self.producer.flush(10)

    def handle(self, partition: int, records: list):
        cache = self.cache.setdefault(partition, {})

        def state_of(symbol: str) -> SymbolState:
            state = cache.get(symbol)
            if state is None:
                state = self.symbols.get(symbol) or SymbolState()
                cache[symbol] = state
            return state

        outcome = self.processor.process([(m.offset(), m.value()) for m in records], partition, state_of,
                                         int(time.time() * 1000))
        for symbol in outcome.touched:  # put_all wants a dict in thread mode, pairs in process mode: put works in both
            self.symbols.put(symbol, cache[symbol])
        now_ms = int(time.time() * 1000)
        for dead in outcome.deadletters:
            self.producer.produce(self.deadletter_topic, deadletter_value(
                "job", dead.reason, dead.value or b"", now_ms, source="job", topic=self.topic, partition=partition,
                offset=dead.offset), key=f"job:{partition}")
        if outcome.deadletters:
            self.producer.poll(0)
        yield SinkBatch(outcome.signals, list(outcome.latest.values()), len(outcome.valid), len(outcome.deadletters))
        if outcome.valid:
            for tag, key_for in self.routes:
                for key, ticks in group_by(outcome.valid, key_for).items():
                    yield tag, (key, ticks)
            if "rules" in self.fan_out:
                yield RULES, (partition, outcome.valid)


class RulesReader(PartitionReader):
    """Reads the compacted `rules` topic: each record is (rule id, rule JSON), or a tombstone (None)."""

    def handle(self, partition: int, records: list):
        for message in records:
            key = message.key()
            if key:
                yield key.decode("utf-8", "replace"), message.value()
