"""The first operator on `ticks`: read, validate, dead-letter, detect, and hand the batch to the sinks.

Only valid ticks go on (a tick dated too far ahead included among the dead letters), so no state and no
watermark downstream ever sees a rejected one. Cross-exchange detection runs here in offset order: the
topic is partitioned by symbol, so every venue of a symbol is in this partition. Triangular, direct and
rule detection need ticks of many symbols, in event-time order (core/event_order.py):

- with one partition, they run here too, with no hop at all (the default: fastest);
- with several, the reader stamps the ticks with order keys and sends them, with its watermark, to
  every detection bucket (flink_jobs/operators/buckets.py), which merges the partitions.

With the rules on, the reader also reads the same partition of `trades` (partitioned by symbol with the
same function), validates and stamps the trades alike, and hands them, with their own watermark, to
whoever evaluates the rules (itself, or the rules' bucket), which merges them with the ticks.
"""
from __future__ import annotations

import gc
import time

from confluent_kafka import Producer
from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.functions import KeyedBroadcastProcessFunction
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from clients.kafka import kafka_config
from core.arbitrage.batches import Checked, TickBatchProcessor, check_trades
from core.arbitrage.cross_exchange import CrossExchangeDetector, SymbolState
from core.clock import now_ms
from core.contracts.deadletter import deadletter_value
from core.detection import KEYED_RULES, RULES, flags_of, routes, trade_routes
from core.event_order import NO_WATERMARK, stamp_keys, watermark_of
from core.latency import StageLatencies
from core.settings import ArbitrageSettings, JobSettings, KafkaSecuritySettings
from flink_jobs.messages import SinkBatch
from flink_jobs.operators.detection_host import DetectionHost
from flink_jobs.readers.kafka_partition import PartitionReading, written_ms
from flink_jobs.sinks.redis_sink import latency_writer

GC_THRESHOLD = 100_000
READ_SAMPLES = 8  # records of a batch whose Kafka timestamps give the Kafka -> job latency, each standing for its share
BUCKETS = OutputTag("detection buckets", Types.PICKLED_BYTE_ARRAY())


