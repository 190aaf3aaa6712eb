"""Hosts triangular, direct and rule detection (core/detection.py) on one Flink key, with its state.

The key is the partition when the tick reader detects in place (`ticks` has one partition), or a
detection bucket fed by every partition's reader. Per key: the event-time merge of the partitions,
the detectors' state entry by entry (a venue's quotes, a pair), and, on the key that evaluates them,
the rules. Only the entries a batch changed are written back, in the same call that handles the batch,
so a checkpoint holds detector state, merge and Kafka offsets that agree.

The key that evaluates the rules also merges the partitions of `trades`, as sources after those of
`ticks`. It waits for them only while a rule reads trades: a rule of quotes alone, or triangular and
direct detection beside it, need not wait for the producers' watermark records on quiet trades partitions.
"""
from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from core.clock import now_ms
from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.detection import COUNTED, Detection
from core.event_order import EventTimeMerge
from core.settings import ArbitrageSettings
from flink_jobs.messages import SinkBatch
from flink_jobs.operators.rule_evaluator import RULES_STATE, RuleHost


def _map_state(ctx: RuntimeContext, name: str):
    return ctx.get_map_state(MapStateDescriptor(name, Types.STRING(), Types.PICKLED_BYTE_ARRAY()))


class DetectionHost:
    """`sources`: the partitions merged on each key; `rules`: the rule host (every key has an engine: the
    ticks' and trades' flags say which of its rules each is for)."""

    def __init__(self, arbitrage: ArbitrageSettings, sources: int, idle_after_ms: int,
                 rules: RuleHost | None) -> None:
        self.arbitrage = arbitrage
        self.sources = sources
        self.idle_after_ms = idle_after_ms
        self.rules = rules

    def open(self, ctx: RuntimeContext) -> None:
        self.quotes = _map_state(ctx, "triangular_quotes")
        self.venues = _map_state(ctx, "triangular_venues")
        self.pairs = _map_state(ctx, "direct_pairs")
        self.order = ctx.get_state(ValueStateDescriptor("event_order", Types.PICKLED_BYTE_ARRAY()))
        self.held = _map_state(ctx, "event_order_held")  # the merge's held ticks, one entry per batch
        self.keys: dict[object, tuple[EventTimeMerge, Detection]] = {}
        if self.rules is not None:
            self.rules.open(ctx)

    def close(self) -> None:
        if self.rules is not None:
            self.rules.close()

    def _of(self, key) -> tuple[EventTimeMerge, Detection]:
        """The key's merge and detectors, rebuilt from keyed state when this task (re)starts."""
        found = self.keys.get(key)
        if found is None:
            saved = self.order.value()
            sources = self.sources * (2 if self.rules is not None else 1)  # with the rules, each partition's trades
            merge = (EventTimeMerge.restore(saved, ((int(batch), held) for batch, held in self.held.items()), sources)
                     if saved else EventTimeMerge(sources, self.idle_after_ms))
            detection = Detection(self.arbitrage)
            detection.load(self.quotes.items(), self.venues.items(), self.pairs.items())
            found = self.keys[key] = (merge, detection)
        return found

    def on_change(self, change, ctx) -> SinkBatch | None:
        return self.rules.on_change(change, ctx) if self.rules is not None else None

    def on_batch(self, key, source: int, keys: list[int], ticks: list[Tick], flags: list[int], watermark: int,
                 ctx, trades: tuple[list[int], list[Trade], list[int], int] | None = None) -> SinkBatch | None:
        """One batch of partition `source` for this key: its ticks in offset order, their order keys and what
        each is for (core/detection.py's flags); `ctx` reads the broadcast rules. With the rules on, `trades`:
        this key's share of the same partition's batch of `trades`, as (order keys, trades, flags, watermark)."""
        merge, detection = self._of(key)
        late_before = merge.late_count
        signals: list[dict] = []
        engine = None
        if self.rules is not None:
            engine = self.rules.engine_for(key, dict(ctx.get_broadcast_state(RULES_STATE).items()), signals)
        waits = engine is not None and engine.reads_trades()
        merge.waits_for = self.sources * (2 if waits else 1)
        released, released_flags = merge.add(source, keys, ticks, flags, watermark)
        if trades is not None:  # none needed while no rule reads them: only their watermark is kept
            trade_keys, traded, trade_flags, trade_watermark = trades if waits else ([], [], [], trades[3])
            more, more_flags = merge.add(self.sources + source, trade_keys, traded, trade_flags, trade_watermark)
            released += more
            released_flags += more_flags
        now = now_ms()
        # no rules, nothing to evaluate: the engine's windows exist per rule (a rule added later starts afresh)
        signals.extend(detection.run(released, released_flags, now, engine if engine and engine.has_rules else None))
        quotes, venues, pairs = detection.take_changes()
        for name, entry in quotes.items():  # put_all wants a dict in thread mode, pairs in process mode
            self.quotes.put(name, entry)
        for name, saved in venues.items():
            self.venues.put(name, saved)
        for name, pair in pairs.items():
            self.pairs.put(name, pair)
        held, released = merge.take_changes()
        for batch, entries in held.items():
            self.held.put(str(batch), entries)
        for batch in released:
            self.held.remove(str(batch))
        self.order.update(merge.header())
        counts = self._counts(merge.late_count - late_before, released_flags)
        if engine is not None and self.rules is not None:
            batch = self.rules.after_batch(key, engine, signals, now)
            if batch is not None:
                return batch._replace(counters={**(batch.counters or {}), **counts} or None)
        if signals or counts:
            return SinkBatch(signals, counters=counts or None)
        return None

    @staticmethod
    def _counts(late: int, flags: list[int]) -> dict[str, int]:
        """What the sinks add to ascep:counters: ticks through detection (each once, however many buckets
        it went to), and ticks or trades processed out of order because their partition had been idle (or, for
        trades, because the rules began to wait for them after they were due)."""
        counts = {"detected": sum(1 for flag in flags if flag & COUNTED)}
        if late:
            counts["detect:late_ticks"] = late
        return counts if counts["detected"] or late else {}
