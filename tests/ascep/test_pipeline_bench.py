"""`ascep bench pipeline`'s own arithmetic and options: named configurations, ratios, the rerun command."""
import argparse

import pytest

from ascep.benchmarks import pipeline
from ascep.benchmarks.pipeline import CONFIGS, job_env, ratios, rerun_command, table


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    pipeline.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_are_cross_then_default_at_ten_thousand_ticks_a_second():
    args = parse()
    assert args.configs == ["cross", "default"] and args.rates == [10_000] and args.flink is None


def test_an_unknown_configuration_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        parse("--configs", "cross,turbo")
    assert "unknown configuration(s) turbo; known: cross, default" in capsys.readouterr().err


def test_rates_are_a_comma_separated_list():
    assert parse("--rates", "10000,50_000").rates == [10_000, 50_000]
    with pytest.raises(SystemExit):
        parse("--rates", "fast")


def test_the_job_gets_each_configuration_through_its_settings_variables():
    assert job_env(CONFIGS["process-p2"], ["triangular", "direct", "rules"]) == {
        "ASCEP_JOB__DETECTORS": '["triangular", "direct", "rules"]', "ASCEP_JOB__PARTITIONS": "2",
        "ASCEP_JOB__PARALLELISM": "2", "ASCEP_JOB__EXECUTION_MODE": "process"}
    assert job_env(CONFIGS["cross"], ["rules"])["ASCEP_JOB__DETECTORS"] == "[]"


def test_ratios_over_cross_and_process_mode_over_thread_mode():
    configs = {"cross": {"catch_up_ticks_per_s": 100_000.0}, "default": {"catch_up_ticks_per_s": 25_000.0},
               "process-p2": {"catch_up_ticks_per_s": 40_000.0}, "default-p4": {"error": "it died"}}
    assert ratios(configs) == {"default/cross": 0.25, "process-p2/cross": 0.4, "process-p2/default": 1.6}
    assert ratios({"default": {"catch_up_ticks_per_s": 1.0}}) == {}


def test_each_configuration_can_be_rerun_alone():
    args = parse("--configs", "cross,process-p2", "--ticks", "200000", "--seconds", "15", "--rates", "10000,50000",
                 "--flink", "local")
    assert rerun_command("process-p2", args) == ("ascep bench pipeline --configs process-p2 --ticks 200000 "
                                                 "--seconds 15 --rates 10000,50000 --flink local")


def test_the_table_shows_every_configuration_and_its_failures():
    live = {"rate": 10_000, "produced": 150_000, "produced_ticks_per_s": 9_990.0, "live_ticks_per_s": 9_950.0,
            "drain_s": 0.1, "behind_after_drain_timeout": 0, "signals_opened_live": 8, "latency_p50_ms": 30.0,
            "latency_p99_ms": 90.0, "kept_up": True}
    figures = {"configs": {"cross": {"detectors": [], "partitions": 1, "parallelism": 1, "execution_mode": "thread",
                                     "catch_up_ticks_per_s": 90_000.0, "rss_mb_after_catch_up": 900.0,
                                     "rss_mb_after_live": 910.0, "live": [live], "command": "ascep bench x",
                                     "job_env": "ASCEP_JOB__DETECTORS='[]'"},
                           "default": {"error": "the Flink job exited with 1", "command": "ascep bench y"}},
               "ratios": {}, "ticks": 1, "seconds": 15.0, "flink": "minicluster", "cores": 2}
    text = table(figures)
    assert "(cross only)" in text and "90,000.0" in text and "9,950.0" in text and "yes" in text
    assert "default FAILED: the Flink job exited with 1" in text and "ascep bench y" in text
