"""The Flink operator that hands each batch's results to the sinks (chained after the reader, no serialization hop)."""
from __future__ import annotations

from pyflink.datastream import FlatMapFunction, RuntimeContext

from flink_jobs.sinks.redis_sink import RedisSink


class BatchWriter(FlatMapFunction):
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def open(self, ctx: RuntimeContext) -> None:
        self.redis = RedisSink(self.redis_url)

    def flat_map(self, batch):
        _partition, _last_offset, signals, latest, ticks, deadletters = batch
        if signals:
            self.redis.write_signals(signals)
        self.redis.write_prices(latest, ticks, deadletters)
        return ()
