"""The one Kafka producer every connector and replay shares.

- Idempotent, acks=all: a retry after a lost ack never writes a tick twice.
- Ticks and trades are partitioned by SYMBOL (crc32 mod partitions), not by their `venue:symbol` key, so
  every venue's quotes of one symbol reach the same Flink subtask: cross-exchange detection needs them together.
- While the broker is down librdkafka keeps retrying; the error callback logs a structured warning each
  time, and a full local buffer blocks the caller (backpressure) instead of dropping data.
- Closing (or leaving the `with` block) flushes; what could not be delivered is logged, never hidden.
- Every partition of `ticks` and of `trades` it has left quiet for QUIET_S gets a watermark record
  (core/contracts/tick.py), and every partition one when it closes: the job's event-time order then releases
  the ticks that wait for a later one (or for the trades the rules read), and a partition nothing goes to
  holds nobody back, by event time kept in the log rather than by a wall-clock timeout in the job
  (core/event_order.py).
- Given a Redis URL, it raises TOPIC_ENDS from its delivery reports (the embedded broker's watermarks are
  unreliable): about once a second while producing, and at close. Health and a clean stop read them.
  With the same cadence it writes its stage latencies (core/latency.py) to ascep:latency:ingest:<host>:<pid>:
  exchange -> ingest for ticks given with their receive time, ingest -> Kafka (produce() to the broker's ack,
  from one delivery report in DELIVERY_SAMPLE). Without Redis it records none: nobody would see them.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer

from clients.kafka import kafka_config
from core.contracts.deadletter import deadletter_value
from core.contracts.redis_keys import LATENCY_TTL_S, RAISE_ENDS, TOPIC_ENDS, latency_key
from core.contracts.tick import Tick, watermark_value
from core.contracts.topics import DEADLETTER_TOPIC, TICKS_TOPIC, TRADES_TOPIC, partition_for_symbol
from core.contracts.trade import Trade
from core.latency import StageLatencies
from core.log import event
from core.progress import REPORT_EVERY_MS, TopicEnds
from core.settings import KafkaSecuritySettings
from ingestion.venues.base import Parsed

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

POLL_EVERY = 1_000  # serve delivery callbacks every this many messages
POLL_EVERY_S = 0.1  # or after this long, so the ends reported stay fresh at low rates
QUIET_S = 0.1  # nothing sent to a partition for this long: promise it the newest event time (a watermark record)
DELIVERY_SAMPLE = 8  # one delivery report in this many gives an ingest -> Kafka latency, standing for them all


@dataclass
class Topics:
    ticks: str = TICKS_TOPIC
    trades: str = TRADES_TOPIC
    deadletter: str = DEADLETTER_TOPIC


@dataclass
class Counts:
    ticks: int = 0
    trades: int = 0
    deadletters: int = 0
    failed: int = 0  # delivery failures reported by the broker/librdkafka
    errors: list[str] = field(default_factory=list)  # the first few failure reasons, for the caller's summary


# Each produce request is one record batch, and the embedded Tansu broker's cost per fetch grows with the
# batches a partition holds (docs/configuration.md, job.fetch_wait_ms): a connector at a few dozen ticks a
# second with a 5 ms linger wrote one batch per tick. 100 ms bounds it to ten a second per partition.
DEFAULT_LINGER_MS = 100


class TickProducer:
    def __init__(self, bootstrap: str, security: KafkaSecuritySettings, *, topics: Topics | None = None,
                 buffer_messages: int = 100_000,
                 linger_ms: int = DEFAULT_LINGER_MS, config: dict[str, Any] | None = None,
                 ends_to: str | None = None) -> None:
        """`ends_to`: a Redis URL to report the topics' ends to (TOPIC_ENDS), or None."""
        self.bootstrap = bootstrap
        self.topics = topics or Topics()
        self.counts = Counts()
        self._partitions: dict[str, int] = {}
        self._unpolled = 0
        self._polled_at = time.monotonic()
        self._ends = TopicEnds()
        self._ends_reported_at = 0.0
        self._redis: redis.Redis | None = None
        self._newest_ts: int | None = None  # the newest event time of a tick or trade sent
        self._promised_to: dict[str, int] = {}  # topic -> its partitions, which watermark records go to
        self._promised: dict[tuple[str, int], int] = {}  # (topic, partition) -> what its last record promised
        self._sent_at: dict[tuple[str, int], float] = {}  # (topic, partition) -> when a tick or trade last went
        self._quiet = threading.Event()
        self._watcher: threading.Thread | None = None
        self._latency: StageLatencies | None = None
        self._delivered = 0
        self._closed = False
        if ends_to is not None:
            import redis  # here, not on top: only producers that report ends need it (`ascep ingest --help` is light)

            self._redis = redis.Redis.from_url(ends_to, socket_timeout=2, socket_connect_timeout=2)
            self._latency = StageLatencies(("exchange_ingest", "ingest_kafka"))
            self._latency_key = latency_key(f"ingest:{socket.gethostname()}:{os.getpid()}")
        self._producer = Producer(kafka_config(bootstrap, security, {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": buffer_messages,
            "message.timeout.ms": 0,  # never give up on a message while the broker is away
            "delivery.report.only.error": self._redis is None,  # successes give the ends
            "allow.auto.create.topics": False,  # topics need their partition counts: created explicitly
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            **(config or {}),
        }))

    # --- producing -------------------------------------------------------------------------
    def tick(self, tick: Tick, received_ms: int | None = None) -> None:
        """`received_ms`: when the tick came from its exchange, for the exchange -> ingest latency; None for a tick
        whose event time is not an exchange's clock of now (a replayed file)."""
        topic = self.topics.ticks
        partition = partition_for_symbol(tick.symbol, self.partitions(topic))
        if received_ms is not None and self._latency is not None:
            self._latency.add("exchange_ingest", received_ms - tick.ts, received_ms / 1000)
        self._send(topic, orjson.dumps(tick.to_json_dict()), tick.key, partition)
        self.counts.ticks += 1
        self._sent(topic, partition, tick.ts)

    def trade(self, trade: Trade) -> None:
        topic = self.topics.trades
        partition = partition_for_symbol(trade.symbol, self.partitions(topic))
        self._send(topic, orjson.dumps(trade), f"{trade.venue}:{trade.symbol}",  # a dataclass: orjson writes its fields
                   partition)
        self.counts.trades += 1
        self._sent(topic, partition, trade.ts)

    def _sent(self, topic: str, partition: int, ts: int) -> None:
        self._sent_at[(topic, partition)] = time.monotonic()
        if self._newest_ts is None or ts > self._newest_ts:
            self._newest_ts = ts
        if self._watcher is None:
            self._promised_to = {name: self._partitions_if_any(name) for name in (self.topics.ticks,
                                                                                  self.topics.trades)}
            self._watcher = threading.Thread(target=self._watch_quiet, name="watermarks", daemon=True)
            self._watcher.start()

    def _partitions_if_any(self, topic: str) -> int:
        """0 for a topic the broker does not have (a stack with topics of other names): nobody reads it."""
        try:
            return self.partitions(topic)
        except LookupError:
            return 0

    def _watch_quiet(self) -> None:
        while not self._quiet.wait(QUIET_S / 2):
            self._promise(time.monotonic() - QUIET_S)

    def _promise(self, quiet_since: float | None = None) -> None:
        """Watermark records to the partitions of `ticks` and `trades` nothing went to since `quiet_since` (all,
        if None), promising that nothing dated at or before the newest tick or trade sent is to come from this
        producer there."""
        if self._newest_ts is None:
            return
        # never past the clock: a tick dated 2100 (dead-lettered by the job) must not become a promise
        newest = min(self._newest_ts, int(time.time() * 1000))
        value = watermark_value(newest + 1)
        try:  # produce directly: this may run on the watcher thread, beside the caller's _send
            for topic, partitions in self._promised_to.items():
                for partition in range(partitions):
                    if self._promised.get((topic, partition)) == newest:
                        continue
                    if quiet_since is not None and self._sent_at.get((topic, partition), 0.0) > quiet_since:
                        continue
                    self._producer.produce(topic, value, "watermark", partition=partition)
                    self._promised[(topic, partition)] = newest
        except BufferError:  # the buffer is full, so ticks are flowing: the next look promises again
            return

    def deadletter(self, venue: str, reason: str, frame: str | bytes, received_ms: int,
                   source: str | None = None) -> None:
        self._send(self.topics.deadletter, deadletter_value(venue, reason, frame, received_ms, source), venue, None)
        self.counts.deadletters += 1

    def parsed(self, venue: str, parsed: Parsed, frame: str | bytes, received_ms: int) -> None:
        """Route everything one frame became; an ignored frame produces nothing."""
        for tick in parsed.ticks:
            self.tick(tick, received_ms)
        for trade in parsed.trades:
            self.trade(trade)
        if parsed.deadletter is not None:
            self.deadletter(venue, parsed.deadletter, frame, received_ms)

    # --- plumbing --------------------------------------------------------------------------
    def partitions(self, topic: str) -> int:
        """Partition count of an existing topic, looked up once; waits (and warns) while the broker is down."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = self._lookup_partitions(topic)
        return count

    def _lookup_partitions(self, topic: str) -> int:
        while True:
            try:
                meta = self._producer.list_topics(topic, timeout=5).topics.get(topic)
            except KafkaException as exc:
                event(log, "kafka unavailable, waiting for topic metadata", logging.WARNING, bootstrap=self.bootstrap,
                      topic=topic, error=str(exc))
                continue
            if meta is not None and meta.error is None and meta.partitions:
                return len(meta.partitions)
            if meta is not None and meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise LookupError(f"topic {topic!r} does not exist on {self.bootstrap}; create it "
                                  "(`ascep up` or clients.kafka.create_topics) before producing")
            event(log, "topic metadata not ready, retrying", logging.WARNING, bootstrap=self.bootstrap, topic=topic,
                  error=str(meta.error) if meta is not None else "no metadata")
            time.sleep(0.5)

    def _send(self, topic: str, value: bytes, key: str, partition: int | None) -> None:
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value, key, **kwargs)
                break
            except BufferError:  # local buffer full: wait for the broker rather than drop
                event(log, "producer buffer full, waiting for the broker", logging.WARNING, bootstrap=self.bootstrap,
                      buffered=len(self._producer))
                self._producer.poll(1.0)
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY or (self._redis is not None
                                            and time.monotonic() - self._polled_at >= POLL_EVERY_S):
            self._unpolled = 0
            self._polled_at = time.monotonic()
            self._producer.poll(0)
            if time.monotonic() - self._ends_reported_at >= REPORT_EVERY_MS / 1000:
                self._report()

    def _report(self) -> None:
        """The ends and the latencies. Best effort: Redis away costs a warning, never a tick (the next report carries
        the ends again)."""
        self._ends_reported_at = time.monotonic()
        ends = self._ends.take()
        if self._redis is None:
            return
        import redis

        if ends:
            try:
                self._redis.eval(RAISE_ENDS, 1, TOPIC_ENDS, *(value for item in ends.items() for value in item))
            except redis.RedisError as exc:
                self._ends.not_reported(ends)
                event(log, "could not report topic ends", logging.WARNING, error=str(exc))
        docs = self._latency.report(time.time() * 1000) if self._latency is not None else {}
        if docs:
            try:
                self._redis.pipeline(transaction=False).hset(self._latency_key, mapping=docs).expire(
                    self._latency_key, LATENCY_TTL_S).execute()
            except redis.RedisError as exc:
                event(log, "could not report latencies", logging.WARNING, error=str(exc))

    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        if err is None:
            self._ends.delivered(msg.topic(), msg.partition(), msg.offset())
            self._delivered += 1
            if self._latency is not None and self._delivered % DELIVERY_SAMPLE == 0:
                took_s = msg.latency()
                if took_s is not None:
                    now_s = time.time()
                    self._latency.add("ingest_kafka", took_s * 1000, now_s, DELIVERY_SAMPLE)
            return
        self.counts.failed += 1
        if len(self.counts.errors) < 10:
            self.counts.errors.append(f"{msg.topic()}: {err}")
        event(log, "delivery failed", logging.ERROR, topic=msg.topic(), key=(msg.key() or b"").decode(errors="replace"),
              error=str(err))

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            msg, level = "kafka producer fatal error", logging.ERROR
        else:
            msg, level = "kafka unavailable, producer keeps retrying", logging.WARNING
        event(log, msg, level, bootstrap=self.bootstrap, code=err.name(), error=err.str(), buffered=len(self._producer))

    def flush(self, timeout: float = 30.0) -> int:
        """Promise the newest event time, wait for every buffered message and report the ends; returns how
        many are still undelivered."""
        self._promise()
        left = self._producer.flush(timeout)
        self._report()
        return left

    def close(self, timeout: float = 30.0) -> None:
        """Flushes, then lets librdkafka's threads and connections go at once: left to the garbage collector (the
        delivery callbacks make a cycle), a closed producer went on reconnecting to a broker that had stopped.
        Not when messages are left: librdkafka's close waits for them, and this producer never gives one up."""
        if self._closed:
            return
        self._quiet.set()
        if self._watcher is not None:
            self._watcher.join(timeout)  # not in the middle of a watermark record when the handle goes
        left = self.flush(timeout)
        self._closed = True
        if left:
            event(log, "messages not delivered at close", logging.ERROR, bootstrap=self.bootstrap, undelivered=left)
        else:
            self._producer.close()

    def __enter__(self) -> TickProducer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
