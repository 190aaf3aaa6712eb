"""The compacted `rules` topic, read and written alike by `ascep rules` and the dashboard's /api/rules: one code
path, so what one writes the other reads back as the job reads it (core/cep/rule_records.py).

Key = rule id, value = the rule's record (its JSON form, `"enabled": false` beside it when disabled), a tombstone
(no value) deletes. Writes are idempotent and acknowledged by every replica; reads fold the topic from the start to
its end. Every call blocks (librdkafka): an async caller runs it in a thread. A broker that does not answer, or a
write or read that does not finish in time, raises KafkaUnavailable naming the broker.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

from clients.kafka import KafkaUnavailable, create_topics, kafka_config, unreachable
from core.cep.rule_records import RuleRecord, record_of, record_value, rule_id_of
from core.cep.rules import Rule, RuleError
from core.contracts.topics import RULES_TOPIC
from core.settings import KafkaSecuritySettings

TIMEOUT_S = 15.0
# librdkafka's own log would print a line per reconnect attempt (every 50 ms while a broker is away); what went
# wrong reaches the caller as KafkaUnavailable instead.
QUIET = {"log_level": 0}


class Folded(NamedTuple):
    """The topic folded: the rules it holds, and the records the job would reject (rule id -> offset, why)."""

    rules: dict[str, RuleRecord]
    invalid: dict[str, tuple[int, str]]


@dataclass(frozen=True)
class RulesTopic:
    bootstrap: str
    security: KafkaSecuritySettings = field(repr=False)
    topic: str = RULES_TOPIC
    timeout_s: float = TIMEOUT_S

    def put(self, rule_id: str, rule: Rule, enabled: bool = True) -> RuleRecord:
        """Writes the rule's record; returns it as the job will read it, its version included. A record the job
        would refuse (too large) raises RuleError here, before anything is written."""
        if not rule_id:
            raise RuleError("a rule id is a non-empty string")
        value = record_value(rule, enabled)
        record = record_of(value)
        self.write({rule_id: value})
        return record

    def delete(self, rule_id: str) -> None:
        self.write({rule_id: None})

    def write(self, records: dict[str, bytes | None]) -> None:
        """Produces the records (None: a tombstone) to the topic, created compacted if it is not there yet."""
        from confluent_kafka import KafkaException, Producer

        create_topics(self.bootstrap, self.security, {self.topic: 1}, compacted=(self.topic,), options=QUIET)
        errors = []
        producer = Producer(kafka_config(self.bootstrap, self.security, {"enable.idempotence": True, **QUIET}))
        try:
            for key, value in records.items():
                producer.produce(self.topic, key=key.encode(), value=value,
                                 on_delivery=lambda err, msg: errors.append(err) if err else None)
        except KafkaException as exc:
            raise KafkaUnavailable(f"could not write to topic {self.topic!r} on {self.bootstrap}: {exc}") from None
        if producer.flush(self.timeout_s) or errors:
            raise KafkaUnavailable(f"could not write to topic {self.topic!r} on {self.bootstrap}: "
                                   f"{errors[0] if errors else 'no acknowledgement in time'}")

    def fold(self) -> Folded:
        """The latest record per rule id, read as the job would judge it; tombstones remove."""
        rules: dict[str, RuleRecord] = {}
        invalid: dict[str, tuple[int, str]] = {}
        for rule_id, (offset, value) in self.records().items():
            if value is None:
                continue
            try:
                rules[rule_id] = record_of(value)
            except RuleError as exc:
                invalid[rule_id] = (offset, str(exc))
        return Folded(rules, invalid)

    def records(self) -> dict[str, tuple[int, bytes | None]]:
        """Rule id -> (offset, value) of the newest record per key (value None: a tombstone), read to the end;
        {} when the topic does not exist yet."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

        consumer = Consumer(kafka_config(self.bootstrap, self.security, {
            "group.id": "ascep-rules-reader", "enable.auto.commit": False, "enable.partition.eof": True, **QUIET}))
        try:
            try:
                metadata = consumer.list_topics(self.topic, timeout=self.timeout_s).topics.get(self.topic)
                if metadata is None or metadata.error is not None:
                    return {}
                ends = {}
                for p in metadata.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout_s)
                    if high > low:
                        ends[p] = high
            except KafkaException as exc:
                raise KafkaUnavailable(unreachable(self.bootstrap, self.security, exc.args[0].str())) from None
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
            records: dict[str, tuple[int, bytes | None]] = {}
            deadline = time.monotonic() + self.timeout_s
            while ends:
                if time.monotonic() > deadline:
                    raise KafkaUnavailable(f"timed out reading topic {self.topic!r} on {self.bootstrap}")
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        ends.pop(msg.partition(), None)
                        continue
                    raise KafkaUnavailable(f"reading topic {self.topic!r} on {self.bootstrap}: {error}")
                offset = msg.offset() or 0  # a fetched record always has one
                try:
                    records[rule_id_of(msg.key())] = (offset, msg.value())
                except RuleError:
                    pass  # a key that names no rule id (the job dead-letters the record): a record of no rule
                if offset + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
            return records
        finally:
            consumer.close()
