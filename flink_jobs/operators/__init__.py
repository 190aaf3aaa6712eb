"""Flink operators that host the pure detectors and the rule engine."""
