"""`ascep bench pipeline` through the CLI with tiny numbers: two configurations in one run, each with its own
broker, Redis and job, and every figure of each there and plausible (the figures themselves go in the README)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flink_jobs.launcher import python_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_two_configurations_in_one_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ascep.cli", "bench", "pipeline", "--configs", "cross,default",
                           "--ticks", "30000", "--seconds", "3", "--json"],
                          env={**python_env(), "ASCEP_STATE_DIR": str(tmp_path / ".ascep")}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert list(figures["configs"]) == ["cross", "default"], done.stderr[-3000:]
    cross, default = figures["configs"]["cross"], figures["configs"]["default"]
    assert cross["detectors"] == [] and default["detectors"] == ["triangular", "direct", "rules"]
    for config in (cross, default):
        assert config["partitions"] == config["parallelism"] == 1 and config["execution_mode"] == "thread"
        assert config["catch_up_ticks"] > 0 and config["catch_up_ticks_per_s"] > 1_000
        assert 100 < config["rss_mb_after_catch_up"] < 20_000 and 100 < config["rss_mb_after_live"] < 20_000
        [live] = config["live"]
        assert live["rate"] == 10_000
        assert 5_000 < live["produced_ticks_per_s"] <= 10_500 and 0 < live["live_ticks_per_s"] <= 10_500
        assert live["produced"] > 15_000 and live["behind_after_drain_timeout"] == 0 and live["drain_s"] < 10
        assert live["signals_opened_live"] >= 1, "a planted opportunity every 0.5 s"
        assert 0 < live["latency_p50_ms"] <= live["latency_p99_ms"] < 10_000
        assert isinstance(live["kept_up"], bool)
        assert config["command"].startswith("ascep bench pipeline --configs ")
    assert figures["ratios"]["default/cross"] == pytest.approx(
        default["catch_up_ticks_per_s"] / cross["catch_up_ticks_per_s"], abs=0.01)
    assert "ASCEP_JOB__DETECTORS='[]'" in cross["job_env"]
