"""Detection buckets: triangular, direct and rule detection when `ticks` has several partitions.

Every partition's reader sends each bucket its share of a batch (core/detection.py's routes: a venue's
ticks to one bucket, a pair's, for direct detection and the partitioned rules of its symbols, to one, and
all to bucket 0 for the other rules) with its watermark, even when the share is empty, and the batch of
`trades` routed alike (core/detection.py's trade_routes) with their watermark; the bucket merges the
partitions in event-time order and detects (DetectionHost). The bucket count is fixed by
job.detection_buckets, so state survives a change of parallelism.
"""
from __future__ import annotations

from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.functions import KeyedBroadcastProcessFunction

from core.contracts.tick import Tick
from core.contracts.trade import Trade
from flink_jobs.operators.detection_host import DetectionHost


class BucketDetection:
    """The body of both bucket operators: with the rules' broadcast, or without."""

    def __init__(self, host: DetectionHost) -> None:
        self.host = host

    def open(self, ctx: RuntimeContext) -> None:
        self.host.open(ctx)

    def close(self) -> None:
        self.host.close()

    def process_element(self, share, ctx):
        # a share taken in flight by a checkpoint of an older job has no read time
        bucket, partition, watermark, entries, shared_trades, *read_at = share
        keys = [entry[0] for entry in entries]
        ticks = [Tick(*entry[2:]) for entry in entries]
        trades = None
        if shared_trades is not None:  # flink_jobs/readers/ticks.py: (watermark, [(key, flags, *trade)])
            trade_watermark, trade_entries = shared_trades
            trades = ([entry[0] for entry in trade_entries], [Trade(*entry[2:]) for entry in trade_entries],
                      [entry[1] for entry in trade_entries], trade_watermark)
        batch = self.host.on_batch(bucket, partition, keys, ticks, [entry[1] for entry in entries], watermark, ctx,
                                   trades)
        if batch is not None:
            yield batch._replace(read_at=read_at[0] if read_at else None)


class Buckets(BucketDetection, KeyedProcessFunction):
    """Detection buckets when no rules run."""


class BucketsWithRules(BucketDetection, KeyedBroadcastProcessFunction):
    """Detection buckets that hear the rules' broadcast: bucket 0 evaluates the rules over named symbols,
    every bucket the partitioned rules for its symbols."""

    def process_broadcast_element(self, change, ctx):
        batch = self.host.on_change(change, ctx)
        if batch is not None:
            yield batch
