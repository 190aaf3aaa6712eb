"""RuleEngine: user rules over ticks, changed at runtime, with state the Flink job can checkpoint.

FlinkCEP cannot change a pattern without a restart and PyFlink does not expose it at all, so the
job hosts this engine in a keyed function: rules arrive from the compacted `rules` topic through
apply() (None deletes, like a tombstone), ticks through on_tick(). Ticks go through the watermark
stage first, so windows and patterns see event-time order; late ticks go to take_late().

An IF rule is an opportunity with a lifetime: a signal opens when its condition turns true and
closes (same id) when it turns false. A PATTERN rule emits one closed signal per match.

A partitioned rule (PARTITION BY symbol) runs once per key, each key with its own windows, partial
matches and open signal, as FlinkCEP does after keyBy(): the engine binds the rule to a key when the
key's first event comes (rules.tree.bind), so a key runs exactly the rule a user would write for it.
Trades are events too: they feed volume and vwap windows and are evaluated like ticks.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from core import clock
from core.contracts.signal import Signal, signal_id
from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.settings import RuleSettings

from . import nfa
from .compiler import TRADE_FUNCTIONS, Compiled, Fn, Market, Unknown
from .eventtime import Reorderer
from .rules import Pattern, Rule, load, symbols_of, to_json
from .rules.covers import matcher
from .rules.tree import bind
from .windows import Trailing

END_OF_TIME: Final = 2**62
COMPACT_MIN: Final = 100_000  # logged events before the windows are written whole, however few events they hold
_LOG_ENTRY_COST: Final = 64  # a log entry's cost to the state, in logged events: a live feed's batches are small
_TIMED_EVERY: Final = 32  # evaluations per one timed: RuleStats.time_ns is the timed ones' time, scaled


@dataclass
class RuleStats:
    evaluations: int = 0
    matches: int = 0
    errors: int = 0
    timeouts: int = 0
    time_ns: int = 0  # estimated from every _TIMED_EVERY-th evaluation's time
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _STAT_FIELDS}


_STAT_FIELDS = tuple(f.name for f in fields(RuleStats))


@dataclass(eq=False, slots=True)  # identity: the engine keeps sets of the ones a batch touched
class _Rule:
    rule_id: str
    rule: Rule
    compiled: Compiled
    symbols: frozenset[str]
    nfa: nfa.NFA | None = None  # a PATTERN rule's; an IF rule has none
    open_signal: Signal | None = None
    stats: RuleStats = field(default_factory=RuleStats)
    key: str | None = None  # one key of a partitioned rule: "BTC/USDT", or "BTC/USDT@binance" by venue


@dataclass
class _Partitioned:
    """A partitioned rule: one _Rule per key, all counting into the one RuleStats."""
    rule_id: str
    rule: Rule
    covered: Callable[[str, str], bool]  # (symbol, venue) -> whether the rule runs for it
    instances: dict[str, _Rule] = field(default_factory=dict)
    stats: RuleStats = field(default_factory=RuleStats)


def build_nfa(pattern: Pattern, conditions: Mapping[str, nfa.Condition], uses_match: Mapping[str, bool],
              limits: RuleSettings | None = None) -> nfa.NFA:
    """The NFA that runs a rule's PATTERN; a stage's condition is its DEFINE's, under the stage's name.
    Without limits its state is unbounded."""
    skip = pattern.skip
    caps = (limits.max_partial_matches, limits.max_events_held) if limits is not None else (None, None)
    return nfa.NFA(nfa.Pattern(
        [nfa.Stage(s.name, conditions[s.name], s.link, s.low, s.high, s.optional, s.greedy, s.inner, uses_match[s.name])
         for s in pattern.stages],
        pattern.within_ms, ("no_skip", None) if skip is None else (skip.strategy, skip.stage), pattern.within_type,
        pattern.emit_at_once), *caps)


def _state(units: Iterable[_Rule]) -> dict[str, int]:
    """What a rule holds, over its keys: partial matches, the events they hold, and those its caps dropped."""
    runs = events = dropped = 0
    for unit in units:
        if unit.nfa is not None:
            held = unit.nfa.state()
            runs, events, dropped = runs + held[0], events + held[1], dropped + unit.nfa.dropped
    return {"partial_matches": runs, "events_held": events, "partial_matches_dropped": dropped}


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
                 max_side_output: int = 10_000, limits: RuleSettings | None = None,
                 log_min: int = COMPACT_MIN) -> None:
        """Side outputs (late ticks, timed-out partial matches) hold at most max_side_output items
        between drains; beyond that they are only counted (late_count, per-rule timeouts). `limits` caps
        each pattern's state, per key of a partitioned rule (settings.rules; its defaults when None). The state
        logs at least `log_min` events the windows took before it holds them whole again (take_changes)."""
        self.market = Market()
        self.reorderer = Reorderer(out_of_orderness_ms, idle_timeout_ms, max_side_output)
        self.rules: dict[str, _Rule] = {}  # rules over named symbols
        self.partitioned: dict[str, _Partitioned] = {}
        self._by_symbol: dict[str, list[_Rule]] = {}
        self._everywhere: list[_Rule] = []  # rules that name no symbol (only event.…): they see every event
        # (named, keyed) -> symbol -> venue -> what an event of it evaluates; emptied whenever the rules change
        self._targets: dict[tuple[bool, bool], dict[str, dict[str, tuple[_Rule, ...]]]] = {}
        self.timed_out: list[dict] = []  # timed-out partial matches; the host drains them with take_timeouts()
        self.max_side_output = max_side_output
        self._json: dict[str, dict] = {}  # rule id -> the rule's JSON form, for the state
        self._trades_read: bool | None = None  # whether a rule reads trades; None: to work out
        self.limits = limits or RuleSettings()
        self._capped: set[str] = set()  # rules that dropped partial matches, the host told of each once
        self.newly_capped: list[str] = []  # drained by take_capped()
        self._quote_names: dict[tuple[str, str], str] = {}  # the names of entries, made once
        self._log_entries: list[str] = []  # the names of the log's entries in the state, oldest first
        self._compacted_at = 0  # the log position when the windows were last written whole
        self.log_min = log_min
        self._compact_after = log_min  # log events after which they are again
        self._forget_changes()

    # ------------------------------------------------------------ rules

    def apply(self, rule_id: str, rule: Any) -> list[Signal]:
        """Add, replace (state starts afresh) or, with None, delete a rule; return the signal this
        closes, if the old rule had one open, so the sinks do not keep it open forever.

        Applying the rule that is already there changes nothing (a re-read topic must not reset state).
        A bad rule raises RuleError and leaves the rule that was there in place."""
        if rule is None:
            return self._remove(rule_id)
        checked = rule if isinstance(rule, Rule) else load(rule)
        current = self.rules.get(rule_id) or self.partitioned.get(rule_id)
        if current is not None and current.rule == checked:
            return []
        if checked.partition is not None:
            closed = self._remove(rule_id)
            self.partitioned[rule_id] = _Partitioned(rule_id, checked, matcher(checked.partition.covers))
            self._taken(rule_id, checked)
            return closed
        entry = self._compile(rule_id, checked, None, RuleStats())
        closed = self._remove(rule_id)
        self.rules[rule_id] = entry
        self._taken(rule_id, checked)
        self._touched_units.add(entry)
        self._touched_at.update((symbol, venue) for symbol in entry.symbols  # their latest quotes are state now
                                for venue in self.market.venues(symbol))
        for symbol in entry.symbols:
            self._by_symbol.setdefault(symbol, []).append(entry)
        if not entry.symbols:
            self._everywhere.append(entry)
        return closed

    def _taken(self, rule_id: str, rule: Rule) -> None:
        self._json[rule_id] = to_json(rule)
        self._rules_changed = True
        self._targets.clear()
        self._trades_read = None

    def _compile(self, rule_id: str, rule: Rule, key: str | None, stats: RuleStats) -> _Rule:
        compiled = Compiled(rule, self.market)
        symbols = frozenset(symbols_of(rule))
        if isinstance(rule.body, Pattern):
            conditions = {name: _as_condition(fn) for name, fn in compiled.defines.items()}
            return _Rule(rule_id, rule, compiled, symbols,
                         build_nfa(rule.body, conditions, compiled.define_uses_match, self.limits), stats=stats,
                         key=key)
        return _Rule(rule_id, rule, compiled, symbols, stats=stats, key=key)

    def _instance(self, part: _Partitioned, symbol: str, venue: str | None) -> _Rule:
        """The rule as it runs for the key of (symbol, venue), bound on first use."""
        by_venue = part.rule.partition is not None and part.rule.partition.by_venue
        key = f"{symbol}@{venue}" if by_venue else symbol
        instance = part.instances.get(key)
        if instance is None:
            bound = bind(part.rule, symbol, venue if by_venue else None)
            instance = part.instances[key] = self._compile(part.rule_id, bound, key, part.stats)
            self._touched_units.add(instance)
            self._touched_at.update((read, on) for read in instance.compiled.quote_symbols  # state from now on
                                    for on in self.market.venues(read))
        return instance

    def _targets_of(self, symbol: str, venue: str, named: bool, keyed: bool) -> tuple[_Rule, ...]:
        """What an event of (symbol, venue) evaluates: the rules over its symbol, those over none, and the
        instances of the partitioned rules that cover it, made before the event reaches the market so that
        their windows hold it."""
        found = (*(self._by_symbol.get(symbol, ()) if named else ()), *(self._everywhere if named else ()),
                 *(self._keyed(symbol, venue) if keyed else ()))
        self._targets.setdefault((named, keyed), {}).setdefault(symbol, {})[venue] = found
        return found

    def _keyed(self, symbol: str, venue: str) -> list[_Rule]:
        parts = self.partitioned.values()
        return [self._instance(part, symbol, venue) for part in parts if part.covered(symbol, venue)]

    def _remove(self, rule_id: str) -> list[Signal]:
        self._capped.discard(rule_id)  # a new version is warned about afresh
        if self._json.pop(rule_id, None) is not None:
            self._rules_changed = True
            self._targets.clear()
            self._trades_read = None
        part = self.partitioned.pop(rule_id, None)
        if part is not None:
            return [signal for instance in part.instances.values() for signal in self._retire(instance)]
        entry = self.rules.pop(rule_id, None)
        if entry is None:
            return []
        closed = self._retire(entry)
        self._everywhere = [r for r in self._everywhere if r is not entry]
        for symbol in entry.symbols:
            remaining = [r for r in self._by_symbol[symbol] if r is not entry]
            if remaining:
                self._by_symbol[symbol] = remaining
            else:
                del self._by_symbol[symbol]
        return closed

    def _retire(self, entry: _Rule) -> list[Signal]:
        """Release what a removed rule read; the signal it had open closes now."""
        gone = self.market.release(entry.compiled.window_keys)
        self._removed.update(_quote_name((symbol, venue)) for symbol in self.market.release_quotes(
            entry.compiled.quote_symbols) for venue in self.market.venues(symbol))
        self._removed.update(_series_name(key) for key, _ in gone)
        self._forget_windows([(_own_name(entry, i), w) for i, (_, w) in enumerate(entry.compiled.own_windows)])
        self._touched_units.discard(entry)
        self._removed.add(_unit_name(entry))
        if entry.open_signal is None:
            return []
        at = max(self.reorderer.watermark + 1, entry.open_signal["updated_at"])
        entry.open_signal.update({"status": "closed", "closed_at": at, "updated_at": at})
        return [entry.open_signal]

    def _units(self) -> list[_Rule]:
        """Everything that evaluates: the rules over named symbols and every key of the partitioned ones."""
        return [*self.rules.values(), *(i for part in self.partitioned.values() for i in part.instances.values())]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per rule: its counters, and the state it holds (partial matches live, the events they hold) with
        the partial matches its caps dropped, over all its keys."""
        out = {rule_id: {**entry.stats.as_dict(), **_state((entry,))} for rule_id, entry in self.rules.items()}
        for rule_id, part in self.partitioned.items():
            out[rule_id] = {**part.stats.as_dict(), "keys": len(part.instances), **_state(part.instances.values())}
        return out

    # ------------------------------------------------------------ events

    def on_tick(self, tick: Tick, now_ms: int | None = None, source: str = "stream") -> list[Signal]:
        """`source` is where the tick came from for watermarking (the job passes its Kafka partition):
        each source's event time advances separately and the slowest active one sets the watermark."""
        now_ms = clock.now_ms() if now_ms is None else now_ms
        released = self.reorderer.push(source, tick.ts, tick, now_ms)
        return self._process(released, now_ms) if released else []

    def on_trade(self, trade: Trade, now_ms: int | None = None, source: str = "stream") -> list[Signal]:
        """A trade goes through the watermark with the ticks (give it the ticks' source when the caller has
        ordered both already), feeds volume and vwap windows, and is evaluated as an event."""
        now_ms = clock.now_ms() if now_ms is None else now_ms
        released = self.reorderer.push(source, trade.ts, trade, now_ms)
        return self._process(released, now_ms) if released else []

    def on_ordered(self, event: Tick | Trade, now_ms: int, named: bool = True, keyed: bool = True,
                   source: str = "stream") -> list[Signal]:
        """For a host that has put ticks and trades in event-time order itself (the job's merge): no holding
        back here. `named` and `keyed` say which rules the event is for, the rules over named symbols or the
        partitioned ones, so that a host can run partitioned rules for some keys only (scaled out, a job
        evaluates each symbol's keys in one bucket and the other rules in another)."""
        if not self.reorderer.passes(source, event.ts, event, now_ms):
            return []
        return self._process((event,), now_ms, named, keyed)

    @property
    def has_rules(self) -> bool:
        return bool(self.rules or self.partitioned)

    def reads_trades(self) -> bool:
        """Whether a rule here reads trades: a window of them (vwap, volume) or the event itself (event.…),
        which a trade may be. Only then need a host that orders events wait for trades. Judged on the rules,
        not the market's windows: a partitioned rule has none until its key's first event."""
        if self._trades_read is None:
            self._trades_read = any(map(_reads_trades, self._json.values()))
        return self._trades_read

    def advance(self, now_ms: int | None = None) -> list[Signal]:
        """Call on a processing-time timer: idle sources stop holding the watermark back."""
        now_ms = clock.now_ms() if now_ms is None else now_ms
        out = self._process(self.reorderer.advance(now_ms), now_ms)
        watermark = self.reorderer.watermark
        for entry in self._units():
            if entry.nfa is not None:
                out.extend(self._advance_pattern(entry, watermark + 1, now_ms))
        return out

    def finish(self) -> list[Signal]:
        """End of input: release every held tick and time out every partial match (as Flink does when
        a bounded input ends and the watermark jumps to the end of time), which lets out the matches
        held back for them."""
        out = self.advance(END_OF_TIME)
        for entry in self._units():
            if entry.nfa is not None:
                out.extend(self._advance_pattern(entry, END_OF_TIME, now_ms=END_OF_TIME))
        return out

    def _advance_pattern(self, entry: _Rule, ts: int, now_ms: int) -> list[Signal]:
        """Event time has reached ts for a pattern: its timed-out partial matches, and the signals of the
        matches they held back."""
        assert entry.nfa is not None  # pattern rules have one
        matches, timeouts = entry.nfa.advance_time(ts)
        if not matches and not timeouts:
            return []
        self._touched_units.add(entry)
        self._record_timeouts(entry, timeouts)
        return self._match_signals(entry, matches, now_ms)

    def take_late(self) -> list[Tick | Trade]:
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

    def _process(self, events: Sequence[Tick | Trade], now_ms: int, named: bool = True,
                 keyed: bool = True) -> list[Signal]:
        """The hot loop of every rule. Compiled (setup.py), methods called on self and the market directly are
        direct C calls, and a Tick's fields tuple items: bound methods held in locals, the interpreter's habit,
        would be calls through Python objects there."""
        out: list[Signal] = []
        known = self._targets.get((named, keyed))
        if known is None:
            known = self._targets[(named, keyed)] = {}
        market = self.market
        touched_units, touched_at = self._touched_units, self._touched_at
        quote_readers = market.quote_readers
        for event in events:
            if isinstance(event, Tick):  # the same line twice: narrowed to Tick, its fields are tuple items
                symbol, venue, ts = event.symbol, event.venue, event.ts
            else:
                symbol, venue, ts = event.symbol, event.venue, event.ts
            by_venue = known.get(symbol)  # by symbol, then venue: str keys, no (symbol, venue) tuple to make and hash
            targets = by_venue.get(venue) if by_venue is not None else None
            if targets is None:
                targets = self._targets_of(symbol, venue, named, keyed)
            if isinstance(event, Tick):
                market.on_tick(event)
            else:
                market.on_trade(event)
            if symbol in quote_readers:  # the latest quotes are state only while a rule reads them
                touched_at.add((symbol, venue))
            for entry in targets:
                stats = entry.stats
                stats.evaluations = evaluations = stats.evaluations + 1
                timed = evaluations % _TIMED_EVERY == 1  # the first and every so often: the clock costs as much
                started = time.perf_counter_ns() if timed else 0
                try:
                    if entry.compiled.own_windows:
                        entry.compiled.feed(ts)
                        touched_units.add(entry)
                    signals = (self._evaluate_condition(entry, event, now_ms) if entry.nfa is None
                               else self._evaluate_pattern(entry, event, now_ms))
                    if signals:  # an IF rule's state changes only when its signal opens or closes
                        out.extend(signals)
                        touched_units.add(entry)
                    elif entry.nfa is not None and not entry.nfa.quiet:
                        touched_units.add(entry)
                except Exception as exc:  # noqa: BLE001 - one bad rule must not stop the others
                    stats.errors += 1
                    stats.last_error = f"{type(exc).__name__}: {exc}"
                if timed:
                    stats.time_ns += (time.perf_counter_ns() - started) * _TIMED_EVERY
        return out

    def _evaluate_condition(self, entry: _Rule, tick: Tick | Trade, now_ms: int) -> tuple[Signal, ...]:
        compiled = entry.compiled
        current = entry.open_signal
        # closed, a signal opens when IF holds; open, it closes when IF stops holding (or, with UNTIL, when
        # UNTIL holds: hysteresis, as a z-score that opens at 2 and closes at 0.5)
        test = compiled.condition if current is None or compiled.until is None else compiled.until
        assert test is not None  # IF rules have a condition
        try:
            holds = test(None)
        except Unknown:
            holds = False
        if current is None:
            if not holds:
                return ()
            entry.stats.matches += 1
            signal = self._signal(entry, tick.ts, now_ms)
            entry.open_signal = signal
            return (signal.copy(),)
        if holds != (compiled.until is None):
            entry.open_signal = None
            current.update({"status": "closed", "closed_at": tick.ts, "updated_at": tick.ts})
            return (current,)
        return ()

    def _evaluate_pattern(self, entry: _Rule, tick: Tick | Trade, now_ms: int) -> list[Signal] | tuple[()]:
        assert entry.nfa is not None  # pattern rules have one
        matches, timeouts = entry.nfa.process(tick, tick.ts)
        if entry.nfa.dropped and entry.rule_id not in self._capped:
            self._capped.add(entry.rule_id)
            self.newly_capped.append(entry.rule_id)
        if timeouts:
            self._record_timeouts(entry, timeouts)
        return self._match_signals(entry, matches, now_ms) if matches else ()

    def _match_signals(self, entry: _Rule, matches: list[nfa.Match], now_ms: int) -> list[Signal]:
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
                timed_out = {"rule_id": entry.rule_id, "start_ts": partial.start_ts, "last_ts": partial.end_ts,
                             "events": _events_json(partial)}
                self.timed_out.append(timed_out if entry.key is None else {**timed_out, "key": entry.key})

    @staticmethod
    def _signal(entry: _Rule, event_time: int, now_ms: int) -> Signal:
        name, key = entry.rule.then, entry.key
        signal: Signal = {
            "id": signal_id("rule", (entry.rule_id, name) if key is None else (entry.rule_id, name, key), event_time),
            "type": "rule", "legs": [], "profit_bps": 0.0, "size": None, "event_time": event_time,
            "updated_at": event_time, "closed_at": None, "status": "open", "detected_at": now_ms,
            "rule_id": entry.rule_id, "name": name}
        if key is not None:
            signal["key"] = key
        return signal

    # ------------------------------------------------------------ state
    # The engine's state is a set of entries: the rules; the counters and watermark; each rule key's partial
    # matches and open signal; each symbol's latest quote on each venue; the market's windows; and each window
    # over an expression in segments of event time. take_changes() gives those a batch changed, which is all the
    # job writes back after it: a market of 1,000 symbols is megabytes whole. The market's windows are written
    # whole only now and then; between, each batch writes one entry, the log of the events they took, which a
    # restore replays (a window's segments were an entry for nearly every tick of a wide market, 4 of a batch's
    # 5 ms). The quotes of a symbol are kept only while a rule reads them (price(), spread_bps()...; a window
    # keeps its own events): after a restore, a rule added later reads such quotes from the next tick on.

    def take_changes(self) -> tuple[dict[str, Any], list[str]]:
        """The entries changed since the last call (or since restore), and the names of those to delete."""
        market, removed = self.market, self._removed
        created = market.created
        logged = market.take_log()
        entries: dict[str, Any] = {}
        logged_cost = market.logged - self._compacted_at + _LOG_ENTRY_COST * len(self._log_entries)
        if not market.logging or logged_cost >= self._compact_after:
            self._compact(entries)  # and the first time: the events so far were not logged
            market.logging = True
        else:
            if logged is not None:
                name = f"{_LOG}{logged[0]:020d}"  # in the order of positions, for a restore to replay them
                entries[name] = logged[1]
                self._log_entries.append(name)
            windows = market.windows()
            for key in created:  # a new window: what came before it is not its to replay
                window = windows.get(key)
                if window is not None:
                    entries[_series_name(key)] = (window.logged_from, {})
        entries[META] = self._meta()
        if self._rules_changed:
            entries[RULES] = dict(self._json)
        for unit in self._touched_units:
            entries[_unit_name(unit)] = _unit_snapshot(unit)
        quote_readers, quote_names = market.quote_readers, self._quote_names
        for at in self._touched_at:
            tick = market.quote(*at)  # none after trades only
            if tick is not None and at[0] in quote_readers:
                entries[quote_names.get(at) or quote_names.setdefault(at, _quote_name(at))] = [tuple(tick)]
        for name, window in self._own_windows(self._touched_units):  # fed by their rules: kept in segments
            changed, gone = window.segment_changes()
            for segment, events in changed.items():
                entries[f"{name}{_SEP}{segment}"] = events
            if gone:
                removed.update(f"{name}{_SEP}{segment}" for segment in gone)
        out = [name for name in removed if name not in entries]
        self._forget_changes()
        return entries, out

    def _compact(self, entries: dict[str, Any]) -> None:
        """Every market window whole, as of now, in place of the log: often enough that a restore replays little,
        seldom enough that it costs a fraction of the log (after twice the events the windows held, each entry
        counted as _LOG_ENTRY_COST events)."""
        held, logged = 0, self.market.logged
        for key, window in self.market.windows().items():
            window.logged_from = logged
            entries[_series_name(key)] = (logged, window.all_segments())
            held += len(window)
        self._removed.update(self._log_entries)
        self._log_entries = []
        self._compacted_at, self._compact_after = logged, max(self.log_min, 2 * held)

    def snapshot(self) -> dict[str, Any]:
        """Every entry, as plain picklable data; rules in their JSON form, which restore() reads back. The windows
        are whole: no log."""
        entries: dict[str, Any] = {META: self._meta(), RULES: dict(self._json)}
        units = self._units()
        for unit in units:
            entries[_unit_name(unit)] = _unit_snapshot(unit)
        quote_readers = self.market.quote_readers
        for symbol, entry in self.market.symbols.items():
            if symbol in quote_readers:
                for venue, tick in entry.quotes.items():
                    entries[_quote_name((symbol, venue))] = [tuple(tick)]
        logged = self.market.logged
        for key, window in self.market.windows().items():
            entries[_series_name(key)] = (logged, window.all_segments())
        for name, window in self._own_windows(units):
            for segment, events in window.all_segments().items():
                entries[f"{name}{_SEP}{segment}"] = events
        return entries

    @property
    def log_entries(self) -> list[str]:
        """The names of the log's entries the state holds: a snapshot() has none."""
        return list(self._log_entries)

    @staticmethod
    def _own_windows(units) -> list[tuple[str, Trailing]]:
        return [(_own_name(unit, i), window)
                for unit in units for i, (_, window) in enumerate(unit.compiled.own_windows)]

    def _meta(self) -> dict[str, Any]:
        return {"reorderer": self.reorderer.snapshot(), "timed_out": list(self.timed_out),
                "log": (self.market.logged, self._compacted_at, self._compact_after),
                "stats": {**{rid: e.stats.as_dict() for rid, e in self.rules.items()},
                          **{rid: p.stats.as_dict() for rid, p in self.partitioned.items()}}}

    def _forget_changes(self) -> None:
        self._touched_units: set[_Rule] = set()
        self._touched_at: set[tuple[str, str]] = set()  # (symbol, venue) of the quotes since that rules read
        self._removed: set[str] = set()
        self._rules_changed = False

    def _forget_windows(self, named: list[tuple[str, Trailing]]) -> None:
        """Windows gone with their rule: their segments leave the state too."""
        self._removed.update(f"{name}{_SEP}{segment}" for name, window in named for segment in window.segments)

    @classmethod
    def restore(cls, entries: Mapping[str, Any], max_side_output: int = 10_000,
                limits: RuleSettings | None = None) -> RuleEngine:
        """The engine from snapshot() or from every entry take_changes() gave, latest of each."""
        meta = entries[META]
        engine = cls(max_side_output=max_side_output, limits=limits)
        engine.reorderer = Reorderer.restore(meta["reorderer"])
        market = engine.market
        # before the rules: their windows are made at the position the state had reached
        market.logged, engine._compacted_at, engine._compact_after = meta.get("log", (0, 0, 0))  # 0: compact now
        for rule_id, rule in entries.get(RULES, {}).items():  # an engine that never had a rule wrote none
            engine.apply(rule_id, rule)
        units: list[tuple[_Rule, dict]] = []
        superseded = []  # entries of every venue's quotes of a symbol, as engines wrote them before one a venue
        segments: dict[str, dict[int, tuple]] = {}  # windows over expressions; and market windows as written before
        series: dict[str, tuple[int, dict]] = {}
        logs: list[tuple[str, tuple]] = []
        for name, saved in entries.items():
            if name.startswith(_LOG):
                logs.append((name, saved))
            elif name.startswith(_SERIES):
                series[name] = saved
            elif name.startswith(_UNIT):
                rule_id, key = name[len(_UNIT):].split(_SEP)
                part = engine.partitioned.get(rule_id)
                unit = engine._instance(part, *_split_key(key)) if part and key else engine.rules.get(rule_id)
                if unit is not None:
                    units.append((unit, saved))
            elif name.startswith(_QUOTES):
                engine.market.restore_quotes(saved)
                if _SEP not in name[len(_QUOTES):]:
                    superseded.append(name)
            elif name.startswith((_WINDOW, _OWN)):
                window_name, _, segment = name.rpartition(_SEP)
                segments.setdefault(window_name, {})[int(segment)] = saved
        for unit, saved in units:
            _unit_restore(unit, saved)
        for window_key, window in market.windows().items():  # after the instances, whose windows these are too
            logged_from, whole = series.get(_series_name(window_key),
                                            (market.logged, segments.get(_window_name(window_key), {})))
            window.restore_segments(whole)
            window.logged_from = logged_from
        for name, window in engine._own_windows(engine._units()):
            window.restore_segments(segments.get(name, {}))
        logs.sort()  # by position
        for name, packed in logs:
            market.replay(int(name[len(_LOG):]), packed)
        engine._log_entries = [name for name, _ in logs]
        market.created = []  # the windows made here have their entries
        market.logging = True
        engine._capped = {unit.rule_id for unit in engine._units() if unit.nfa is not None and unit.nfa.dropped}
        for rule_id, entry in engine.rules.items():
            entry.stats = RuleStats(**meta["stats"].get(rule_id, {}))
        for rule_id, part in engine.partitioned.items():
            for name, value in meta["stats"].get(rule_id, {}).items():  # in place: its keys count into it
                setattr(part.stats, name, value)
        engine.timed_out = list(meta["timed_out"])
        engine._forget_changes()
        engine._removed.update(superseded)
        engine._removed.update(name for name in entries if name.startswith(_WINDOW))  # compacted at the next batch
        return engine


