"""The first operator on `ticks`: read, validate, dead-letter, detect cross-exchange arbitrage, fan out.

Only valid ticks leave it (a tick dated too far ahead included among the dead letters), so no state and no
watermark downstream, triangular, direct or rules, ever sees a rejected one.
"""
from __future__ import annotations

from confluent_kafka import Producer
from pyflink.common import Types
from pyflink.datastream import OutputTag, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor

from core.arbitrage.batches import TickBatchProcessor, group_by
from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from core.arbitrage.direct import DirectDetector
from core.arbitrage.triangular import TriangularDetector
from core.clock import now_ms
from core.contracts.deadletter import deadletter_value
from core.settings import ArbitrageSettings
from flink_jobs.messages import SinkBatch
from flink_jobs.readers.kafka_partition import PartitionReader, written_ms

TRIANGULAR = OutputTag("triangular", Types.PICKLED_BYTE_ARRAY())
DIRECT = OutputTag("direct", Types.PICKLED_BYTE_ARRAY())
RULES = OutputTag("rules", Types.PICKLED_BYTE_ARRAY())


class CrossExchangeReader(PartitionReader):
    """Reads `ticks`, dead-letters bad records with where they were, detects cross-exchange arbitrage in place
    (the topic is partitioned by symbol, so every venue of a symbol is here: no keyed hop), and hands valid
    ticks on, batched per key, to the other detectors."""

    def __init__(self, bootstrap: str, topic: str, deadletter_topic: str, arbitrage: ArbitrageSettings,
                 poll_batch: int, fetch_wait_ms: int, fan_out: tuple[str, ...], max_future_skew_ms: int,
                 redis_url: str | None = None) -> None:
        super().__init__(bootstrap, topic, poll_batch, fetch_wait_ms, redis_url)
        self.deadletter_topic = deadletter_topic
        self.arbitrage = arbitrage
        self.max_future_skew_ms = max_future_skew_ms
        self.fan_out = fan_out

    def open(self, ctx: RuntimeContext) -> None:
        super().open(ctx)
        self.symbols = ctx.get_map_state(MapStateDescriptor("symbols", Types.STRING(), Types.PICKLED_BYTE_ARRAY()))
        self.processor = TickBatchProcessor(CrossExchangeDetector(self.arbitrage), self.max_future_skew_ms)
        self.cache: dict[int, dict[str, SymbolState]] = {}
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20})
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

        outcome = self.processor.process([(m.offset(), m.value(), written_ms(m)) for m in records], partition,
                                         state_of, now_ms())
        for symbol in outcome.touched:  # put_all wants a dict in thread mode, pairs in process mode: put works in both
            self.symbols.put(symbol, cache[symbol])
        received_ms = now_ms()
        for dead in outcome.deadletters:
            self.producer.produce(self.deadletter_topic, deadletter_value(
                "job", dead.reason, dead.value or b"", received_ms, source="job", topic=self.topic, partition=partition,
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
