"""The Flink operator that hands each batch's results to the sinks (one element per batch).

Signals go to Redis for the live view and to the Kafka topic `signals`, from which the lake
archiver writes their history; both writes are keyed by signal id, so repeats are harmless.
A batch's signals are acknowledged by the broker before the batch is done, and their offsets raise
TOPIC_ENDS: so a clean stop, comparing the lake with the ends, never misses the newest signals.
Each batch gives the latencies of two stages (core/latency.py), weighed by the ticks and signals it holds: job
(the reader's poll to here) and job_redis (here to the Redis writes done).
"""
from __future__ import annotations

import time

import orjson
from pyflink.datastream import FlatMapFunction, RuntimeContext

from clients.kafka import kafka_config
from core.contracts.signal import public_view
from core.contracts.topics import SIGNALS_TOPIC
from core.latency import StageLatencies
from core.progress import TopicEnds
from core.settings import KafkaSecuritySettings
from flink_jobs.sinks.redis_sink import RedisSink, latency_writer


class SignalWriter(FlatMapFunction):
    """Writes each batch's signals to Redis and the `signals` topic, its prices and counters to Redis."""

    def __init__(self, redis_url: str, kafka: str, security: KafkaSecuritySettings) -> None:
        self.redis_url = redis_url
        self.kafka = kafka
        self.security = security

    def open(self, ctx: RuntimeContext) -> None:
        from confluent_kafka import Producer

        self.redis = RedisSink(self.redis_url)
        self.redis.announce_job()
        self.ends = TopicEnds()
        self.producer = Producer(kafka_config(self.kafka, self.security, {
            "enable.idempotence": True, "acks": "all", "linger.ms": 10, "message.timeout.ms": 0,
            "on_delivery": self._delivered}))
        self.latency = StageLatencies(("job", "job_redis"))
        self.latency_writer = latency_writer("sink")

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.ends.delivered(msg.topic(), msg.partition(), msg.offset())

    def close(self) -> None:
        self.producer.flush(30)

    def flat_map(self, batch):
        taken_at = time.time() * 1000
        self._write(batch)
        weight = batch.ticks + len(batch.signals)
        if weight:
            done_at = time.time() * 1000
            if batch.read_at is not None:
                self.latency.add("job", taken_at - batch.read_at, done_at / 1000, weight)
            self.latency.add("job_redis", done_at - taken_at, done_at / 1000, weight)
            if self.latency.due(done_at):
                self.redis.report_latency(self.latency_writer, self.latency.report(done_at))
        return ()

    def _write(self, batch) -> None:
        if batch.signals:
            self.redis.write_signals(batch.signals)
            for signal in batch.signals:
                self.producer.produce(SIGNALS_TOPIC, orjson.dumps(public_view(signal)), key=signal["id"])
            self.producer.flush()  # one round trip per batch with signals; the broker away blocks, as Redis does
            self.redis.raise_topic_ends(self.ends.take())
        self.redis.write_prices(batch.prices, batch.ticks, batch.deadletters, batch.counters)
        if batch.rule_stats is not None:
            self.redis.write_rule_stats(batch.rule_stats, batch.rule_stats_part)
        if batch.rules_taken:
            self.redis.write_rules_taken(batch.rules_taken)
