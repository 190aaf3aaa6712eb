"""Hosts one pure detector (triangular by venue, direct by currency pair) over the batches of its key.

The detector's state lives in Flink keyed state and is written back after every batch, so a checkpoint
always holds state and Kafka offsets that agree.
"""
from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from core.clock import now_ms
from flink_jobs.messages import SinkBatch


class KeyedDetector(KeyedProcessFunction):
    """Runs one detector (triangular by venue, direct by currency pair) over the batches of its key."""

    def __init__(self, detector_class, arbitrage) -> None:
        self.detector_class = detector_class
        self.arbitrage = arbitrage

    def open(self, ctx: RuntimeContext) -> None:
        self.detector = self.detector_class(self.arbitrage)
        self.state = ctx.get_state(ValueStateDescriptor("detector", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, keyed_batch, ctx):
        _key, ticks = keyed_batch
        state = self.state.value() or self.detector.State()
        now = now_ms()
        signals = []
        for tick in ticks:
            signals.extend(self.detector.on_tick(state, tick, now))
        self.state.update(state)
        if signals:
            yield SinkBatch(signals)
