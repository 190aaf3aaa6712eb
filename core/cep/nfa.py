"""Pattern sequences with FlinkCEP's semantics, run by an NFA over partial matches.

A pattern is a list of stages. Each positive stage is a position the NFA can wait at, with a count
of events taken so far; negated stages (NOT NEXT / NOT FOLLOWED BY) are guards on entering the
next positive stage. A partial match ("run") is a position plus the events taken so far, kept as
a linked list so runs that branch from one another share their prefix (Flink's shared buffer).

For each event, every run looks at the positions it can reach without consuming anything (its
epsilon closure: past optional stages and loops that reached their minimum) and, at each:
- TAKE the event if the stage's condition holds (conditions may read the run's earlier events),
- IGNORE it according to contiguity: strict (NEXT, CONSECUTIVE) never ignores, relaxed
  (FOLLOWED BY, the default inside loops) ignores events the stage does not take, non-deterministic
  (FOLLOWED BY ANY, ALLOW COMBINATIONS) ignores any event, branching off a run that skips it.
A run whose next step can reach the end of the pattern after a TAKE is a match; a run that can take
nothing more after it is done and dropped, as Flink drops a computation state that reached the final
state, so only runs still pending can time out. WITHIN bounds a run from its first event (FlinkCEP's
WithinType.FIRST_AND_LAST) or, between events (PREVIOUS_AND_CURRENT), from its last: at
ts >= that + within the run times out and is reported as a timed-out partial match. After each
match the skip strategy discards runs, as in Flink's AfterMatchSkipStrategy.

The state is bounded, which Flink leaves to WITHIN: past max_runs partial matches, or max_events
events held (shared-buffer nodes, each counted once however many runs share it), the oldest runs
are dropped until a tenth of that cap is free again, and counted in `dropped`. Without a bound,
`FOLLOWED BY ANY` with no WITHIN keeps a run per start event forever, and `x{1,} ALLOW COMBINATIONS`
doubles its runs at every event.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# A condition sees the event and the run's partial match (a node of the linked list, or None).
Condition = Callable[[Any, "Node | None"], bool]
# (previous node, stage name, sequence number of the event, event, ts): a partial match is its last node.
Node = tuple

SKIP_STRATEGIES = ("no_skip", "skip_to_next", "skip_past_last_event", "skip_to_first", "skip_to_last")
NEGATIONS = ("not_next", "not_followed_by")
WITHIN_TYPES = ("first_and_last", "previous_and_current")


def events_of(node: Node | None, stage: str | None = None) -> list[Any]:
    """The events of a partial match in order, all or one stage's: what iterative conditions read."""
    out = []
    while node is not None:
        if stage is None or node[1] == stage:
            out.append(node[3])
        node = node[0]
    out.reverse()
    return out


