"""RuleEngine: user rules over ticks, changed at runtime, with state the Flink job can checkpoint.

FlinkCEP cannot change a pattern without a restart and PyFlink does not expose it at all, so the
job hosts this engine in a keyed function: rules arrive from the compacted `rules` topic through
apply() (None deletes, like a tombstone), ticks through on_tick(). Ticks go through the watermark
stage first, so windows and patterns see event-time order; late ticks go to take_late().

An IF rule is an opportunity with a lifetime: a signal opens when its condition turns true and
closes (same id) when it turns false. A PATTERN rule emits one closed signal per match.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core import clock
from core.contracts.signal import Signal, signal_id
from core.contracts.tick import Tick
from core.settings import RuleSettings

from . import nfa
from .compiler import Compiled, Fn, Market, Unknown
from .eventtime import Reorderer
from .rules import Pattern, Rule, load, symbols_of, to_json

END_OF_TIME = 2**62


@dataclass
class RuleStats:
    evaluations: int = 0
    matches: int = 0
    errors: int = 0
    timeouts: int = 0
    time_ns: int = 0
    last_error: str | None = None


@dataclass
class _Rule:
    rule_id: str
    rule: Rule
    compiled: Compiled
    symbols: frozenset[str]
    evaluate: Callable[[_Rule, Tick, int], Sequence[Signal]]  # the engine's evaluator for this kind of rule
    nfa: nfa.NFA | None = None
    open_signal: Signal | None = None
    stats: RuleStats = field(default_factory=RuleStats)
    capped: bool = False  # its NFA dropped partial matches, and the host was told (take_capped)


def build_nfa(pattern: Pattern, conditions: Mapping[str, nfa.Condition], uses_match: Mapping[str, bool],
              limits: RuleSettings | None = None) -> nfa.NFA:
    """The NFA that runs a rule's PATTERN; a stage's condition is its DEFINE's, under the stage's name.
    Without limits its state is unbounded."""
    skip = pattern.skip
    caps = (limits.max_partial_matches, limits.max_events_held) if limits is not None else (None, None)
    return nfa.NFA(nfa.Pattern(
        [nfa.Stage(s.name, conditions[s.name], s.link, s.low, s.high, s.optional, s.greedy, s.inner, uses_match[s.name])
         for s in pattern.stages],
        pattern.within_ms, ("no_skip", None) if skip is None else (skip.strategy, skip.stage), pattern.within_type),
        *caps)


def _state(machine: nfa.NFA | None) -> dict[str, int]:
    runs, events = machine.state() if machine is not None else (0, 0)
    return {"partial_matches": runs, "events_held": events,
            "partial_matches_dropped": machine.dropped if machine is not None else 0}


def _events_json(match: nfa.Match) -> dict[str, list[dict[str, Any]]]:
    return {stage: [tick.to_json_dict() for tick in ticks] for stage, ticks in match.events.items()}


def _as_condition(fn: Fn) -> nfa.Condition:
    def condition(event: Any, match: nfa.Node | None) -> bool:
        try:
            return fn(match)
        except Unknown:
            return False
    return condition


class RuleEngine:
    def __init__(self, out_of_orderness_ms: int = 0, idle_timeout_ms: int = 5_000,
                 max_side_output: int = 10_000, limits: RuleSettings | None = None) -> None:
        """Side outputs (late ticks, timed-out partial matches) hold at most max_side_output items
        between drains; beyond that they are only counted (late_count, per-rule timeouts). `limits` caps
        each pattern's state (settings.rules; its defaults when None)."""
        self.market = Market()
        self.reorderer = Reorderer(out_of_orderness_ms, idle_timeout_ms, max_side_output)
        self.rules: dict[str, _Rule] = {}
        self._by_symbol: dict[str, list[_Rule]] = {}
        self.timed_out: list[dict] = []  # timed-out partial matches; the host drains them with take_timeouts()
        self.max_side_output = max_side_output
        self.limits = limits or RuleSettings()
        self.newly_capped: list[str] = []  # rules that began dropping partial matches; drained by take_capped()

    # ------------------------------------------------------------ rules

    def apply(self, rule_id: str, rule: Rule | dict | str | None) -> list[Signal]:
        """Add, replace (state starts afresh) or, with None, delete a rule; return the signal this
        closes, if the old rule had one open, so the sinks do not keep it open forever.

        Applying the rule that is already there changes nothing (a re-read topic must not reset state).
        A bad rule raises RuleError and leaves the rule that was there in place."""
        if rule is None:
            return self._remove(rule_id)
        checked = rule if isinstance(rule, Rule) else load(rule)
        current = self.rules.get(rule_id)
        if current is not None and current.rule == checked:
            return []
        compiled = Compiled(checked, self.market)
        symbols = frozenset(symbols_of(checked))
        if isinstance(checked.body, Pattern):
            conditions = {name: _as_condition(fn) for name, fn in compiled.defines.items()}
            entry = _Rule(rule_id, checked, compiled, symbols, self._evaluate_pattern,
                          build_nfa(checked.body, conditions, compiled.define_uses_match, self.limits))
        else:
            entry = _Rule(rule_id, checked, compiled, symbols, self._evaluate_condition)
        closed = self._remove(rule_id)
        self.rules[rule_id] = entry
        for symbol in entry.symbols:
            self._by_symbol.setdefault(symbol, []).append(entry)
        return closed

    def _remove(self, rule_id: str) -> list[Signal]:
        entry = self.rules.pop(rule_id, None)
        if entry is None:
            return []
        closed = []
        if entry.open_signal is not None:
            at = max(self.reorderer.watermark + 1, entry.open_signal["updated_at"])
            entry.open_signal.update({"status": "closed", "closed_at": at, "updated_at": at})
            closed.append(entry.open_signal)
        self.market.release(entry.compiled.window_keys)
        for symbol in entry.symbols:
            remaining = [r for r in self._by_symbol[symbol] if r is not entry]
            if remaining:
                self._by_symbol[symbol] = remaining
            else:
                del self._by_symbol[symbol]
        return closed

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per rule: its counters, and the state it holds (partial matches live, the events they hold) with
        the partial matches its caps dropped."""
        return {rule_id: {**vars(entry.stats), **_state(entry.nfa)} for rule_id, entry in self.rules.items()}

    # ------------------------------------------------------------ events

    def on_tick(self, tick: Tick, now_ms: int | None = None, source: str = "stream") -> list[Signal]:
        """`source` is where the tick came from for watermarking (the job passes its Kafka partition):
        each source's event time advances separately and the slowest active one sets the watermark."""
        now_ms = clock.now_ms() if now_ms is None else now_ms
        released = self.reorderer.push(source, tick.ts, tick, now_ms)
        return self._process(released, now_ms) if released else []

    def on_trade(self, trade: Any) -> None:
        """Trades (anything with venue, symbol, price, size, ts) feed volume and vwap windows."""
        self.market.on_trade(trade.venue, trade.symbol, trade.price, trade.size, trade.ts)

    def advance(self, now_ms: int | None = None) -> list[Signal]:
        """Call on a processing-time timer: idle sources stop holding the watermark back."""
        now_ms = clock.now_ms() if now_ms is None else now_ms
        out = self._process(self.reorderer.advance(now_ms), now_ms)
        watermark = self.reorderer.watermark
        for entry in self.rules.values():
            if entry.nfa is not None:
                self._record_timeouts(entry, entry.nfa.advance_time(watermark + 1))
        return out

    def finish(self) -> list[Signal]:
        """End of input: release every held tick and time out every partial match (as Flink does when
        a bounded input ends and the watermark jumps to the end of time)."""
        out = self.advance(END_OF_TIME)
        for entry in self.rules.values():
            if entry.nfa is not None:
                self._record_timeouts(entry, entry.nfa.advance_time(END_OF_TIME))
        return out

    def take_late(self) -> list[Tick]:
        return self.reorderer.take_late()

    @property
    def late_count(self) -> int:
        return self.reorderer.late_count

    def take_capped(self) -> list[str]:
        """The rules whose state reached a cap since the last call, each rule once: for the host to warn."""
        capped, self.newly_capped = self.newly_capped, []
        return capped

    def take_timeouts(self) -> list[dict]:
        timed_out, self.timed_out = self.timed_out, []
        return timed_out

    def _process(self, ticks: list[Tick], now_ms: int) -> list[Signal]:
        out: list[Signal] = []
        market, by_symbol = self.market, self._by_symbol
        perf_ns = time.perf_counter_ns
        for tick in ticks:
            market.on_tick(tick)
            for entry in by_symbol.get(tick.symbol, ()):
                stats = entry.stats
                started = perf_ns()
                stats.evaluations += 1
                try:
                    signals = entry.evaluate(entry, tick, now_ms)
                    if signals:
                        out.extend(signals)
                except Exception as exc:  # noqa: BLE001 - one bad rule must not stop the others
                    stats.errors += 1
                    stats.last_error = f"{type(exc).__name__}: {exc}"
                stats.time_ns += perf_ns() - started
        return out

    def _evaluate_condition(self, entry: _Rule, tick: Tick, now_ms: int) -> tuple[Signal, ...]:
        condition = entry.compiled.condition
        assert condition is not None  # IF rules have one
        try:
            holds = condition(None)
        except Unknown:
            holds = False
        current = entry.open_signal
        if holds and current is None:
            entry.stats.matches += 1
            signal = self._signal(entry, tick.ts, now_ms)
            entry.open_signal = signal
            return (signal.copy(),)
        if not holds and current is not None:
            entry.open_signal = None
            current.update({"status": "closed", "closed_at": tick.ts, "updated_at": tick.ts})
            return (current,)
        return ()

    def _evaluate_pattern(self, entry: _Rule, tick: Tick, now_ms: int) -> list[Signal] | tuple[()]:
        assert entry.nfa is not None  # pattern rules have one
        matches, timeouts = entry.nfa.process(tick, tick.ts)
        if entry.nfa.dropped and not entry.capped:
            entry.capped = True
            self.newly_capped.append(entry.rule_id)
        if timeouts:
            self._record_timeouts(entry, timeouts)
        if not matches:
            return ()
        out = []
        for match in matches:
            entry.stats.matches += 1
            signal = self._signal(entry, match.start_ts, now_ms)
            signal.update({"status": "closed", "closed_at": match.end_ts, "updated_at": match.end_ts,
                           "events": _events_json(match)})
            out.append(signal)
        return out

    def _record_timeouts(self, entry: _Rule, timeouts: list[nfa.Match]) -> None:
        for partial in timeouts:
            entry.stats.timeouts += 1
            if len(self.timed_out) < self.max_side_output:
                self.timed_out.append({"rule_id": entry.rule_id, "start_ts": partial.start_ts,
                                       "last_ts": partial.end_ts, "events": _events_json(partial)})

    @staticmethod
    def _signal(entry: _Rule, event_time: int, now_ms: int) -> Signal:
        name = entry.rule.then
        return {"id": signal_id("rule", (entry.rule_id, name), event_time), "type": "rule", "legs": [],
                "profit_bps": 0.0, "size": None, "event_time": event_time, "updated_at": event_time,
                "closed_at": None, "status": "open", "detected_at": now_ms, "rule_id": entry.rule_id, "name": name}

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict:
        """Everything the engine knows, as plain picklable data (the job keeps it in Flink state); rules
        in their JSON form, which restore() reads back."""
        return {
            "rules": {rid: to_json(e.rule) for rid, e in self.rules.items()},
            "market": self.market.snapshot(),
            "reorderer": self.reorderer.snapshot(),
            "nfas": {rid: e.nfa.snapshot() for rid, e in self.rules.items() if e.nfa is not None},
            "open": {rid: e.open_signal for rid, e in self.rules.items() if e.open_signal is not None},
            "stats": {rid: vars(e.stats).copy() for rid, e in self.rules.items()},
            "timed_out": list(self.timed_out),
        }

    @classmethod
    def restore(cls, snap: dict, max_side_output: int = 10_000, limits: RuleSettings | None = None) -> RuleEngine:
        engine = cls(max_side_output=max_side_output, limits=limits)
        engine.reorderer = Reorderer.restore(snap["reorderer"])
        for rule_id, rule in snap["rules"].items():
            engine.apply(rule_id, rule)
        engine.market.restore(snap["market"])
        for rule_id, entry in engine.rules.items():
            if entry.nfa is not None and rule_id in snap["nfas"]:
                entry.nfa.restore(snap["nfas"][rule_id])
                entry.capped = entry.nfa.dropped > 0  # warned about before the restore
            entry.open_signal = snap["open"].get(rule_id)
            entry.stats = RuleStats(**snap["stats"].get(rule_id, {}))
        engine.timed_out = list(snap["timed_out"])
        return engine

