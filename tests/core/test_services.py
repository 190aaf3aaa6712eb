"""The entries of /api/services, from probes and from the facts /api/health judges."""
from __future__ import annotations

from core import services
from core.health import Connector, HealthFacts, assess
from core.progress import Progress
from core.services import Probe
from core.settings import HealthSettings

NOW = 1_763_700_000_000
LIMITS = HealthSettings()


def judged(**facts) -> tuple[HealthFacts, object]:
    found = HealthFacts(now=NOW, **facts)
    return found, assess(found, LIMITS)


def test_a_probe_that_could_not_be_made_is_unknown_one_that_failed_down():
    assert services.probed("broker", "kafka", Probe(None, None, error="no kafka address"))["status"] == "unknown"
    down = services.probed("broker", "kafka", Probe("k:9092", False, NOW - 5_000, error="transport failure"))
    assert (down["status"], down["last_heartbeat"], down["detail"]) == ("down", NOW - 5_000,
                                                                        {"error": "transport failure"})
    up = services.probed("redis", "redis", Probe("redis://r:6379/0", True, NOW, {"ping_ms": 0.3}))
    assert (up["status"], up["last_heartbeat_iso"]) == ("up", "2025-11-21T04:40:00.000Z")


def test_the_job_is_as_healthy_as_its_readers_and_beats_with_their_polls():
    facts, verdict = judged(job_started_at=NOW - 60_000,
                            progress={("read", "ticks", 0): Progress(10, NOW - 1_000, NOW - 300),
                                      ("rules", "rules", 0): Progress(2, NOW - 9_000, NOW - 100),
                                      ("lake", "ticks", 0): Progress(10, NOW - 1_000, NOW - 50)},
                            ends={("ticks", 0): 10})
    job = services.job(facts, verdict, None)
    assert (job["status"], job["last_heartbeat"]) == ("up", NOW - 100)  # the lake's archiver is not the job's beat
    assert [row["stage"] for row in job["detail"]["readers"]] == ["read", "rules"]


def test_a_stalled_reader_puts_the_job_down_and_a_job_never_heard_of_is_unknown():
    facts, verdict = judged(job_started_at=NOW - 60_000,
                            progress={("read", "ticks", 0): Progress(5, NOW - 30_000, NOW)}, ends={("ticks", 0): 9})
    assert services.job(facts, verdict, None)["status"] == "down"
    facts, verdict = judged()
    assert services.job(facts, verdict, None)["status"] == "unknown"


def test_an_old_checkpoint_degrades_a_job_whose_readers_are_fine():
    facts, verdict = judged(job_started_at=NOW - 600_000, checkpoints_known=True,
                            progress={("read", "ticks", 0): Progress(1, NOW, NOW)})
    assert services.job(facts, verdict, None)["status"] == "degraded"


def test_the_lake_is_down_when_it_does_not_answer_and_degraded_when_its_archivers_lag():
    facts, verdict = judged(job_started_at=NOW - 600_000, ends={("ticks", 0): 100},
                            progress={("lake", "ticks", 0): Progress(40, NOW - 120_000, NOW)})
    answered = Probe("/lake", True, NOW)
    lagging = services.lake(facts, verdict, answered, ("/lake/_ranges/ticks/x/p000/o0.json", NOW - 120_000))
    assert lagging["status"] == "degraded" and lagging["detail"]["newest_write"]["at"] == NOW - 120_000
    away = services.lake(facts, verdict, Probe("s3://b/l", False, error="lake unavailable: timeout"), None)
    assert away["status"] == "down" and away["detail"]["error"] == "lake unavailable: timeout"
    facts, verdict = judged()
    assert services.lake(facts, verdict, answered, None)["status"] == "up"  # no job archives into it: still there


def test_a_connector_is_down_while_disconnected_degraded_while_quiet():
    snapshots = [{"venue": "kraken", "connected": 1, "last_frame_ms": NOW - 1_000, "heartbeat_ms": NOW - 400,
                  "url": "wss://k", "ticks": 5},
                 {"venue": "okx", "connected": 1, "last_frame_ms": NOW - 600_000, "heartbeat_ms": NOW - 300},
                 {"venue": "coinbase", "connected": 0, "last_frame_ms": NOW - 1_000, "heartbeat_ms": NOW - 200}]
    facts, verdict = judged(connectors={s["venue"]: Connector(bool(s["connected"]), s["last_frame_ms"])
                                        for s in snapshots})
    found = {entry["name"]: entry for entry in services.connectors(facts, verdict, snapshots)}
    assert {name: entry["status"] for name, entry in found.items()} == {"kraken": "up", "okx": "degraded",
                                                                        "coinbase": "down"}
    kraken = found["kraken"]
    assert (kraken["address"], kraken["last_heartbeat"]) == ("wss://k", NOW - 400)
    assert kraken["detail"] == {"connected": 1, "last_frame_ms": NOW - 1_000, "ticks": 5, "last_frame_age_s": 1.0}


def test_the_dashboard_is_degraded_only_while_its_relay_has_lost_redis():
    relay = {"running": True, "subscribed": True, "relayed": 3, "skipped": 0}
    entry = services.dashboard("http://127.0.0.1:8000", 42, NOW - 90_000, NOW, relay, 2)
    assert (entry["status"], entry["detail"]["uptime_s"], entry["detail"]["websocket_clients"]) == ("up", 90.0, 2)
    assert services.dashboard("http://h:1", 1, NOW, NOW, {**relay, "subscribed": False}, 0)["status"] == "degraded"
    assert services.dashboard("http://h:1", 1, NOW, NOW, {"running": False, "subscribed": False}, 0)["status"] == "up"