def match_dict(node: Node | None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for stage, event in reversed(list(_walk(node))):
        out.setdefault(stage, []).append(event)
    return out


def _walk(node: Node | None) -> Iterator[tuple[str, Any]]:
    while node is not None:
        yield node[1], node[3]
        node = node[0]


def _first_seq(node: Node) -> int:
    while node[0] is not None:
        node = node[0]
    return node[2]


@dataclass
class Stage:
    name: str
    condition: Condition
    link: str | None = None  # how it follows the previous stage: next, followed_by, followed_by_any, not_*
    low: int = 1
    high: int | None = 1  # None: no upper bound
    optional: bool = False
    greedy: bool = False
    inner: str = "relaxed"  # contiguity between the events of a repeated stage: relaxed, strict, any
    uses_match: bool = True  # False when the condition ignores the partial match, so it is cached per event


@dataclass
class Pattern:
    stages: list[Stage]
    within_ms: int | None = None
    skip: tuple[str, str | None] = ("no_skip", None)  # strategy, and the stage skip_to_first/last name
    within_type: str = "first_and_last"  # WITHIN_TYPES: from the first event, or from the one before


@dataclass(slots=True)
class Run:
    stage: int  # index into the positive stages
    count: int  # events taken at that stage (capped at its minimum for unbounded stages)
    node: Node | None
    start_ts: int
    fresh: bool  # the last event this run saw was one it took: NOT NEXT guards look at this event
    violated: frozenset  # guards broken since the last take
    since: int  # what WITHIN counts from: start_ts, or between events the ts of the run's last event


@dataclass
class Match:
    events: dict[str, list[Any]]
    start_ts: int
    end_ts: int


@dataclass
class _Positive:
    stage: Stage
    next_guards: list[Stage] = field(default_factory=list)  # NOT NEXT stages just before it
    follow_guards: list[Stage] = field(default_factory=list)  # NOT FOLLOWED BY stages just before it


FINAL = -1
_NONE: frozenset = frozenset()


class NFA:
    def __init__(self, pattern: Pattern, max_runs: int | None = None, max_events: int | None = None) -> None:
        stages = pattern.stages
        if not stages or stages[0].link in NEGATIONS or stages[-1].link in NEGATIONS:
            raise ValueError("a pattern needs a positive first and last stage")
        skip, skip_stage = pattern.skip
        if skip not in SKIP_STRATEGIES or (skip in ("skip_to_first", "skip_to_last")) != (skip_stage is not None):
            raise ValueError(f"bad skip strategy {pattern.skip!r}")
        if pattern.within_type not in WITHIN_TYPES:
            raise ValueError(f"bad within type {pattern.within_type!r}")
        self.within_ms = pattern.within_ms
        self.from_first = pattern.within_type == "first_and_last"
        self.max_runs, self.max_events = max_runs, max_events
        self.dropped = 0  # partial matches dropped to keep within the caps
        self._held = 0  # events the runs held when last counted; with those taken since, a bound on what they hold
        self._taken = 0
        self.skip, self.skip_stage = skip, skip_stage
        self.positives: list[_Positive] = []
        pending: list[Stage] = []
        for stage in stages:
            if stage.link in NEGATIONS:
                pending.append(stage)
                continue
            pos = _Positive(stage)
            for guard in pending:
                (pos.next_guards if guard.link == "not_next" else pos.follow_guards).append(guard)
            pending = []
            self.positives.append(pos)
        self._closures: dict[tuple[int, int], tuple[list[tuple[int, int, tuple[int, ...]]], bool]] = {}
        # when the first stage is plain (no match to read, not optional), it alone decides if a run starts
        first = self.positives[0].stage
        self._first = first if len(self.closure(0, 0)[0]) == 1 and not first.uses_match else None
        # positions where a run can only take the stage's event or, relaxed, keep waiting: the hot path
        self._waiting: dict[tuple[int, int], Stage] = {}
        for i, pos in enumerate(self.positives):
            stage = pos.stage
            for k in range(stage.high if stage.high is not None else stage.low + 1):
                contiguity = stage.link if k == 0 else stage.inner
                if len(self.closure(i, k)[0]) == 1 and not self.closure(i, k)[1] and \
                        contiguity in ("followed_by", "relaxed", "followed_by_any", "any") and (i, k) != (0, 0):
                    self._waiting[(i, k)] = stage
        # positions a run that just took can leave only to the end: the match is emitted and the run is done
        self._done = {(i, pos.stage.high) for i, pos in enumerate(self.positives) if pos.stage.high is not None
                      and [j for j, _, _ in self.closure(i, pos.stage.high)[0]] == [i, FINAL]}
        # runs grouped by position, so a group waiting for an event that is not its stage's moves on whole
        self.groups: dict[tuple[int, int], list[Run]] = {}
        self.oldest: dict[tuple[int, int], int] = {}  # per group: the earliest time WITHIN counts from
        self.seq = 0

    # ------------------------------------------------------------ static structure

    def closure(self, i: int, k: int) -> tuple[list[tuple[int, int, tuple[int, ...]]], bool]:
        """Positions (stage, count, guarded stages crossed) reachable from (i, k) without an event,
        and whether any of them is guarded."""
        key = (i, k)
        found = self._closures.get(key)
        if found is None:
            guarded = k == 0 and bool(self.positives[i].next_guards or self.positives[i].follow_guards)
            crossed: tuple[int, ...] = (i,) if guarded else ()  # a run waiting at a guarded stage is still before it
            positions = [(i, k, crossed)]
            while i != FINAL:
                stage = self.positives[i].stage
                if not (k >= stage.low or (k == 0 and stage.optional)):
                    break
                i, k = (i + 1 if i + 1 < len(self.positives) else FINAL), 0
                if i != FINAL and (self.positives[i].next_guards or self.positives[i].follow_guards):
                    crossed = crossed + (i,)
                positions.append((i, k, crossed))
            found = self._closures[key] = (positions, bool(crossed))
        return found

    def completes(self, i: int, k: int) -> bool:
        """Does a run that just took its k-th event at stage i reach the end (no guard in between)?"""
        return any(j == FINAL and not crossed for j, _, crossed in self.closure(i, k)[0])

    # ------------------------------------------------------------ processing

    def process(self, event: Any, ts: int) -> tuple[list[Match], list[Match]]:
        """Feed one event (in event-time order); return (matches, timed-out partial matches)."""
        timeouts = self.advance_time(ts) if self.oldest else []
        self.seq += 1
        seq = self.seq
        cache: dict[int, bool] = {}

        def holds(stage: Stage, node: Node | None) -> bool:
            if stage.uses_match:
                return bool(stage.condition(event, node))
            key = id(stage)
            value = cache.get(key)
            if value is None:
                value = cache[key] = bool(stage.condition(event, None))
            return value

        waiting = self._waiting
        # groups waiting (relaxed or any) for a stage this event does not satisfy stay exactly as they are
        active = [key for key in self.groups
                  if (stage := waiting.get(key)) is None or stage.uses_match or holds(stage, None)]
        first = self._first
        starts = first is None or holds(first, None)
        if not active and not starts:
            return [], timeouts  # the common case: nothing this event can change
        successors: list[Run] = []
        completed: list[tuple[Node, int]] = []
        for key in active:
            stage = waiting.get(key)
            for run in self.groups[key]:
                if stage is not None and not holds(stage, run.node):
                    successors.append(run)
                else:
                    self._step(run, event, ts, seq, holds, successors, completed)
        if starts:
            self._step(Run(0, 0, None, ts, False, _NONE, ts), event, ts, seq, holds, successors, completed,
                       from_start=True)
        groups = {key: group for key, group in self.groups.items() if key not in active}
        oldest = {key: self.oldest[key] for key in groups}
        carried = set(groups)
        # No two runs share a position and events: a run leaves at most one successor that keeps its events.
        for run in successors:
            key = (run.stage, run.count)
            group = groups.get(key)
            if group is None:
                groups[key] = [run]
                oldest[key] = run.since
            else:
                if key in carried:
                    group = groups[key] = list(group)  # carried over whole: copy before adding
                    carried.discard(key)
                group.append(run)
                if run.since < oldest[key]:
                    oldest[key] = run.since
        self.groups, self.oldest = groups, oldest
        matches = self._apply_skips(completed)
        self._bound()
        return matches, timeouts

    @property
    def runs(self) -> list[Run]:
        return [run for group in self.groups.values() for run in group]

    def _keep(self, keep) -> None:
        """Keep only the runs for which keep(run) is true."""
        groups = {key: [r for r in group if keep(r)] for key, group in self.groups.items()}
        self.groups = {key: group for key, group in groups.items() if group}
        self.oldest = {key: min(r.since for r in group) for key, group in self.groups.items()}

    def _step(self, run: Run, event: Any, ts: int, seq: int, holds, successors: list[Run],
              completed: list[tuple[Node, int]], from_start: bool = False) -> None:
        positives = self.positives
        violated = run.violated
        closure, guarded = self.closure(run.stage, run.count)
        if guarded:  # which guards does this event break, for the stages the run could proceed to?
            for _, _, crossed in closure:
                for g in crossed:
                    if g in violated:
                        continue
                    pos = positives[g]
                    if any(holds(guard, run.node) for guard in pos.follow_guards) or \
                            (run.fresh and any(holds(guard, run.node) for guard in pos.next_guards)):
                        violated = violated | {g}
        ignored = from_start  # the start state never keeps a run alive: a new one starts at every event
        for i, k, crossed in closure:
            if i == FINAL or (crossed and any(g in violated for g in crossed)):
                break
            stage = positives[i].stage
            high = stage.high
            taken = (high is None or k < high) and holds(stage, run.node)
            if taken:
                count = k + 1 if high is not None or k < stage.low else k
                node = (run.node, stage.name, seq, event, ts)
                self._taken += 1
                start_ts = ts if run.node is None else run.start_ts
                if (i, count) not in self._done:
                    successors.append(Run(i, count, node, start_ts, True, _NONE, start_ts if self.from_first else ts))
                if self.completes(i, count):
                    completed.append((node, start_ts))
            if not ignored and (high is None or k < high):  # a full stage only passes events on
                contiguity = stage.link if k == 0 else stage.inner
                if contiguity in ("followed_by_any", "any") or (contiguity in ("followed_by", "relaxed") and not taken):
                    # the first position that lets the event pass keeps the run; the later ones are in its closure
                    if (i, k) == (run.stage, run.count) and not run.fresh and violated is run.violated:
                        successors.append(run)  # unchanged: the common case of a run waiting
                    else:
                        successors.append(Run(i, k, run.node, run.start_ts, False, violated, run.since))
                    ignored = True
            if taken and stage.greedy:
                break  # a greedy loop takes the event rather than letting a later stage have it

    def advance_time(self, ts: int) -> list[Match]:
        """Time out runs that can no longer finish WITHIN their window (or take their next event within it,
        between events); report each partial match once."""
        if self.within_ms is None or not self.oldest:
            return []
        limit = ts - self.within_ms
        if min(self.oldest.values()) > limit:
            return []
        timed_out, seen = [], set()
        expired = [(r.start_ts, r.node) for r in self.runs if r.since <= limit and r.node is not None]
        for start_ts, node in sorted(expired, key=lambda e: (e[0], e[1][2])):
            if id(node) not in seen:
                seen.add(id(node))
                timed_out.append(Match(match_dict(node), start_ts, node[4]))
        self._keep(lambda r: r.since > limit)
        return timed_out

    def state(self) -> tuple[int, int]:
        """(partial matches, events they hold): what the rule's stats report."""
        seen: set[int] = set()
        runs = self.runs
        for run in runs:
            seen.update(_unseen(run.node, seen))
        return len(runs), len(seen)

    def _bound(self) -> None:
        """Past a cap, drop the oldest runs until 90% of it is left. Counting the events held walks them all,
        so it is done only when those held at the last count plus those taken since pass the cap; over 90%
        of it, they are then cut to 90%, and the next count is a tenth of the cap in taken events away."""
        runs = sum(map(len, self.groups.values()))
        over_runs = self.max_runs is not None and runs > self.max_runs
        if not over_runs and (self.max_events is None or self._held + self._taken <= self.max_events):
            return
        keep_runs = self.max_runs - self.max_runs // 10 if over_runs and self.max_runs is not None else runs
        keep_events = None if self.max_events is None else self.max_events - self.max_events // 10
        kept: set[int] = set()
        seen: set[int] = set()
        for run in sorted(self.runs, key=lambda r: r.start_ts, reverse=True):  # newest first
            unseen = _unseen(run.node, seen)
            if len(kept) == keep_runs or (keep_events is not None and len(seen) + len(unseen) > keep_events):
                break
            seen.update(unseen)
            kept.add(id(run))
        self._held, self._taken = len(seen), 0
        if len(kept) < runs:
            self.dropped += runs - len(kept)
            self._keep(lambda r: id(r) in kept)

    def _apply_skips(self, completed: list[tuple[Node, int]]) -> list[Match]:
        if not completed:
            return []
        completed.sort(key=lambda c: (_first_seq(c[0]), c[0][2], _length(c[0])))
        matches: list[Match] = []
        discarded: list[tuple[int, int]] = []  # [from, to) ranges of first-event sequence numbers
        seen = set()
        for node, start_ts in completed:
            first = _first_seq(node)
            if any(lo <= first < hi for lo, hi in discarded) or id(node) in seen:
                continue
            seen.add(id(node))
            events = match_dict(node)
            matches.append(Match(events, start_ts, node[4]))
            bound = self._skip_bound(node, first)
            if bound is not None:
                discarded.append((first, bound))
        if discarded:
            self._keep(lambda r: not any(lo <= _first_seq(r.node) < hi for lo, hi in discarded))
        return matches

    def _skip_bound(self, node: Node, first: int) -> int | None:
        """Runs whose first event's sequence number lies in [first, bound) are discarded."""
        if self.skip == "skip_to_next":
            return first + 1
        if self.skip == "skip_past_last_event":
            return node[2] + 1
        if self.skip in ("skip_to_first", "skip_to_last"):
            seqs = [n[2] for n in _nodes(node) if n[1] == self.skip_stage]
            if seqs:
                return min(seqs) if self.skip == "skip_to_first" else max(seqs)
        return None

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict:
        return {"seq": self.seq, "dropped": self.dropped,
                "runs": [(r.stage, r.count, r.node, r.start_ts, r.fresh, tuple(r.violated)) for r in self.runs]}

    def restore(self, snap: dict) -> None:
        self.seq, self.dropped = snap["seq"], snap.get("dropped", 0)  # snapshots before the caps have no count
        self.groups, self.oldest = {}, {}
        for s, c, n, t, f, v in snap["runs"]:
            run = Run(s, c, n, t, f, frozenset(v), t if self.from_first or n is None else n[4])
            self.groups.setdefault((s, c), []).append(run)
            self.oldest[(s, c)] = min(run.since, self.oldest.get((s, c), run.since))
        self._held, self._taken = self.state()[1], 0


def _nodes(node: Node | None) -> Iterator[Node]:
    while node is not None:
        yield node
        node = node[0]


def _unseen(node: Node | None, seen: set[int]) -> list[int]:
    """The ids of a partial match's nodes from its last back to the first one in `seen`."""
    out = []
    while node is not None and id(node) not in seen:
        out.append(id(node))
        node = node[0]
    return out


def _length(node: Node) -> int:
    return sum(1 for _ in _nodes(node))
