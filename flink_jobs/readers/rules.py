"""Reads the compacted `rules` topic for the rule evaluator's broadcast stream, and judges every record first."""
from __future__ import annotations

from confluent_kafka import Producer
from pyflink.common import Types
from pyflink.datastream import RuntimeContext
from pyflink.datastream.state import MapStateDescriptor

from clients.kafka import kafka_config
from core.cep.rule_records import Rejected, judge, rejected_value
from core.clock import now_ms
from core.settings import KafkaSecuritySettings
from flink_jobs.readers.kafka_partition import PartitionReader


class RulesReader(PartitionReader):
    """Passes on (rule id, rule JSON) for a checked rule and (rule id, None) for a tombstone of a rule in force;
    every other record is dead-lettered with its reason and offset (core/cep/rule_records.py). Deciding here, once,
    keeps the broadcast and every state downstream free of bad records."""

    STAGE = "rules"

    def __init__(self, bootstrap: str, security: KafkaSecuritySettings, topic: str, deadletter_topic: str,
                 poll_batch: int, fetch_wait_ms: int, redis_url: str | None = None) -> None:
        super().__init__(bootstrap, security, topic, poll_batch, fetch_wait_ms, redis_url)
        self.deadletter_topic = deadletter_topic

    def open(self, ctx: RuntimeContext) -> None:
        super().open(ctx)
        # the ids this reader passed on and has not seen deleted since: what a tombstone may delete
        self.rule_ids = ctx.get_map_state(MapStateDescriptor("rule_ids", Types.STRING(), Types.BOOLEAN()))
        self.producer = Producer(kafka_config(self.bootstrap, self.security, {"linger.ms": 20}))

    def close(self) -> None:
        super().close()
        self.producer.flush(10)

    def handle(self, partition: int, records: list):
        received_ms = now_ms()
        for message in records:
            judged = judge(message.key(), message.value(), self.rule_ids.contains)
            if isinstance(judged, Rejected):
                self.producer.produce(self.deadletter_topic, rejected_value(
                    judged, message.value(), received_ms, topic=self.topic, partition=partition,
                    offset=message.offset()), key=f"rules:{partition}")
                continue
            if judged.value is None:
                self.rule_ids.remove(judged.rule_id)
            else:
                self.rule_ids.put(judged.rule_id, True)
            yield judged.rule_id, judged.value
        self.producer.poll(0)