class TickReading(PartitionReading):
    """Reads `ticks` (and `trades_topic`, for the rules), dead-letters bad records with where they were, detects
    cross-exchange arbitrage, and detects the rest in place (`host`) or hands the ticks and trades to the
    detection buckets (`buckets` > 0)."""

    def __init__(self, bootstrap: str, security: KafkaSecuritySettings, topic: str, deadletter_topic: str,
                 arbitrage: ArbitrageSettings, job: JobSettings, host: DetectionHost | None, buckets: int,
                 redis_url: str | None = None, trades_topic: str | None = None) -> None:
        super().__init__(bootstrap, security, topic, job.poll_batch, job.fetch_wait_ms, redis_url,
                         () if trades_topic is None else (trades_topic,))
        self.trades_topic = trades_topic
        self.deadletter_topic = deadletter_topic
        self.arbitrage = arbitrage
        self.max_future_skew_ms = job.max_future_skew_ms
        self.bound_ms = job.out_of_orderness_ms
        self.detectors = tuple(name for name in job.detectors if name in ("triangular", "direct", "rules"))
        self.host = host
        self.buckets = buckets

    def open(self, ctx: RuntimeContext) -> None:
        super().open(ctx)
        # A batch makes tens of thousands of short-lived tuples; at the default threshold (700) the collector
        # ran every few hundred ticks over the whole detector state, and cost as much as the merge itself.
        gc.set_threshold(GC_THRESHOLD, 50, 1_000)
        self.symbols = ctx.get_map_state(MapStateDescriptor("symbols", Types.STRING(), Types.PICKLED_BYTE_ARRAY()))
        self.newest = ctx.get_state(ValueStateDescriptor("newest_event_time", Types.LONG()))
        self.newest_trade = ctx.get_state(ValueStateDescriptor("newest_trade_time", Types.LONG()))
        self.processor = TickBatchProcessor(CrossExchangeDetector(self.arbitrage), self.max_future_skew_ms)
        self.cache: dict[int, dict[str, SymbolState]] = {}
        self.producer = Producer(kafka_config(self.bootstrap, self.security, {"linger.ms": 20}))
        self.flags = flags_of(self.detectors)
        if self.host is not None:
            self.host.open(ctx)
        self.latency = StageLatencies(("kafka_job",))
        self.latency_writer = latency_writer("read")

    def process_element(self, pulse, ctx):
        yield from super().process_element(pulse, ctx)
        now = time.time() * 1000
        if self.redis is not None and self.latency.due(now):
            docs = self.latency.report(now)
            if docs:
                self.redis.report_latency(self.latency_writer, docs)

    def close(self) -> None:
        super().close()
        self.producer.flush(10)
        if self.host is not None:
            self.host.close()

    def handle(self, partition: int, records: list, trade_records: list = ()):
        cache = self.cache.setdefault(partition, {})

        def state_of(symbol: str) -> SymbolState:
            state = cache.get(symbol)
            if state is None:
                state = self.symbols.get(symbol) or SymbolState()
                cache[symbol] = state
            return state

        read_at = time.time() * 1000
        read = [(m.offset(), m.value(), written_ms(m)) for m in records]
        self._sample(read, read_at)
        outcome = self.processor.process(read, partition, state_of, int(read_at))
        for symbol in outcome.touched:  # put_all wants a dict in thread mode, pairs in process mode: put works in both
            self.symbols.put(symbol, cache[symbol])
        trades = None if self.trades_topic is None else check_trades(
            [(m.offset(), m.value(), written_ms(m)) for m in trade_records], partition, now_ms(),
            self.max_future_skew_ms)
        self._deadletter(partition, self.topic, outcome)
        counters = {}
        if outcome.valid and not self.detectors:  # with no detector after cross-exchange, a tick read is detected
            counters["detected"] = len(outcome.valid)
        if trades is not None:
            self._deadletter(partition, self.trades_topic, trades)
            counters.update((name, n) for name, n in (("trades", len(trades.valid)),
                                                      ("trades:deadletters", len(trades.deadletters))) if n)
        batch = SinkBatch(outcome.signals, list(outcome.latest.values()), len(outcome.valid), len(outcome.deadletters),
                          counters=counters or None, read_at=read_at)
        news = outcome.valid or outcome.watermarks
        traded = trades is not None and (trades.valid or trades.watermarks)
        if (news or traded) and self.detectors:
            keys, watermark = self._stamp(self.newest, outcome)
            stamped_trades = None  # (order keys, trades, flags, watermark) for whoever evaluates the rules
            if trades is not None:
                trade_keys, trade_watermark = self._stamp(self.newest_trade, trades)
                stamped_trades = (trade_keys, trades.valid, [RULES | KEYED_RULES] * len(trade_keys), trade_watermark)
            if self.host is not None:
                detected = self.host.on_batch(partition, 0, keys, outcome.valid, [self.flags] * len(keys), watermark,
                                              self.turn, stamped_trades)
                if detected is not None:
                    batch = batch._replace(signals=batch.signals + detected.signals, rule_stats=detected.rule_stats,
                                           counters={**counters, **(detected.counters or {})} or None,
                                           rules_taken=detected.rules_taken, rule_stats_part=detected.rule_stats_part)
            else:
                traded_to = None if trades is None else trade_routes(zip(trade_keys, trades.valid), self.buckets)
                for bucket, entries in routes(zip(keys, outcome.valid), self.detectors, self.buckets).items():
                    # plain tuples: pickled faster than named ones, and rebuilt into ticks and trades by the bucket
                    yield BUCKETS, (bucket, partition, watermark, [(key, flags, *tick) for key, tick, flags in entries],
                                    None if traded_to is None else (trade_watermark, [
                                        (key, flags, t.venue, t.symbol, t.price, t.size, t.side, t.ts, t.trade_id)
                                        for key, t, flags in traded_to[bucket]]), read_at)
        yield batch

    def _sample(self, read: list, read_at: float) -> None:
        """Kafka -> job: the poll minus the record's timestamp, for READ_SAMPLES records spread over the batch."""
        step = max(1, len(read) // READ_SAMPLES)
        now_s = read_at / 1000
        for _, _, written in read[::step]:
            if written is not None:
                self.latency.add("kafka_job", read_at - written, now_s, step)

    def _stamp(self, newest, checked: Checked) -> tuple[list[int], int]:
        """Order keys of a batch's ticks or trades and the partition's watermark after them; `newest` is the keyed
        state of the partition's newest event time, of ticks or of trades (core/event_order.py)."""
        before = newest.value()
        keys, after = stamp_keys(checked.valid, NO_WATERMARK if before is None else before, self.bound_ms,
                                 checked.watermarks)
        newest.update(after)
        return keys, watermark_of(after, self.bound_ms)

    def _deadletter(self, partition: int, topic: str, checked: Checked) -> None:
        received_ms = now_ms()
        for dead in checked.deadletters:
            self.producer.produce(self.deadletter_topic, deadletter_value(
                "job", dead.reason, dead.value or b"", received_ms, source="job", topic=topic, partition=partition,
                offset=dead.offset), key=f"job:{partition}")
        if checked.deadletters:
            self.producer.poll(0)


class TickReader(TickReading, KeyedProcessFunction):
    """The tick reader when no rules run in it."""


class TickReaderWithRules(TickReading, KeyedBroadcastProcessFunction):
    """The tick reader that evaluates the rules itself (one partition): it hears the rules' broadcast."""

    def process_broadcast_element(self, change, ctx):
        batch = self.host.on_change(change, ctx) if self.host is not None else None
        if batch is not None:
            yield batch
