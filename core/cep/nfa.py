"""Pattern sequences with FlinkCEP 2.3's semantics, run on the automaton FlinkCEP's NFACompiler builds.

A pattern is a list of stages. It is compiled, as FlinkCEP's NFACompiler compiles it (for patterns
without groups or UNTIL), into states with transitions: TAKE the event into a target state, IGNORE it
(let it pass) into a target state, or PROCEED to another state without consuming it, each under a
condition: a conjunction of stage conditions and their negations. So a repeated or optional stage
that let an event pass waits in a state of its own that can only take its next event or let more
pass (FlinkCEP's ignore states: it cannot move on before it takes again); NOT NEXT / NOT FOLLOWED BY
become transitions into a stop state, which ends every branch of the partial match that reaches it;
GREEDY adds "and not the loop's condition" to the transitions of the state after the loop.

A partial match ("run") is a state plus the events taken so far, kept as a linked list so runs that
branch from one another share their prefix (Flink's shared buffer). For each event every run follows
its state's decision graph (PROCEED transitions whose condition holds, then the TAKE and IGNORE
transitions there), as NFA.computeNextStates does. A TAKE whose target state reaches the final state
by PROCEED transitions that hold for the event completes a match. WITHIN bounds a run from its first
event (FlinkCEP's WithinType.FIRST_AND_LAST) or, between events (PREVIOUS_AND_CURRENT), from its last,
the latter only while it waits at a state FlinkCEP gives the window to (that of a stage without
quantifier, or of a NOT NEXT): at ts >= that + within the run times out and is reported as a timed-out
partial match. Time advances once per timestamp, before its first event, as in CepOperator.

Completed matches go through the skip strategy in the order of their first event, as in
NFA.processMatchesAccordingToSkipStrategy: each one emitted discards the runs and the other completed
matches it skips past. Which of two with the same first event goes first (and may discard the other)
FlinkCEP leaves to the layout of its java.util.PriorityQueues, ordered by first event only; under a
skip strategy the runs (with FlinkCEP's start computation state, which sorts last) and the completed
matches are kept in a mimic of those queues, stepped in their array order. Under a strategy other than
NO SKIP, a match is held back while a run that started earlier is still alive, since that run may still
complete a match that would discard it; it is emitted when that run has matched, failed or timed out
(WITHIN bounds the wait). `emit_at_once` emits every match as it completes, the strategy pruning only
among those and the runs after them.

The state is bounded, which Flink leaves to WITHIN: past max_runs partial matches (held-back matches
count as well), or max_events events held (shared-buffer nodes, each counted once however many runs
share it), the oldest are dropped until a tenth of that cap is free again, and counted in `dropped`.
Without a bound, `FOLLOWED BY ANY` with no WITHIN keeps a run per start event forever, and
`x{1,} ALLOW COMBINATIONS` doubles its runs at every event.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

# A condition sees the event and the run's partial match (a node of the linked list, or None).
Condition = Callable[[Any, "Node | None"], bool]
# (previous node, stage name, sequence number of the event, event, ts): a partial match is its last node.
Node = tuple
# a completed match: (its last node, start ts, sequence number of its first event)
Held = tuple[Node, int, int]

SKIP_STRATEGIES = ("no_skip", "skip_to_next", "skip_past_last_event", "skip_to_first", "skip_to_last")
NEGATIONS = ("not_next", "not_followed_by")
WITHIN_TYPES = ("first_and_last", "previous_and_current")
TAKE, IGNORE, PROCEED = 0, 1, 2


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
    walked = list(_walk(node))
    walked.reverse()
    for stage, event in walked:
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
    emit_at_once: bool = False  # do not hold matches back for runs that started earlier


@dataclass(slots=True)
class Run:
    state: int  # index into NFA.states
    node: Node | None
    start_ts: int
    since: int  # what WITHIN counts from: start_ts, or between events the ts of the run's last event
    first: int  # sequence number of the run's first event: runs and matches are ordered by it, as in Flink


@dataclass
class Match:
    events: dict[str, list[Any]]
    start_ts: int
    end_ts: int


Literal = tuple[Stage, bool]  # the stage's condition holds (True) or does not (False)


@dataclass(eq=False)
class State:
    name: str  # the stage whose events it takes
    # normal, final, stop (a NOT stage's event was seen: the branch ends), or pending (a trailing NOT FOLLOWED
    # BY: a run here is a match once WITHIN has passed without the NOT stage's event)
    kind: str = "normal"
    edges: list[list] = field(default_factory=list)  # [action, target State, tuple of Literals]
    index: int = 0
    timed: bool = False  # WITHIN ... BETWEEN EVENTS bounds a run waiting here (FlinkCEP's windowTimes has its name)


class _Compiler:
    """FlinkCEP's NFACompiler.NFAFactoryCompiler for patterns without groups or UNTIL, method for method
    (createMiddleStates, convertPattern, createTimesState, createSingletonState, createLooping,
    copyWithoutTransitiveNots, addStopStates, addStopStateToLooping, updateWithGreedyCondition); the
    states are built from the last stage back to the first."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages
        self.states: list[State] = []
        self.stops: dict[str, State] = {}
        self.cur = 0  # the stage being converted

    def compile(self, within: bool) -> State:
        sink = self.new("", "final")
        for cur in range(len(self.stages) - 1, 0, -1):
            self.cur = cur
            stage = self.stages[cur]
            if stage.link == "not_next":  # NOT NEXT is a state of its own, before the next stage's
                state = self.new(stage.name)
                state.timed = True
                # at the end, the event after is let pass into the final state: the match completes on it
                state.edges.append([IGNORE if sink.kind == "final" else PROCEED, sink, ((stage, False),)])
                state.edges.append([PROCEED, self.stop(stage), ((stage, True),)])
                sink = state
            elif stage.link == "not_followed_by":
                if sink.kind == "final" and within:  # at the end: wait in a pending state for WITHIN to pass
                    state = self.new(stage.name, "pending")
                    state.timed = True
                    state.edges.append([PROCEED, self.stop(stage), ((stage, True),)])
                    state.edges.append([IGNORE, state, ((stage, False),)])
                    sink = state
                # elsewhere: stop transitions on the states around it
            else:
                sink = self.convert(sink)
        self.cur = 0
        return self.convert(sink)

    def new(self, name: str, kind: str = "normal") -> State:
        state = State(name, kind, index=len(self.states))
        self.states.append(state)
        return state

    def stop(self, stage: Stage) -> State:
        state = self.stops.get(stage.name)
        if state is None:
            state = self.stops[stage.name] = self.new(stage.name, "stop")
            state.edges.append([TAKE, state, ((stage, True),)])
        return state

    def nots(self) -> list[Stage]:
        """getCurrentNotCondition: the NOT FOLLOWED BY stages before this one, back through optional stages."""
        out, j = [], self.cur
        while j > 0 and (self.stages[j - 1].optional or self.stages[j - 1].link == "not_followed_by"):
            j -= 1
            if self.stages[j].link == "not_followed_by":
                out.append(self.stages[j])
        return out

    def add_stops(self, state: State) -> None:
        for guard in self.nots():
            state.edges.append([PROCEED, self.stop(guard), ((guard, True),)])

    def stop_to_looping(self, state: State) -> None:
        if self.cur + 1 < len(self.stages) and self.stages[self.cur + 1].link == "not_followed_by":
            guard = self.stages[self.cur + 1]
            state.edges.append([PROCEED, self.stop(guard), ((guard, True),)])

    @staticmethod
    def ignore(stage: Stage, contiguity: str | None) -> tuple[Literal, ...] | None:
        """The condition to let an event pass: none when strict, any event for ANY, else one the stage does not take."""
        if contiguity in ("followed_by_any", "any"):
            return ()
        if contiguity in ("followed_by", "relaxed"):
            return ((stage, False),)
        return None

    def convert(self, sink: State) -> State:
        stage = self.stages[self.cur]
        if stage.high is None:
            last = self.times(self.looping(self.copy_without_nots(sink)), sink, stage.low, stage.low)
        elif (stage.low, stage.high) != (1, 1):
            last = self.times(sink, sink, stage.low, stage.high)
        else:
            last = self.singleton(sink, sink, self.ignore(stage, stage.link), stage.optional)
        self.add_stops(last)
        return last

    def times(self, sink: State, proceed: State, low: int, high: int) -> State:
        stage = self.stages[self.cur]
        inner = self.ignore(stage, stage.inner)
        if stage.greedy and low != high:
            self.greedy(sink, stage)
        last = sink
        for _ in range(low, high):
            last = self.singleton(last, proceed, inner, True)
            self.stop_to_looping(last)
        for _ in range(low - 1):
            last = self.singleton(last, None, inner, False)
            self.stop_to_looping(last)
        return self.singleton(last, proceed, self.ignore(stage, stage.link), stage.optional)

    def singleton(self, sink: State, proceed: State | None, ignore: tuple[Literal, ...] | None,
                  optional: bool) -> State:
        stage = self.stages[self.cur]
        take = ((stage, True),)
        state = self.new(stage.name)
        # createState(..., isTake=true) puts a between-events window on a stage without quantifier only
        state.timed = (stage.low, stage.high) == (1, 1)
        target = self.copy_without_nots(sink)
        state.edges.append([TAKE, target, take])
        if optional:
            state.edges.append([PROCEED, proceed, ()])
        if ignore is not None:
            if optional:  # having let an event pass, an optional stage can no longer be skipped
                waiting = self.new(stage.name)
                waiting.edges.append([TAKE, target, take])
                waiting.edges.append([IGNORE, waiting, ignore])
                self.add_stops(waiting)
            else:
                waiting = state
            state.edges.append([IGNORE, waiting, ignore])
        return state

    def looping(self, sink: State) -> State:
        stage = self.stages[self.cur]
        take = ((stage, True),)
        loop = self.new(stage.name)
        loop.edges.append([PROCEED, sink, ()])
        if stage.greedy:
            self.greedy(sink, stage)
        loop.edges.append([TAKE, loop, take])
        self.stop_to_looping(loop)
        inner = self.ignore(stage, stage.inner)
        if inner is not None:  # having let an event pass, the loop takes again before it can move on
            waiting = self.new(stage.name)
            waiting.edges.append([TAKE, loop, take])
            waiting.edges.append([IGNORE, waiting, inner])
            loop.edges.append([IGNORE, waiting, inner])
            self.stop_to_looping(waiting)
        return loop

    @staticmethod
    def greedy(state: State, stage: Stage) -> None:
        """updateWithGreedyCondition: what follows a greedy loop acts only on events the loop does not take."""
        for edge in state.edges:
            edge[2] = edge[2] + ((stage, False),)

    def copy_without_nots(self, sink: State) -> State:
        """After an optional stage takes an event, the NOT FOLLOWED BY before it no longer applies."""
        nots = self.nots()
        if not nots or not self.stages[self.cur].optional:
            return sink
        return self._copy(sink, {guard.name for guard in nots})

    def _copy(self, state: State, nots: set[str]) -> State:
        copy = self.new(state.name, state.kind)
        for action, target, cond in state.edges:
            if action == PROCEED:
                if target.kind == "stop":
                    if target.name in nots:
                        continue
                else:
                    target = self._copy(target, nots)
                copy.edges.append([action, target, cond])
            else:
                copy.edges.append([action, copy if target is state else target, cond])
        return copy


