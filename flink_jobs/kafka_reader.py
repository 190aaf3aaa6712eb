"""Reads Kafka from Python inside the job (Flink's KafkaSource needs a connector jar we cannot install).

The operator is keyed by partition, and a pulse stream gives each key a turn. On each turn it
reads the next batch from the offset held in Flink keyed state and stores the new offset in the
same call that emits the batch's results. A checkpoint therefore captures offsets and detector
state consistently, and a restore resumes exactly where the state says.
"""
from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from ascep.log import event
from ascep.settings import ArbitrageSettings
from flink_jobs.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from flink_jobs.tick_batches import TickBatchProcessor

log = logging.getLogger(__name__)


class KafkaPartitionReader(KeyedProcessFunction):
    def __init__(self, bootstrap: str, topic: str, deadletter_topic: str, arbitrage: ArbitrageSettings,
                 poll_batch: int, start: str = "earliest") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.arbitrage = arbitrage
        self.poll_batch = poll_batch
        self.start = start

    def open(self, ctx: RuntimeContext) -> None:
        self.next_offset = ctx.get_state(ValueStateDescriptor("next_offset", Types.LONG()))
        self.symbols = ctx.get_map_state(MapStateDescriptor("symbols", Types.STRING(), Types.PICKLED_BYTE_ARRAY()))
        self.processor = TickBatchProcessor(CrossExchangeDetector(self.arbitrage))
        self.consumers: dict[int, tuple[Consumer, int]] = {}
        self.cache: dict[int, dict[str, SymbolState]] = {}
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20, "enable.idempotence": True})

    def close(self) -> None:
        for consumer, _ in self.consumers.values():
            consumer.close()
        self.producer.flush(10)

    def _consumer_at(self, partition: int, offset: int | None) -> Consumer:
        """One consumer per partition; re-seek only when state and consumer disagree (after a restore)."""
        held = self.consumers.get(partition)
        if held is not None and (offset is None or held[1] == offset):
            return held[0]
        consumer = held[0] if held else Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": "ascep-job", "enable.auto.commit": False,
            "enable.partition.eof": False, "fetch.wait.max.ms": 5, "auto.offset.reset": self.start,
            "queued.max.messages.kbytes": 65536,
        })
        start = offset if offset is not None else (-2 if self.start == "earliest" else -1)
        consumer.assign([TopicPartition(self.topic, partition, start)])
        self.consumers[partition] = (consumer, offset if offset is not None else -1)
        self.cache.pop(partition, None)
        return consumer

    def process_element(self, pulse, ctx: "KeyedProcessFunction.Context"):
        partition = ctx.get_current_key()
        offset = self.next_offset.value()
        consumer = self._consumer_at(partition, offset)
        messages = consumer.consume(self.poll_batch, timeout=0.002)
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append((message.offset(), message.value()))
            elif error.code() != KafkaError._PARTITION_EOF:
                event(log, "kafka read error", logging.WARNING, partition=partition, error=str(error))
        if not records:
            return
        cache = self.cache.setdefault(partition, {})

        def state_of(symbol: str) -> SymbolState:
            state = cache.get(symbol)
            if state is None:
                state = self.symbols.get(symbol) or SymbolState()
                cache[symbol] = state
            return state

        outcome = self.processor.process(records, partition, state_of, int(time.time() * 1000))
        self.symbols.put_all({symbol: cache[symbol] for symbol in outcome.touched})
        last = records[-1][0]
        self.next_offset.update(last + 1)
        self.consumers[partition] = (consumer, last + 1)
        for dead in outcome.deadletters:
            self.producer.produce(self.deadletter_topic, dead.to_json(self.topic), key=f"job:{partition}")
        if outcome.deadletters:
            self.producer.poll(0)
        yield partition, last, outcome.signals, list(outcome.latest.values()), outcome.ticks, len(outcome.deadletters)
