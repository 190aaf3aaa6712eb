"""One `ascep up` per state directory: the lock is exclusive, names its holder, and goes with its file; what the
other commands then take from it, and from the settings."""
from __future__ import annotations

import os

import pytest

from core.settings import Settings, setting_paths, setting_source
from core.stack_file import StateDirInUse, claim_state_dir, clear_stack, running_stack, settings_in_force, write_stack


def test_a_held_state_directory_is_refused_with_its_holder(tmp_path):
    first = claim_state_dir(tmp_path / "state")
    with pytest.raises(StateDirInUse, match=rf"in use by another `ascep up` \(pid {os.getpid()}\)"):
        claim_state_dir(tmp_path / "state")
    first.close()
    claim_state_dir(tmp_path / "state").close()  # free again once the holder is gone


def test_different_state_directories_do_not_block_each_other(tmp_path):
    a, b = claim_state_dir(tmp_path / "a"), claim_state_dir(tmp_path / "b")
    a.close()
    b.close()


def test_each_settings_source_is_named_strongest_first():
    env = {"ASCEP_JOB__PARTITIONS": "4", "ascep_dashboard__port": "9000", "ASCEP_HEALTH": '{"stall_after_s": 3}',
           "ASCEP_ARBITRAGE__TAKER_FEES_BPS__KRAKEN": "5", "ASCEP_RULES": "not json", "HOME": "/root"}
    file_values = {"job": {"partitions": 2, "parallelism": 2}, "lake": "s3://b/p"}
    assert setting_source(("job", "partitions"), env, file_values) == "ASCEP_JOB__PARTITIONS"  # env over the file
    assert setting_source(("job", "parallelism"), env, file_values) == "file"
    assert setting_source(("lake",), env, file_values) == "file"
    assert setting_source(("dashboard", "port"), env, file_values) == "ASCEP_DASHBOARD__PORT"  # any case
    assert setting_source(("health", "stall_after_s"), env, file_values) == "ASCEP_HEALTH"  # a group as JSON
    assert setting_source(("health", "max_data_age_s"), env, file_values) is None  # the JSON does not set it
    assert setting_source(("arbitrage", "taker_fees_bps"), env, file_values) == \
        "ASCEP_ARBITRAGE__TAKER_FEES_BPS__KRAKEN"  # a key of the map
    assert setting_source(("rules", "max_events_held"), env, file_values) is None
    assert setting_source(("kafka",), env, file_values) is None
    assert ("kafka_security", "sasl_password") in setting_paths() and ("arbitrage",) not in setting_paths()


def test_a_running_stack_gives_the_addresses_and_the_port_the_settings_leave_unset(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.upper().startswith("ASCEP_")]:
        monkeypatch.delenv(name)
    state = tmp_path / "state"
    write_stack(state, {"kafka": "127.0.0.1:40123", "redis": "redis://:tok@127.0.0.1:40124/0",
                        "dashboard": "http://127.0.0.1:8102", "lake": "/data/lake", "s3_endpoint": None})
    settings = Settings(state_dir=state, lake="s3://mine/lake")
    env = {"ASCEP_STATE_DIR": str(state), "ASCEP_LAKE": "s3://mine/lake"}
    shown = {row.name: row for row in settings_in_force(settings, env, {}, None, running_stack(state))}
    at_stack = f"running stack {state / 'stack.json'} (pid {os.getpid()})"
    assert shown["kafka"] == ("kafka", "127.0.0.1:40123", at_stack)
    assert shown["redis"] == ("redis", "redis://:***@127.0.0.1:40124/0", at_stack)  # its token masked
    assert shown["dashboard.port"] == ("dashboard.port", 8102, at_stack)
    assert shown["dashboard.host"].value == "127.0.0.1"
    assert shown["lake"] == ("lake", "s3://mine/lake", "env ASCEP_LAKE")  # the settings come before the stack
    assert shown["s3_endpoint"] == ("s3_endpoint", None, "default")
    assert shown["job.partitions"] == ("job.partitions", 1, "default")
    clear_stack(state)
    assert {row.name: row for row in settings_in_force(settings, env, {}, None, running_stack(state))}[
        "dashboard.port"] == ("dashboard.port", 8000, "default")


def test_the_latest_checkpoint_skips_one_flink_deleted_meanwhile(tmp_path):
    """Flink removes old checkpoints as new ones complete: one listed and gone before it is looked at must not
    fail the caller (it made /api/health answer 500 in a 10-minute `ascep up`)."""
    import os

    from core.stack_file import latest_checkpoint, newest_checkpoint

    assert latest_checkpoint(tmp_path) is None
    for n, mtime in ((1, 100), (2, 200)):
        folder = tmp_path / "job" / f"chk-{n}"
        folder.mkdir(parents=True)
        (folder / "_metadata").write_bytes(b"x")
        os.utime(folder / "_metadata", (mtime, mtime))
    gone = tmp_path / "job" / "chk-3"
    gone.mkdir()
    (gone / "_metadata").symlink_to(tmp_path / "deleted")  # listed by the glob, gone when looked at
    assert latest_checkpoint(tmp_path) == tmp_path / "job" / "chk-2"
    assert newest_checkpoint(tmp_path) == (tmp_path / "job" / "chk-2", 200.0)