def _decisions(state: State) -> list[tuple[int, State, tuple[Literal, ...], str]]:
    """The TAKE and IGNORE transitions a run at `state` can use, in the order NFA.createDecisionGraph finds
    them, each with its condition and those of the PROCEED transitions on the way, and the stage of the
    state it leaves from (the stage an event it takes goes to)."""
    out: list[tuple[int, State, tuple[Literal, ...], str]] = []
    stack: list[tuple[State, tuple[Literal, ...]]] = [(state, ())]
    while stack:
        current, path = stack.pop()
        for action, target, cond in current.edges:
            if action == PROCEED:
                stack.append((target, path + cond))
            else:
                out.append((action, target, path + cond, current.name))
    return out


def _final_paths(state: State) -> list[tuple[Literal, ...]]:
    """The conditions under which PROCEED transitions lead from `state` to the final state."""
    out: list[tuple[Literal, ...]] = []
    stack: list[tuple[State, tuple[Literal, ...]]] = [(state, ())]
    while stack:
        current, path = stack.pop()
        if current.kind == "final":
            out.append(path)
            continue
        for action, target, cond in current.edges:
            if action == PROCEED:
                stack.append((target, path + cond))
    return out


# action, target, condition, the target's kind, the stage taking the event, (TAKE) the conditions to complete,
# and whether WITHIN bounds a run at the target
_Decision = tuple[int, int, tuple[Literal, ...], str, str, list[tuple[Literal, ...]], bool]
NEVER = 2**63  # the `since` of a run WITHIN does not bound