META, RULES = "meta", "rules"
_SEP = "\x1f"
_UNIT, _QUOTES, _WINDOW, _OWN = f"unit{_SEP}", f"quotes{_SEP}", f"window{_SEP}", f"own{_SEP}"
_SERIES, _LOG = f"series{_SEP}", f"log{_SEP}"  # a market window whole (as of a log position), and a batch's log


def _unit_name(unit: _Rule) -> str:
    return f"{_UNIT}{unit.rule_id}{_SEP}{unit.key or ''}"


def _quote_name(at: tuple[str, str]) -> str:
    return f"{_QUOTES}{at[0]}{_SEP}{at[1]}"


def _series_name(key: tuple) -> str:
    symbol, venue, source, duration_ms = key
    return f"{_SERIES}{symbol}{_SEP}{venue or ''}{_SEP}{source}{_SEP}{duration_ms}"


def _window_name(key: tuple) -> str:
    """A market window's name as engines wrote it before the log, in segments: read by restore() and deleted."""
    symbol, venue, source, duration_ms = key
    return f"{_WINDOW}{symbol}{_SEP}{venue or ''}{_SEP}{source}{_SEP}{duration_ms}"


def _own_name(unit: _Rule, index: int) -> str:
    return f"{_OWN}{unit.rule_id}{_SEP}{unit.key or ''}{_SEP}{index}"


def reads_trades(rule: Rule | dict | str) -> bool:
    """Whether a rule reads trades: a vwap or volume window, or the event itself, which a trade may be. A bad
    rule raises RuleError, as apply() does."""
    return _reads_trades(to_json(rule if isinstance(rule, Rule) else load(rule)))


def _reads_trades(rule_json: dict) -> bool:
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return ("event" in node or node.get("fn") in TRADE_FUNCTIONS
                    or any(walk(value) for value in node.values()))
        return isinstance(node, list) and any(walk(value) for value in node)
    return walk(rule_json)


def _split_key(key: str) -> tuple[str, str | None]:
    symbol, _, venue = key.partition("@")
    return symbol, venue or None


def _unit_snapshot(unit: _Rule) -> dict:
    return {"nfa": None if unit.nfa is None else unit.nfa.snapshot(), "open": unit.open_signal}


def _unit_restore(unit: _Rule, saved: dict) -> None:
    if unit.nfa is not None and saved["nfa"] is not None:
        unit.nfa.restore(saved["nfa"])
    unit.open_signal = saved["open"]
