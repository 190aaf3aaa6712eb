"""Hosts the rule engine, rules changed at runtime through a broadcast stream.

The host is not a Flink function itself: the operator that evaluates the rules (the tick reader when
`ticks` has one partition, the detection buckets otherwise) holds one and hands it the broadcast changes
and the ticks, in event-time order. Each key (the reader's partition, or a bucket) has an engine of its
own: bucket 0 evaluates the rules over named symbols, and each bucket the partitioned rules for the
symbols routed to it (core/detection.py), so partitioned rules scale out with the buckets.

What a batch changed in the engine is written to keyed state after it (RuleEngine.take_changes), so a
checkpoint holds the engine and the Kafka offsets that agree; the broadcast state holds the rules as
received. The rules reader passes on only checked changes; the host checks each again before it keeps it,
so that nothing rejected ever reaches broadcast state, and a rule the engine still refuses is dead-lettered
instead of failing the job. Every rule taken in force (or deleted) is also handed to the sinks, which mirror
them in Redis (`ascep:rules:in_force`): the embedded broker keeps the `rules` topic in memory, and `ascep up`
re-publishes the rules from there.
"""
from __future__ import annotations

import logging
import time

from confluent_kafka import Producer
from pyflink.common import Types
from pyflink.datastream import RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from clients.kafka import kafka_config
from core.cep.engine import RuleEngine
from core.cep.rule_records import Rejected, check_change, record_of, rejected_value, rule_version
from core.clock import now_ms
from core.log import event
from core.settings import KafkaSecuritySettings, RuleSettings
from flink_jobs.messages import SinkBatch

log = logging.getLogger(__name__)

RULES_STATE = MapStateDescriptor("rules", Types.STRING(), Types.PICKLED_BYTE_ARRAY())


