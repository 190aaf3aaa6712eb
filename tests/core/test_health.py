"""The health decision: a dead pipeline must not look healthy, and a healthy one must not look dead."""
from __future__ import annotations

import pytest

from core.health import Checkpoint, Connector, HealthFacts, assess
from core.progress import Progress
from core.settings import HealthSettings

NOW = 1_800_000_000_000
LIMITS = HealthSettings(stall_after_s=15, lake_stall_after_s=60, max_data_age_s=60, max_checkpoint_age_s=120)


def facts(**changes) -> HealthFacts:
    """A stack that keeps up: every reader at the end, fresh ticks, a connected feed, a recent checkpoint."""
    base = dict(
        now=NOW,
        progress={("read", "ticks", 0): Progress(500, NOW - 200, NOW - 100),
                  ("lake", "ticks", 0): Progress(480, NOW - 4_000, NOW - 300),
                  ("lake", "signals", 0): Progress(7, NOW - 4_000, NOW - 300),
                  ("rules", "rules", 0): Progress(2, NOW - 600_000, NOW - 500)},
        ends={("ticks", 0): 500, ("signals", 0): 7},
        newest_tick={"binance": NOW - 300, "kraken": NOW - 2_000},
        connectors={"binance": Connector(True, NOW - 300)},
        checkpoints_known=True, checkpoint=Checkpoint(41, NOW - 1_500), job_started_at=NOW - 600_000)
    return HealthFacts(**{**base, **changes})


def test_a_stack_that_keeps_up_is_ok_with_every_component_reported():
    result = assess(facts(), LIMITS)
    assert (result.status, result.reasons) == ("ok", [])
    readers = {(r["stage"], r["topic"]): r for r in result.components["job"]["readers"]}
    assert readers["read", "ticks"]["lag"] == 0 and readers["lake", "ticks"]["lag"] == 20
    assert readers["rules", "rules"]["lag"] is None  # no end reported for rules: judged by its polls only
    assert result.components["venues"]["kraken"] == {"newest_tick": NOW - 2_000,
                                                     "newest_tick_iso": "2027-01-15T07:59:58.000Z",
                                                     "age_s": 2.0, "status": "ok"}
    assert result.components["checkpoint"] == {"status": "ok", "id": 41, "age_s": 1.5}
    assert result.components["connectors"]["binance"] == {"connected": True, "last_frame": NOW - 300,
                                                          "last_frame_iso": "2027-01-15T07:59:59.700Z",
                                                          "age_s": 0.3, "status": "ok"}
    assert (result.components["server_time"], result.components["server_time_iso"]) == (
        NOW, "2027-01-15T08:00:00.000Z")
    assert result.components["job"]["started_at_iso"] == "2027-01-15T07:50:00.000Z"


def test_a_reader_that_stopped_moving_while_input_waits_is_down():
    stalled = facts(progress={**facts().progress, ("read", "ticks", 0): Progress(400, NOW - 16_000, NOW - 50)},
                    ends={("ticks", 0): 650, ("signals", 0): 7})
    result = assess(stalled, LIMITS)
    assert result.status == "down"
    assert result.reasons == ["the tick reader of ticks:0 is stalled: 250 records wait and it has not moved for 16 s"]
    assert result.components["job"]["status"] == "down"


def test_an_idle_reader_at_the_end_is_not_stalled():
    idle = facts(progress={**facts().progress, ("read", "ticks", 0): Progress(500, NOW - 3_600_000, NOW - 200)},
                 newest_tick={})
    assert assess(idle, LIMITS).status == "ok"


def test_a_reader_that_no_longer_polls_is_down_even_without_input():
    frozen = facts(progress={**facts().progress, ("read", "ticks", 0): Progress(500, NOW - 30_000, NOW - 20_000)})
    result = assess(frozen, LIMITS)
    assert result.status == "down" and result.reasons == ["the tick reader of ticks:0 has not polled for 20 s"]


def test_a_lagging_lake_is_degraded_with_its_own_limit():
    behind = facts(progress={**facts().progress, ("lake", "ticks", 0): Progress(100, NOW - 59_000, NOW - 100)})
    assert assess(behind, LIMITS).status == "ok"
    behind = facts(progress={**facts().progress, ("lake", "ticks", 0): Progress(100, NOW - 61_000, NOW - 100)})
    result = assess(behind, LIMITS)
    assert result.status == "degraded" and result.reasons[0].startswith("the lake archiver of ticks:0 is stalled")


def test_input_the_job_never_reported_reading_is_down_once_the_job_has_had_time():
    unread = facts(progress={}, ends={("ticks", 0): 10})
    result = assess(unread, LIMITS)
    assert result.status == "down"
    assert "the tick reader of ticks:0 has not reported since the job started 600 s ago" in result.reasons
    assert assess(facts(progress={}, ends={("ticks", 0): 10}, job_started_at=NOW - 5_000), LIMITS).status == "ok"


def test_a_job_without_a_lake_is_not_missing_its_archivers():
    progress = {key: p for key, p in facts().progress.items() if key[0] != "lake"}
    result = assess(facts(progress=progress), LIMITS)
    assert result.status == "ok"
    assert {r["stage"] for r in result.components["job"]["readers"]} == {"read", "rules"}
    unread_signals = assess(facts(progress={**facts().progress}, ends={("ticks", 0): 500, ("signals", 1): 3}), LIMITS)
    assert unread_signals.reasons == ["the lake archiver of signals:1 has not reported since the job started 600 s ago"]


def test_old_data_and_a_silent_connector_are_degraded():
    result = assess(facts(newest_tick={"binance": NOW - 61_000},
                          connectors={"binance": Connector(True, NOW - 90_000), "kraken": Connector(False, None)}),
                    LIMITS)
    assert result.status == "degraded"
    assert result.reasons == ["the newest tick of binance is 61 s old", "the binance connector got no frame for 90 s",
                              "the kraken connector is disconnected"]


def test_the_worst_problem_sets_the_status_and_every_reason_is_kept():
    result = assess(facts(newest_tick={"binance": NOW - 61_000},
                          progress={**facts().progress, ("read", "ticks", 0): Progress(1, NOW - 20_000, NOW - 20_000)}),
                    LIMITS)
    assert result.status == "down" and len(result.reasons) == 2


@pytest.mark.parametrize(("checkpoint", "started", "status"), [
    (Checkpoint(3, NOW - 121_000), NOW - 600_000, "degraded"),
    (None, NOW - 121_000, "degraded"),
    (Checkpoint(3, NOW - 3_600_000), NOW - 10_000, "ok"),  # an earlier run's: this job has not had time yet
    (None, None, "ok"),  # no job running: nothing to judge
])
def test_checkpoints_must_keep_completing_while_the_job_runs(checkpoint, started, status):
    assert assess(facts(checkpoint=checkpoint, job_started_at=started), LIMITS).status == status


def test_a_checkpoint_folder_nobody_named_is_unknown():
    assert assess(facts(checkpoints_known=False), LIMITS).components["checkpoint"] == {"status": "unknown"}
