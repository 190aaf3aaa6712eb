"""The Kafka topics and how records are spread over their partitions (docs/ticks.md)."""
from __future__ import annotations

import zlib

TICKS_TOPIC = "ticks"
TRADES_TOPIC = "trades"
DEADLETTER_TOPIC = "deadletter"
RULES_TOPIC = "rules"  # compacted: key = rule id, value = rule JSON, a tombstone deletes
SIGNALS_TOPIC = "signals"  # every signal state, keyed by signal id: the lake archives it


def partition_for_symbol(symbol: str, partitions: int) -> int:
    """The partition of a symbol's ticks and trades; the Flink job assumes exactly this function."""
    return zlib.crc32(symbol.encode()) % partitions
