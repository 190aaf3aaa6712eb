"""Flink operators that read Kafka from Python, with their offsets in keyed state."""