class RuleHost:
    """Rule engines, one per key of the operator hosting them. Rules arrive on a broadcast stream and apply
    at once to every engine of this task, without a restart."""

    def __init__(self, deadletter_bootstrap: str, security: KafkaSecuritySettings, deadletter_topic: str,
                 limits: RuleSettings, stats_every_s: float = 1.0) -> None:
        self.bootstrap = deadletter_bootstrap
        self.security = security
        self.deadletter_topic = deadletter_topic
        self.limits = limits  # settings.rules: the caps on each pattern's state
        self.stats_every_s = stats_every_s

    def open(self, ctx: RuntimeContext) -> None:
        self.engine_state = ctx.get_map_state(MapStateDescriptor("rule_engine", Types.STRING(),
                                                                 Types.PICKLED_BYTE_ARRAY()))
        self.versions_state = ctx.get_state(ValueStateDescriptor("rule_versions", Types.PICKLED_BYTE_ARRAY()))
        self.engines: dict[object, RuleEngine] = {}  # key -> its engine, once the key's first batch came
        self.versions: dict[object, dict[str, str]] = {}  # key -> rule id -> digest of the rule as received
        self.versions_changed: set = set()  # keys whose versions keyed state has not been told yet
        self.taken: dict[str, bytes | None] = {}  # rules taken in force or deleted since the last batch out
        self.producer = Producer(kafka_config(self.bootstrap, self.security, {"linger.ms": 20}))
        self.stats_due: dict[object, float] = {}

    def close(self) -> None:
        self.producer.flush(10)

    def _stats(self, key) -> dict:
        """Per-rule counters plus the version in force, so a client can see when its change has landed."""
        versions = self.versions[key]
        return {rule_id: {**values, "version": versions.get(rule_id)}
                for rule_id, values in self.engines[key].stats().items()}

    def _reject(self, rejected: Rejected, value: bytes | None) -> None:
        event(log, "rule rejected", logging.WARNING, rule_id=rejected.rule_id, error=rejected.reason)
        self.producer.produce(self.deadletter_topic, rejected_value(rejected, value, now_ms()),
                              key=f"rule:{rejected.rule_id}")
        self.producer.poll(0)

    def _apply(self, key, rule_id: str, value: bytes | None, report: bool = True) -> list[dict] | None:
        """The signal a replaced, deleted or disabled rule closes; None when the key's engine refuses the rule,
        which is then dead-lettered with its reason (once, by the first engine that refuses it: `report`) and
        leaves the version in force untouched. A disabled rule leaves the engine as a deleted one does."""
        record = None if value is None else record_of(value)
        running = record if record is not None and record.enabled else None
        try:
            closed = self.engines[key].apply(rule_id, None if running is None else running.rule)
        except Exception as exc:  # noqa: BLE001 - whatever a rule makes the engine raise, the job goes on
            if report:
                self._reject(Rejected(rule_id, f"rule {rule_id!r} rejected: {type(exc).__name__}: {exc}"), value)
            return None
        versions = self.versions[key]
        if running is None:
            versions.pop(rule_id, None)
        else:
            versions[rule_id] = running.version
        self.versions_changed.add(key)
        self.taken[rule_id] = value
        return closed

    def _take(self) -> dict[str, bytes | None] | None:
        taken, self.taken = self.taken, {}
        return taken or None

    def engine_for(self, key, rules: dict[str, bytes | None], closed: list[dict]) -> RuleEngine:
        """The key's engine, restored from keyed state after a restart and brought in line with the broadcast
        rules; a rule whose version did not change keeps its restored windows and partial matches.
        Signals closed by rules that changed meanwhile are added to `closed`."""
        engine = self.engines.get(key)
        if engine is None:
            entries = dict(self.engine_state.items())
            engine = self.engines[key] = RuleEngine.restore(entries, limits=self.limits) if entries else \
                RuleEngine(limits=self.limits)
            self.versions[key] = dict(self.versions_state.value() or {})
            for rule_id in set(self.versions[key]) - set(rules):
                closed.extend(self._apply(key, rule_id, None) or ())
            for rule_id, value in rules.items():
                if self.versions[key].get(rule_id) != rule_version(value):
                    closed.extend(self._apply(key, rule_id, value) or ())
        return engine

    def on_change(self, change, ctx) -> SinkBatch | None:
        """A broadcast rule change: checked, applied at once to this task's engines, and kept in broadcast
        state only if neither the check nor the engine refused it."""
        rule_id, value = change
        rules = ctx.get_broadcast_state(RULES_STATE)
        judged = check_change(rule_id, value, rules.contains)
        if isinstance(judged, Rejected):
            self._reject(judged, value)
            return None
        batch = None
        if self.engines:
            closed: list[dict] = []
            for i, key in enumerate(self.engines):
                taken = self._apply(key, rule_id, value, report=i == 0)
                if taken is None:
                    return None
                closed.extend(taken)
            key = min(self.engines)  # one key's counters, so the dashboard sees the change land at once
            batch = SinkBatch(closed, rule_stats=self._stats(key), rule_stats_part=key, rules_taken=self._take())
        if value is None:
            rules.remove(rule_id)
        else:
            rules.put(rule_id, value)
        return batch

    def after_batch(self, key, engine: RuleEngine, signals: list[dict], now: int) -> SinkBatch | None:
        """After the batch's ticks went through the key's `engine`: time moves on, what the engine changed goes
        to keyed state, and what the sinks should hear (signals, stats about once a second per key, counters,
        rules taken) comes out."""
        signals.extend(engine.advance(now))
        counters = {"rules:late_ticks": len(engine.take_late()), "rules:timed_out": len(engine.take_timeouts())}
        for rule_id in engine.take_capped():
            event(log, "rule state capped: its oldest partial matches are dropped", logging.WARNING, rule_id=rule_id,
                  key=key, max_partial_matches=self.limits.max_partial_matches,
                  max_events_held=self.limits.max_events_held)
        changed, removed = engine.take_changes()
        for name, entry in changed.items():  # put_all wants a dict in thread mode, pairs in process mode
            self.engine_state.put(name, entry)
        for name in removed:
            self.engine_state.remove(name)
        if key in self.versions_changed:
            self.versions_changed.discard(key)
            self.versions_state.update(dict(self.versions[key]))
        stats = None
        if time.monotonic() >= self.stats_due.get(key, 0.0):
            self.stats_due[key] = time.monotonic() + self.stats_every_s
            stats = self._stats(key)
        counters = {name: n for name, n in counters.items() if n}
        taken = self._take()
        if signals or stats or counters or taken:
            return SinkBatch(signals, rule_stats=stats, rule_stats_part=key, counters=counters or None,
                             rules_taken=taken)
        return None
