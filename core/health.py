"""What /api/health says: facts about the running stack, limits, now -> ok / degraded / down, and why.

Pure, so every rule is unit-tested without a stack; dashboard/store.py gathers the facts. A dead
pipeline must not look healthy: the job stalled while input waits is "down" (no signal can come),
stale data, a lagging lake or an old checkpoint is "degraded" (signals may still flow).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.contracts.times import iso_ms, iso_or_none
from core.progress import STAGE_TOPICS, Progress
from core.settings import HealthSettings

Status = Literal["ok", "degraded", "down"]
RANK: dict[Status, int] = {"ok": 0, "degraded": 1, "down": 2}
STAGE_NAMES = {"read": "tick reader", "rules": "rules reader", "lake": "lake archiver"}


@dataclass(frozen=True)
class Connector:
    connected: bool
    last_frame_ms: int | None


@dataclass(frozen=True)
class Checkpoint:
    number: int
    completed_at: int  # epoch ms


@dataclass(frozen=True)
class HealthFacts:
    now: int  # epoch ms
    progress: dict[tuple[str, str, int], Progress] = field(default_factory=dict)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    newest_tick: dict[str, int] = field(default_factory=dict)  # venue -> event time of its newest tick
    connectors: dict[str, Connector] = field(default_factory=dict)
    checkpoints_known: bool = False  # False: the dashboard was not told where checkpoints are
    checkpoint: Checkpoint | None = None
    job_started_at: int | None = None


@dataclass(frozen=True)
class Assessment:
    status: Status
    reasons: list[str]
    components: dict[str, Any]


class _Verdict:
    """Collects problems: the worst severity wins, every reason is kept."""

    def __init__(self) -> None:
        self.status: Status = "ok"
        self.reasons: list[str] = []

    def add(self, status: Status, reason: str) -> Status:
        if RANK[status] > RANK[self.status]:
            self.status = status
        self.reasons.append(reason)
        return status


def _seconds(ms: int) -> float:
    return round(ms / 1000, 1)


def _readers(facts: HealthFacts, limits: HealthSettings, verdict: _Verdict) -> list[dict[str, Any]]:
    now = facts.now
    # Every job reads ticks; only a job with a lake has archivers, and those report on their first poll.
    expected = {"read"} | {stage for stage, _, _ in facts.progress}
    keys = set(facts.progress) | {(stage, topic, partition) for stage, topics in STAGE_TOPICS.items()
                                  if stage in expected for topic, partition in facts.ends if topic in topics}
    job_ran_ms = None if facts.job_started_at is None else now - facts.job_started_at
    out = []
    for stage, topic, partition in sorted(keys):
        where = f"{STAGE_NAMES.get(stage, stage)} of {topic}:{partition}"
        limit_s = limits.lake_stall_after_s if stage == "lake" else limits.stall_after_s
        severity: Status = "degraded" if stage == "lake" else "down"
        end = facts.ends.get((topic, partition))
        seen = facts.progress.get((stage, topic, partition))
        row: dict[str, Any] = {"stage": stage, "topic": topic, "partition": partition, "end": end,
                               "next": None, "lag": None, "status": "ok"}
        if seen is None:
            if job_ran_ms is not None and job_ran_ms > limit_s * 1000:
                row["status"] = verdict.add(severity, f"the {where} has not reported since the job started "
                                                      f"{_seconds(job_ran_ms):.0f} s ago")
            out.append(row)
            continue
        lag = None if end is None else max(0, end - seen.next)
        still_ms, unpolled_ms = now - seen.advanced_at, now - seen.polled_at
        row.update(next=seen.next, lag=lag, advanced_s_ago=_seconds(still_ms), polled_s_ago=_seconds(unpolled_ms))
        if lag and still_ms > limit_s * 1000:
            row["status"] = verdict.add(severity, f"the {where} is stalled: {lag} records wait and it has not "
                                                  f"moved for {_seconds(still_ms):.0f} s")
        elif unpolled_ms > limit_s * 1000:
            row["status"] = verdict.add(severity, f"the {where} has not polled for {_seconds(unpolled_ms):.0f} s")
        out.append(row)
    return out


def _checkpoint(facts: HealthFacts, limits: HealthSettings, verdict: _Verdict) -> dict[str, Any]:
    if not facts.checkpoints_known:
        return {"status": "unknown"}
    newest = facts.checkpoint
    out: dict[str, Any] = {"status": "ok", "id": None, "age_s": None}
    if newest is not None:
        out.update(id=newest.number, age_s=_seconds(facts.now - newest.completed_at))
    if facts.job_started_at is not None:  # an earlier run's checkpoint does not make this run's job late
        since = max(facts.job_started_at, newest.completed_at if newest else 0)
        if facts.now - since > limits.max_checkpoint_age_s * 1000:
            out["status"] = verdict.add("degraded", f"no checkpoint completed for {_seconds(facts.now - since):.0f} s")
    return out


def assess(facts: HealthFacts, limits: HealthSettings) -> Assessment:
    verdict = _Verdict()
    max_age_ms = limits.max_data_age_s * 1000
    readers = _readers(facts, limits, verdict)
    venues = {}
    for venue, ts in sorted(facts.newest_tick.items()):
        age_ms = facts.now - ts
        venues[venue] = {"newest_tick": ts, "newest_tick_iso": iso_ms(ts), "age_s": _seconds(age_ms), "status": "ok"}
        if age_ms > max_age_ms:
            venues[venue]["status"] = verdict.add("degraded", f"the newest tick of {venue} is "
                                                              f"{_seconds(age_ms):.0f} s old")
    connectors = {}
    for venue, connector in sorted(facts.connectors.items()):
        frame_age = None if connector.last_frame_ms is None else facts.now - connector.last_frame_ms
        row: dict[str, Any] = {"connected": connector.connected, "last_frame": connector.last_frame_ms,
                               "last_frame_iso": iso_or_none(connector.last_frame_ms),
                               "age_s": None if frame_age is None else _seconds(frame_age), "status": "ok"}
        if not connector.connected:
            row["status"] = verdict.add("degraded", f"the {venue} connector is disconnected")
        elif frame_age is not None and frame_age > max_age_ms:
            row["status"] = verdict.add("degraded", f"the {venue} connector got no frame for "
                                                    f"{_seconds(frame_age):.0f} s")
        connectors[venue] = row
    checkpoint = _checkpoint(facts, limits, verdict)
    job_status = max((r["status"] for r in readers), key=RANK.__getitem__, default="ok")
    job = {"status": job_status, "started_at": facts.job_started_at,
           "started_at_iso": iso_or_none(facts.job_started_at), "readers": readers}
    # server_time: the clock every age here is measured against.
    components = {"job": job, "venues": venues, "connectors": connectors, "checkpoint": checkpoint,
                  "server_time": facts.now, "server_time_iso": iso_ms(facts.now)}
    return Assessment(verdict.status, verdict.reasons, components)
