"""What /api/services says: one entry per component of the stack, with its address, status and last heartbeat.

Pure, so every rule is unit-tested without a stack. dashboard/services.py probes what the dashboard can ask
itself (the broker, Redis, the lake) and gathers what the job and the connectors last reported, which
core/health.py has already judged: its verdict is reused here, never judged twice. A component nothing has
heard from is "unknown", not "down": the dashboard may simply not have been told where it is.

A probed component's last heartbeat is the last time it answered this dashboard process; a reporting one's
(the job, a connector) is its latest report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.contracts.tick import iso_ms
from core.health import RANK, Assessment, HealthFacts, Status

ServiceStatus = Literal["up", "down", "degraded", "unknown"]
FROM_HEALTH: dict[str, ServiceStatus] = {"ok": "up", "degraded": "degraded", "down": "down"}


@dataclass(frozen=True)
class Probe:
    """What one direct check found: `reachable` None when it could not be made (no address known)."""

    address: str | None
    reachable: bool | None
    last_answer: int | None = None  # epoch ms it last answered this process
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def entry(name: str, kind: str, address: str | None, status: ServiceStatus, heartbeat: int | None,
          detail: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "kind": kind, "address": address, "status": status, "last_heartbeat": heartbeat,
            "last_heartbeat_iso": None if heartbeat is None else iso_ms(heartbeat), "detail": detail}


def probed(name: str, kind: str, probe: Probe) -> dict[str, Any]:
    status: ServiceStatus = "unknown" if probe.reachable is None else "up" if probe.reachable else "down"
    detail = {**probe.detail, **({"error": probe.error} if probe.error else {})}
    return entry(name, kind, probe.address, status, probe.last_answer, detail)


def _worst(statuses: list[Status]) -> ServiceStatus:
    """The worst of core.health statuses, as a service status; "unknown" when there are none."""
    if not statuses:
        return "unknown"
    return FROM_HEALTH[max(statuses, key=RANK.__getitem__)]


def _polled(facts: HealthFacts, stages: tuple[str, ...]) -> int | None:
    return max((p.polled_at for (stage, _, _), p in facts.progress.items() if stage in stages), default=None)


def job(facts: HealthFacts, verdict: Assessment, address: str | None) -> dict[str, Any]:
    """The job's readers (not the lake's archivers) and its checkpoints, as /api/health judged them."""
    readers = [row for row in verdict.components["job"]["readers"] if row["stage"] != "lake"]
    checkpoint = verdict.components["checkpoint"]
    status = _worst([row["status"] for row in readers])
    if status == "up" and checkpoint["status"] == "degraded":
        status = "degraded"
    started = facts.job_started_at
    detail = {"started_at": started, "started_at_iso": None if started is None else iso_ms(started),
              "readers": readers, "checkpoint": checkpoint}
    return entry("job", "job", address, status, _polled(facts, ("read", "rules")), detail)


def lake(facts: HealthFacts, verdict: Assessment, probe: Probe, newest_write: tuple[str, int] | None) -> dict[str, Any]:
    """The store (did it answer a listing) and the job's archivers into it (are they keeping up)."""
    archivers = [row for row in verdict.components["job"]["readers"] if row["stage"] == "lake"]
    written = None if newest_write is None else {"manifest": newest_write[0], "at": newest_write[1],
                                                 "at_iso": iso_ms(newest_write[1])}
    found = probed("lake", "lake", probe)
    if probe.reachable:
        found["status"] = _worst([row["status"] for row in archivers]) if archivers else "up"
    found["detail"].update(newest_write=written, archivers=archivers,
                           archived_at=_polled(facts, ("lake",)))
    return found


def connectors(facts: HealthFacts, verdict: Assessment, snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per connector that publishes its ascep:ingest:<venue> hash: down while its feed is disconnected,
    degraded while connected but quiet (core/health.py's limit)."""
    judged = verdict.components["connectors"]
    out = []
    for snapshot in snapshots:
        venue = str(snapshot["venue"])
        row = judged.get(venue, {"status": "ok"})
        status: ServiceStatus = "down" if not snapshot.get("connected") else FROM_HEALTH[row["status"]]
        heartbeat = snapshot.get("heartbeat_ms") or snapshot.get("last_frame_ms")
        detail = {name: value for name, value in snapshot.items() if name not in ("venue", "url", "heartbeat_ms")}
        detail["last_frame_age_s"] = row.get("age_s")
        out.append(entry(venue, "connector", snapshot.get("url"), status,
                         int(heartbeat) if isinstance(heartbeat, (int, float)) else None, detail))
    return out


def dashboard(address: str, pid: int, started_at: int, now: int, relay: dict[str, Any],
              websocket_clients: int) -> dict[str, Any]:
    """This process: it answers, so it is up, unless its live relay runs but has lost its subscription."""
    status: ServiceStatus = "degraded" if relay.get("running") and not relay.get("subscribed") else "up"
    detail = {"pid": pid, "started_at": started_at, "started_at_iso": iso_ms(started_at),
              "uptime_s": round((now - started_at) / 1000, 1), "live_relay": relay,
              "websocket_clients": websocket_clients}
    return entry("dashboard", "dashboard", address, status, now, detail)


def unreported(name: str, kind: str, address: str | None, why: str) -> dict[str, Any]:
    """A component whose reports could not be read (Redis away): nothing is known of it."""
    return entry(name, kind, address, "unknown", None, {"error": why})