class NFA:
    def __init__(self, pattern: Pattern, max_runs: int | None = None, max_events: int | None = None) -> None:
        stages = pattern.stages
        if not stages or stages[0].link in NEGATIONS:
            raise ValueError("a pattern needs a positive first stage")
        if stages[-1].link == "not_followed_by" and pattern.within_ms is None:
            raise ValueError("a pattern can end with NOT FOLLOWED BY only with a WITHIN")
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
        # which of two matches with the same first event a skip strategy keeps follows FlinkCEP's priority queues
        self.hold_back = skip != "no_skip" and not pattern.emit_at_once
        self._stage_index = {stage.name: i for i, stage in enumerate(stages)}
        compiler = _Compiler(stages)
        self.start = compiler.compile(pattern.within_ms is not None).index
        self.states = compiler.states
        # per state: its decisions, with the target's index and kind and, for a TAKE, when it completes a match
        self._plans: list[list[_Decision]] = [
            [(action, target.index, cond, target.kind, name, _final_paths(target) if action == TAKE else [],
              self._timed(target)) for action, target, cond, name in _decisions(state)] for state in self.states]
        self._stops = [any(d[3] == "stop" for d in plan) for plan in self._plans]
        # when the first stage is plain (no match to read, not optional), it alone decides if a run starts
        takes = [d[2] for d in self._plans[self.start] if d[0] == TAKE]
        first = stages[0]
        self._first = first if len(takes) == 1 and _only(takes[0], first, True) and not first.uses_match else None
        # states where a run can only take its stage's event or let it pass and stay: the hot path
        self._waiting: dict[int, Stage] = {}
        for state, plan in zip(self.states, self._plans, strict=True):
            if state.index == self.start or len(plan) != 2:
                continue
            take = next((d[2] for d in plan if d[0] == TAKE), None)
            stay = next((d[2] for d in plan if d[0] == IGNORE and d[1] == state.index), None)
            if take is not None and stay is not None and len(take) == 1 and take[0][1] and \
                    (stay == () or _only(stay, take[0][0], False)):
                self._waiting[state.index] = take[0][0]
        # runs grouped by state, so a group waiting for an event that is not its stage's moves on whole
        self.groups: dict[int, list[Run]] = {}
        self.oldest: dict[int, int] = {}  # per group: the earliest time WITHIN counts from
        self.held: list[Held] = []  # completed matches held back for an earlier run (under hold-back, a heap)
        # under hold-back, the runs as a heap in FlinkCEP's layout, with its start computation state (no node)
        self.queue: list[Run] = [self._start_run()] if self.hold_back else []
        self.seq = 0
        self.now: int | None = None  # the time last advanced to
        # whether the last event changed nothing but the event count: then the host need not write the state again
        # (the count only orders the events of live runs, and every one of those was written when it changed)
        self.quiet = False

    def _timed(self, state: State) -> bool:
        """Whether WITHIN bounds a run at the state: from the first event at every state, between events only
        at those FlinkCEP looks the window up for (NFA.advanceTime finds it by state name in windowTimes)."""
        return self.within_ms is not None and (self.from_first or state.timed)

    # ------------------------------------------------------------ processing

    def process(self, event: Any, ts: int) -> tuple[list[Match], list[Match]]:
        """Feed one event (in event-time order); return (matches, timed-out partial matches)."""
        # as CepOperator, time advances once per timestamp, before its first event: an event cannot time out a
        # run that another event of the same timestamp let through
        advancing = bool(self.oldest) and (self.now is None or ts > self.now)
        released, timeouts = self.advance_time(ts) if advancing else ([], [])
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
            self.quiet = not advancing
            return released, timeouts  # the common case: nothing this event can change
        self.quiet = False
        if self.hold_back:
            for item in self._step_queue(event, ts, seq, holds, starts):
                _offer(self.held, item, _held_key)  # completedMatches.addAll(potentialMatches)
        else:
            self._step_groups(active, event, ts, seq, holds, starts)
        matches = self._release() if self.held else []
        if self._bound() and self.held:
            matches += self._release()
        return released + matches, timeouts

    def _step_groups(self, active: list[int], event: Any, ts: int, seq: int, holds, starts: bool) -> None:
        """Step the runs of the active groups; the others stay as they are. Completed matches are held in the
        order the runs complete them (without hold-back, their order decides nothing)."""
        waiting = self._waiting
        successors: list[Run] = []
        completed: list[Held] = []
        for key in active:
            stage = waiting.get(key)
            for run in self.groups[key]:
                if stage is not None and not holds(stage, run.node):
                    successors.append(run)
                else:
                    self._step(run, event, ts, seq, holds, successors, completed)
        if starts:
            self._step(Run(self.start, None, ts, ts, seq), event, ts, seq, holds, successors, completed, True)
        groups = {key: group for key, group in self.groups.items() if key not in active}
        oldest = {key: self.oldest[key] for key in groups}
        carried = set(groups)
        for run in successors:
            key = run.state
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
        self.held.extend(completed)

    def _step_queue(self, event: Any, ts: int, seq: int, holds, starts: bool) -> list[Held]:
        """NFA.doProcess: step every run in the queue's array order, offering what it becomes to a new queue (the
        start computation state last among its own) and the matches it completes to a queue of potential matches,
        which is returned. A run waiting for a stage the event does not satisfy is offered again as it is."""
        waiting = self._waiting
        queue: list[Run] = []
        potential: list[Held] = []
        for run in self.queue:
            if run.node is None:
                if not starts:
                    _offer(queue, run, _run_key)
                    continue
                step = Run(self.start, None, ts, ts, seq)
            elif (stage := waiting.get(run.state)) is not None and not holds(stage, run.node):
                _offer(queue, run, _run_key)
                continue
            else:
                step = run
            out: list[Run] = []
            completed: list[Held] = []
            self._step(step, event, ts, seq, holds, out, completed, run.node is None)
            if run.node is None:
                out.append(run)
            for item in completed:
                _offer(potential, item, _held_key)
            for successor in out:
                _offer(queue, successor, _run_key)
        self._set_queue(queue)
        return potential

    def _set_queue(self, queue: list[Run]) -> None:
        """Take the queue as the runs, grouped by state as well for the checks that skip whole groups."""
        self.queue = queue
        groups: dict[int, list[Run]] = {}
        oldest: dict[int, int] = {}
        for run in queue:
            if run.node is not None:
                key = run.state
                group = groups.get(key)
                if group is None:
                    groups[key] = [run]
                    oldest[key] = run.since
                else:
                    group.append(run)
                    if run.since < oldest[key]:
                        oldest[key] = run.since
        self.groups, self.oldest = groups, oldest

    def _start_run(self) -> Run:
        """FlinkCEP's start computation state: it has no start event, so its queue puts it after every run."""
        return Run(self.start, None, 0, NEVER, NEVER)

    @property
    def runs(self) -> list[Run]:
        return [run for group in self.groups.values() for run in group]

    def _keep(self, keep) -> None:
        """Keep only the runs for which keep(run) is true (under hold-back, as PriorityQueue.removeIf keeps them)."""
        if self.hold_back:
            if _remove_if(self.queue, lambda r: r.node is not None and not keep(r), _run_key):
                self._set_queue(self.queue)
            return
        groups = {key: [r for r in group if keep(r)] for key, group in self.groups.items()}
        self.groups = {key: group for key, group in groups.items() if group}
        self.oldest = {key: min(r.since for r in group) for key, group in self.groups.items()}

    def _step(self, run: Run, event: Any, ts: int, seq: int, holds, successors: list[Run],
              completed: list[Held], from_start: bool = False) -> None:
        """NFA.computeNextStates for one run: follow its decisions that hold for the event."""
        node = run.node
        values: dict[int, bool] = {}

        def true(cond: tuple[Literal, ...]) -> bool:
            for stage, positive in cond:
                value = values.get(id(stage))
                if value is None:
                    value = values[id(stage)] = holds(stage, node)
                if value is not positive:
                    return False
            return True

        stops = self._stops[run.state]
        out = [] if stops else successors  # with a stop in reach, the branches are kept only if none reaches it
        stopped = False
        for action, target, cond, kind, name, finals, timed in self._plans[run.state]:
            if not true(cond):
                continue
            if action == IGNORE:
                if from_start:  # the start state never keeps a run alive: a new one starts at every event
                    continue
                if target == run.state:
                    out.append(run)
                    continue
                assert node is not None  # only the start state's run has taken nothing
                if kind == "final":  # a trailing NOT NEXT: the event after is not the NOT stage's
                    completed.append((node, run.start_ts, run.first))
                else:  # letting an event pass keeps the time of the last one taken
                    since = (run.start_ts if self.from_first else node[4]) if timed else NEVER
                    out.append(Run(target, node, run.start_ts, since, run.first))
                continue
            if kind == "stop":
                stopped = True
                continue
            taken = (node, name, seq, event, ts)
            self._taken += 1
            start_ts = ts if node is None else run.start_ts
            if kind == "final" or any(true(path) for path in finals):
                completed.append((taken, start_ts, run.first))
            if kind != "final":
                since = (start_ts if self.from_first else ts) if timed else NEVER
                out.append(Run(target, taken, start_ts, since, run.first))
        if stops and not stopped:
            successors.extend(out)

    def advance_time(self, ts: int) -> tuple[list[Match], list[Match]]:
        """Time out runs that can no longer finish WITHIN their window (or take their next event within it,
        between events), reporting each partial match once; return (the matches this lets out, the timeouts)."""
        if self.now is None or ts > self.now:
            self.now = ts
        if self.within_ms is None or not self.oldest:
            return [], []
        limit = ts - self.within_ms
        if min(self.oldest.values()) > limit:
            return [], []
        timed_out, seen = [], set()
        expired = []
        states = self.states
        if self.hold_back:  # NFA.advanceTime: what is left is offered to a new queue in the old one's array order
            queue: list[Run] = []
            potential: list[Held] = []
            for r in self.queue:
                if r.since > limit or r.node is None:
                    _offer(queue, r, _run_key)
                elif states[r.state].kind == "pending":  # WITHIN passed without the NOT stage's event: a match
                    _offer(potential, (r.node, r.start_ts, r.first), _held_key)
                else:
                    expired.append((r.start_ts, r.node))
            self._set_queue(queue)
            for item in potential:
                _offer(self.held, item, _held_key)
        else:
            for key, group in self.groups.items():
                if self.oldest[key] > limit:
                    continue
                pending = states[key].kind == "pending"
                for r in group:
                    if r.since <= limit and r.node is not None:
                        if pending:
                            self.held.append((r.node, r.start_ts, r.first))
                        else:
                            expired.append((r.start_ts, r.node))
            self._keep(lambda r: r.since > limit)
        for start_ts, node in sorted(expired, key=lambda e: (e[0], e[1][2])):
            if id(node) not in seen:
                seen.add(id(node))
                timed_out.append(Match(match_dict(node), start_ts, node[4]))
        return (self._release() if self.held else []), timed_out

    def state(self) -> tuple[int, int]:
        """(partial matches, events they hold): what the rule's stats report. Held-back matches count too."""
        seen: set[int] = set()
        nodes = [run.node for run in self.runs] + [held[0] for held in self.held]
        for node in nodes:
            seen.update(_unseen(node, seen))
        return len(nodes), len(seen)

    def _bound(self) -> bool:
        """Past a cap, drop the oldest runs and held-back matches until 90% of it is left; whether any were
        dropped. Counting the events held walks them all, so it is done only when those held at the last count
        plus those taken since pass the cap; over 90% of it, they are then cut to 90%, and the next count is a
        tenth of the cap in taken events away."""
        runs = sum(map(len, self.groups.values())) + len(self.held)
        over_runs = self.max_runs is not None and runs > self.max_runs
        if not over_runs and (self.max_events is None or self._held + self._taken <= self.max_events):
            return False
        keep_runs = self.max_runs - self.max_runs // 10 if over_runs and self.max_runs is not None else runs
        keep_events = None if self.max_events is None else self.max_events - self.max_events // 10
        kept: set[int] = set()
        seen: set[int] = set()
        items = [(run.start_ts, run.node, id(run)) for run in self.runs] + \
                [(start_ts, node, id(node)) for node, start_ts, _ in self.held]
        for _, node, ident in sorted(items, key=lambda item: item[0], reverse=True):  # newest first
            unseen = _unseen(node, seen)
            if len(kept) == keep_runs or (keep_events is not None and len(seen) + len(unseen) > keep_events):
                break
            seen.update(unseen)
            kept.add(ident)
        self._held, self._taken = len(seen), 0
        if len(kept) == runs:
            return False
        self.dropped += runs - len(kept)
        self._keep(lambda r: id(r) in kept)
        self._prune_held(lambda held: id(held[0]) not in kept)
        return True

    def _release(self) -> list[Match]:
        """Emit completed matches in the order of their first event, each pruning by the skip strategy the runs
        and other matches it skips past: NFA.processMatchesAccordingToSkipStrategy. Under hold-back, stop at one
        after the earliest run (it may still complete a match that prunes it), and take them as FlinkCEP's queue
        gives them, so that of matches with the same first event the one it emits (and keeps) comes first."""
        held = self.held
        if not self.hold_back and len(held) > 1:
            held.sort(key=self._order)
        matches: list[Match] = []
        while held:
            node, start_ts, first = held[0]
            if self.hold_back:
                if first > self.queue[0].first:
                    break
                _poll(held, _held_key)
            else:
                del held[0]
            matches.append(Match(match_dict(node), start_ts, node[4]))
            bound = self._skip_bound(node, first)
            if bound is not None:
                self._prune(first, bound)
        return matches

    def _prune(self, lo: int, hi: int) -> None:
        """AfterMatchSkipStrategy.prune of the runs and then of the completed matches begun in [lo, hi)."""
        self._keep(lambda r: not lo <= r.first < hi)
        self._prune_held(lambda h: lo <= h[2] < hi)

    def _prune_held(self, doomed: Callable[[Held], bool]) -> None:
        if self.hold_back:
            _remove_if(self.held, doomed, _held_key)
        else:
            self.held[:] = [h for h in self.held if not doomed(h)]

    def _order(self, held: Held) -> tuple[int, list[tuple[int, int]]]:
        """Without hold-back (emit_at_once), matches go by their first event; among those with the same one, the
        branch that took an event at an earlier stage (or, at the same stage, an earlier event) first."""
        index = self._stage_index
        path = [(index[n[1]], n[2]) for n in _nodes(held[0])]
        path.reverse()
        return held[2], path

    def _skip_bound(self, node: Node, first: int) -> int | None:
        """Runs and matches whose first event's sequence number lies in [first, bound) are discarded: Flink prunes
        those that began up to the match's first or last event, or before its stage's first or last one (none
        began before the match's first event when it is emitted, but with emit_at_once those are kept)."""
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
        """Under hold-back, the runs and held matches in their queues' array order (the start computation state as
        a run without node), which offering them again in that order rebuilds."""
        runs = self.queue if self.hold_back else self.runs
        return {"seq": self.seq, "dropped": self.dropped, "now": self.now,
                "runs": [(r.state, r.node, r.start_ts) for r in runs], "held": list(self.held)}

    def restore(self, snap: dict) -> None:
        """Partial matches saved by the engine before it ran FlinkCEP's states (six-field runs) cannot be placed
        in them: they are dropped and counted. A snapshot from before the queues has no start computation state:
        it goes last. Its held matches lack their first event's number, found from the match."""
        self.seq, self.dropped = snap["seq"], snap.get("dropped", 0)  # snapshots before the caps have no count
        self.now = snap.get("now")
        queue: list[Run] = []
        start = None
        for saved in snap["runs"]:
            if len(saved) != 3:
                self.dropped += 1
                continue
            s, n, t = saved
            if n is None:
                start = self._start_run()
                run = start
            else:
                since = (t if self.from_first else n[4]) if self._timed(self.states[s]) else NEVER
                run = Run(s, n, t, since, _first_seq(n))
            if self.hold_back:
                _offer(queue, run, _run_key)
            elif n is not None:
                queue.append(run)
        if self.hold_back and start is None:
            _offer(queue, self._start_run(), _run_key)
        self._set_queue(queue)
        if not self.hold_back:
            self.queue = []
        self.held = []
        for held in snap.get("held", ()):
            item = held if len(held) == 3 else (held[0], held[1], _first_seq(held[0]))
            if self.hold_back:
                _offer(self.held, item, _held_key)
            else:
                self.held.append(item)
        self._held, self._taken = self.state()[1], 0


