"""Progress: where the job's readers are against the topics' ends, and a command's progress line on a terminal.

The readers and producers report through the Redis hashes PROGRESS and TOPIC_ENDS
(core/contracts/redis_keys.py); this module holds the pure parts: when a reader reports, how
producers' delivery reports become ends, and how the two hashes read back. ProgressLine is what
long commands (`ascep replay`, `ascep rules backtest`) show while they run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

import orjson

from core.contracts.redis_keys import (
    PROGRESS,
    TOPIC_ENDS,
    parse_progress_field,
    parse_topic_end_field,
    topic_end_field,
)
from core.contracts.topics import SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC

REPORT_EVERY_MS = 1_000
# The topics each stage must keep up with; the rules topic has no reported ends (its reader is judged by its polls).
STAGE_TOPICS = {"read": (TICKS_TOPIC,), "lake": (TICKS_TOPIC, TRADES_TOPIC, SIGNALS_TOPIC)}


@dataclass(frozen=True, slots=True)
class Progress:
    next: int  # the offset read next
    advanced_at: int  # epoch ms `next` last moved
    polled_at: int  # epoch ms of the latest poll

    def to_json(self) -> bytes:
        return orjson.dumps({"next": self.next, "advanced_at": self.advanced_at, "polled_at": self.polled_at})


class ProgressClock:
    """Says when one reader's partition reports: on its first poll, at most every `every_ms` after, and at once
    when it moves after a pause, so a reader that was idle never looks stuck just because it had not reported."""

    def __init__(self, every_ms: int = REPORT_EVERY_MS) -> None:
        self.every_ms = every_ms
        self.last: Progress | None = None
        self.reported_at: int | None = None

    def poll(self, next_offset: int, now: int) -> Progress | None:
        """The progress to report now, or None."""
        last = self.last
        moved = last is None or next_offset != last.next
        current = Progress(next_offset, now if moved or last is None else last.advanced_at, now)
        self.last = current
        due = (self.reported_at is None or now - self.reported_at >= self.every_ms
               or (moved and last is not None and now - last.advanced_at >= self.every_ms))
        if not due:
            return None
        self.reported_at = now
        return current


class TopicEnds:
    """The offset after the newest acknowledged record per topic partition, from a producer's delivery reports."""

    def __init__(self) -> None:
        self.ends: dict[str, int] = {}
        self.unreported: dict[str, int] = {}

    def delivered(self, topic: str, partition: int, offset: int) -> None:
        field = topic_end_field(topic, partition)
        if offset + 1 > self.ends.get(field, 0):
            self.ends[field] = self.unreported[field] = offset + 1

    def take(self) -> dict[str, int]:
        """The ends raised since the last take."""
        out, self.unreported = self.unreported, {}
        return out

    def not_reported(self, ends: dict[str, int]) -> None:
        """A report that failed: its ends go into the next one (unless newer ones came meanwhile)."""
        for field, end in ends.items():
            self.unreported.setdefault(field, end)


def read_progress(raw: dict[str, bytes | str]) -> dict[tuple[str, str, int], Progress]:
    """PROGRESS as stored -> (stage, topic, partition) -> Progress; ValueError names a bad entry."""
    out = {}
    for field, doc in raw.items():
        key = parse_progress_field(field)
        try:
            values = orjson.loads(doc)
            out[key] = Progress(int(values["next"]), int(values["advanced_at"]), int(values["polled_at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"progress entry {field!r} is not JSON with next, advanced_at and polled_at: "
                             f"{doc!r}") from exc
    return out


def read_ends(raw: dict[str, bytes | str]) -> dict[tuple[str, int], int]:
    """TOPIC_ENDS as stored -> (topic, partition) -> end offset; ValueError names a bad entry."""
    out = {}
    for field, value in raw.items():
        key = parse_topic_end_field(field)
        try:
            out[key] = int(value)
        except ValueError:
            raise ValueError(f"topic end {field!r} is not an offset: {value!r}") from None
    return out


def behind(progress: dict[tuple[str, str, int], Progress], ends: dict[tuple[str, int], int],
           stages: dict[str, tuple[str, ...]] = STAGE_TOPICS) -> dict[tuple[str, str, int], int]:
    """Records each (stage, topic, partition) of `stages` (stage -> topics) still has to reach the topics' ends;
    a stage that never reported a partition is behind by its whole end."""
    out = {}
    for (topic, partition), end in sorted(ends.items()):
        for stage, topics in stages.items():
            if topic in topics:
                reported = progress.get((stage, topic, partition))
                missing = end - (reported.next if reported else 0)
                if missing > 0:
                    out[(stage, topic, partition)] = missing
    return out


def unread_by_stage(progress: dict[tuple[str, str, int], Progress], ends: dict[tuple[str, int], int],
                    stages: dict[str, tuple[str, ...]] = STAGE_TOPICS) -> tuple[dict[str, int], dict[str, str]]:
    """(records each stage has not read yet, summed over its topics' partitions; why each other stage has no
    figure). A stage that never reported a place has none rather than its topics' whole ends: the job has not
    run there, or runs without that stage (no lake); nor has one whose topics have no reported end, which
    would read as nothing unread."""
    left = behind(progress, ends, stages)
    unread, unknown = {}, {}
    for stage, topics in stages.items():
        if not any(s == stage and topic in topics for s, topic, _ in progress):
            unknown[stage] = f"stage {stage} reported no place on {', '.join(topics)} in {PROGRESS}"
        elif not any(topic in topics for topic, _ in ends):
            unknown[stage] = f"no producer reported an end of {', '.join(topics)} in {TOPIC_ENDS}"
        else:
            unread[stage] = sum(count for (s, _, _), count in left.items() if s == stage)
    return unread, unknown


class ProgressLine:
    """One line on a terminal, rewritten in place at most every 0.25 s; silent when the stream is not a terminal,
    so piped output stays clean (a command's summary is printed regardless)."""

    def __init__(self, unit: str, stream: TextIO) -> None:
        self.unit = unit
        self.stream = stream
        self.enabled = stream.isatty()
        self._next = 0.0
        self._start = time.monotonic()

    def update(self, count: int, fraction: float) -> None:
        """`count` of the unit done so far, `fraction` (0 to 1) of the whole."""
        now = time.monotonic()
        if not self.enabled or now < self._next:
            return
        self._next = now + 0.25
        rate = count / max(now - self._start, 1e-9)
        self.stream.write(f"\r{count:,} {self.unit}  {rate:,.0f}/s  {100 * fraction:5.1f}%")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
