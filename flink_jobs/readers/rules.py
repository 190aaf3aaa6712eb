"""Reads the compacted `rules` topic for the rule evaluator's broadcast stream."""
from __future__ import annotations

from flink_jobs.readers.kafka_partition import PartitionReader


class RulesReader(PartitionReader):
    """Reads the compacted `rules` topic: each record is (rule id, rule JSON), or a tombstone (None)."""

    STAGE = "rules"

    def handle(self, partition: int, records: list):
        for message in records:
            key = message.key()
            if key:
                yield key.decode("utf-8", "replace"), message.value()