def _only(cond: tuple[Literal, ...], stage: Stage, positive: bool) -> bool:
    """Whether the condition is exactly that stage's condition holding (or not)."""
    return len(cond) == 1 and cond[0][0] is stage and cond[0][1] is positive


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


# java.util.PriorityQueue's array operations (JDK 17), which decide where runs and matches with the same key go


def _run_key(run: Run) -> int:
    return run.first


_held_key: Callable[[Held], int] = itemgetter(2)


def _offer(heap: list, item: Any, key: Callable[[Any], int]) -> None:
    """offer: append, then siftUp past parents with a greater key only."""
    k = len(heap)
    heap.append(item)
    x = key(item)
    while k > 0:
        parent = (k - 1) >> 1
        e = heap[parent]
        if x >= key(e):
            break
        heap[k] = e
        k = parent
    heap[k] = item


def _sift_down(heap: list, k: int, item: Any, key: Callable[[Any], int]) -> None:
    """siftDown: past the lesser child (the left one on a tie) while it has a smaller key."""
    n = len(heap)
    half = n >> 1
    x = key(item)
    while k < half:
        child = 2 * k + 1
        c = heap[child]
        right = child + 1
        if right < n and key(c) > key(heap[right]):
            child = right
            c = heap[child]
        if x <= key(c):
            break
        heap[k] = c
        k = child
    heap[k] = item


def _poll(heap: list, key: Callable[[Any], int]) -> Any:
    """poll: the head goes; the last element is sifted down from the top."""
    head = heap[0]
    last = heap.pop()
    if heap:
        _sift_down(heap, 0, last, key)
    return head


def _remove_if(heap: list, doomed: Callable[[Any], bool], key: Callable[[Any], int]) -> bool:
    """removeIf / removeAll (bulkRemove): the survivors keep their order, then heapify; whether any went."""
    kept = [item for item in heap if not doomed(item)]
    if len(kept) == len(heap):
        return False
    heap[:] = kept
    for i in range((len(heap) >> 1) - 1, -1, -1):
        _sift_down(heap, i, heap[i], key)
    return True
