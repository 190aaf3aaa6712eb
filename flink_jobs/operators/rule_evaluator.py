"""Hosts the rule engine: every rule over every tick, rules changed at runtime through a broadcast stream.

The host is not a Flink function itself: the operator that evaluates the rules (the tick reader when
`ticks` has one partition, detection bucket 0 otherwise) holds one and hands it the broadcast changes
and the ticks, in event-time order.

The engine's snapshot is written to keyed state after every batch, so a checkpoint holds the engine and the
Kafka offsets that agree; the broadcast state holds the rules as received. The rules reader passes on only
checked changes; the host checks each again before it keeps it, so that nothing rejected ever reaches broadcast
state, and a rule the engine still refuses is dead-lettered instead of failing the job. Every rule taken in force
(or deleted) is also handed to the sinks, which mirror them in Redis (`ascep:rules:in_force`): the embedded
broker keeps the `rules` topic in memory, and `ascep up` re-publishes the rules from there.
"""
from __future__ import annotations

import hashlib
import logging
import time

from confluent_kafka import Producer
from pyflink.common import Types
from pyflink.datastream import RuntimeContext
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from core.cep.engine import RuleEngine
from core.cep.rule_records import Rejected, check_change, rejected_value, rule_of
from core.clock import now_ms
from core.log import event
from flink_jobs.messages import SinkBatch

log = logging.getLogger(__name__)

RULES_STATE = MapStateDescriptor("rules", Types.STRING(), Types.PICKLED_BYTE_ARRAY())


def rule_version(value: bytes) -> str:
    """What `ascep:rules:stats` shows as a rule's version: a digest of the record on the rules topic."""
    return hashlib.blake2b(value, digest_size=8).hexdigest()


class RuleHost:
    """Evaluates every rule over every tick. Rules arrive on a broadcast stream and apply at once,
    without a restart; one key sees all symbols, so a rule may combine any of them."""

    def __init__(self, deadletter_bootstrap: str, deadletter_topic: str, stats_every_s: float = 1.0) -> None:
        self.bootstrap = deadletter_bootstrap
        self.deadletter_topic = deadletter_topic
        self.stats_every_s = stats_every_s

    def open(self, ctx: RuntimeContext) -> None:
        self.engine_state = ctx.get_state(ValueStateDescriptor("engine", Types.PICKLED_BYTE_ARRAY()))
        self.engine: RuleEngine | None = None
        self.versions: dict[str, str] = {}  # rule id -> digest of the rule as received, shown in the stats
        self.taken: dict[str, bytes | None] = {}  # rules taken in force or deleted since the last batch out
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20})
        self.stats_due = 0.0

    def close(self) -> None:
        self.producer.flush(10)

    def _stats(self) -> dict:
        """Per-rule counters plus the version in force, so a client can see when its change has landed."""
        return {rule_id: {**values, "version": self.versions.get(rule_id)}
                for rule_id, values in self.engine.stats().items()}

    def _reject(self, rejected: Rejected, value: bytes | None) -> None:
        event(log, "rule rejected", logging.WARNING, rule_id=rejected.rule_id, error=rejected.reason)
        self.producer.produce(self.deadletter_topic, rejected_value(rejected, value, now_ms()),
                              key=f"rule:{rejected.rule_id}")
        self.producer.poll(0)

    def _apply(self, rule_id: str, value: bytes | None) -> list[dict] | None:
        """The signal a replaced or deleted rule closes; None when the engine refuses the rule, which is then
        dead-lettered with its reason and leaves the version in force untouched."""
        try:
            closed = self.engine.apply(rule_id, None if value is None else rule_of(value))
        except Exception as exc:  # noqa: BLE001 - whatever a rule makes the engine raise, the job goes on
            self._reject(Rejected(rule_id, f"rule {rule_id!r} rejected: {type(exc).__name__}: {exc}"), value)
            return None
        if value is None:
            self.versions.pop(rule_id, None)
        else:
            self.versions[rule_id] = rule_version(value)
        self.taken[rule_id] = value
        return closed

    def _take(self) -> dict[str, bytes | None] | None:
        taken, self.taken = self.taken, {}
        return taken or None

    def engine_for(self, rules: dict[str, bytes | None], closed: list[dict]) -> RuleEngine:
        """The engine, restored from keyed state after a restart and brought in line with the broadcast
        rules; a rule whose version did not change keeps its restored windows and partial matches.
        Signals closed by rules that changed meanwhile are added to `closed`."""
        if self.engine is None:
            saved = self.engine_state.value()
            self.engine = RuleEngine.restore(saved["engine"]) if saved else RuleEngine()
            self.versions = dict(saved["versions"]) if saved else {}
            for rule_id in set(self.engine.rules) - set(rules):
                closed.extend(self._apply(rule_id, None) or ())
            for rule_id, value in rules.items():
                if self.versions.get(rule_id) != rule_version(value):
                    closed.extend(self._apply(rule_id, value) or ())
        return self.engine

    def on_change(self, change, ctx) -> SinkBatch | None:
        """A broadcast rule change: checked, applied at once if this task holds the engine, and kept in broadcast
        state only if neither the check nor the engine refused it."""
        rule_id, value = change
        rules = ctx.get_broadcast_state(RULES_STATE)
        judged = check_change(rule_id, value, rules.contains)
        if isinstance(judged, Rejected):
            self._reject(judged, value)
            return None
        batch = None
        if self.engine is not None:
            closed = self._apply(rule_id, value)
            if closed is None:
                return None
            batch = SinkBatch(closed, rule_stats=self._stats(), rules_taken=self._take())
        if value is None:
            rules.remove(rule_id)
        else:
            rules.put(rule_id, value)
        return batch

    def after_batch(self, engine: RuleEngine, signals: list[dict], now: int) -> SinkBatch | None:
        """After the batch's ticks went through `engine`: time moves on, the engine goes to keyed state, and
        what the sinks should hear (signals, stats about once a second, counters, rules taken) comes out."""
        signals.extend(engine.advance(now))
        counters = {"rules:late_ticks": len(engine.take_late()), "rules:timed_out": len(engine.take_timeouts())}
        self.engine_state.update({"engine": engine.snapshot(), "versions": dict(self.versions)})
        stats = None
        if time.monotonic() >= self.stats_due:
            self.stats_due = time.monotonic() + self.stats_every_s
            stats = self._stats()
        counters = {name: n for name, n in counters.items() if n}
        taken = self._take()
        if signals or stats or counters or taken:
            return SinkBatch(signals, rule_stats=stats, counters=counters or None, rules_taken=taken)
        return None
