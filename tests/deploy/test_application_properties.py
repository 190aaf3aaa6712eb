"""Managed Flink's application properties become settings: the `ascep` group, by environment variable name."""
from __future__ import annotations

import json

import pytest

from core.settings import Settings, UnknownSetting, check_env_name
from flink_jobs.application import PROPERTIES_ENV, apply_properties


def properties_file(tmp_path, ascep: dict) -> str:
    path = tmp_path / "application_properties.json"
    path.write_text(json.dumps([
        {"PropertyGroupId": "kinesis.analytics.flink.run.options",
         "PropertyMap": {"python": "ascep_job.py", "pyFiles": "lib/"}},
        {"PropertyGroupId": "ascep", "PropertyMap": ascep}]))
    return str(path)


def settings_after(monkeypatch, environ: dict[str, str]) -> Settings:
    """The settings a process with `environ` (after apply_properties) would load."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_group_is_applied_as_environment_variables_and_a_real_one_wins(tmp_path, monkeypatch):
    path = properties_file(tmp_path, {"ASCEP_KAFKA": "b-1:9098", "ASCEP_REDIS": "rediss://:t@cache:6379/0",
                                      "ASCEP_JOB__DETECTORS": '["rules"]', "ASCEP_KAFKA_SECURITY__PROTOCOL": "sasl_ssl",
                                      "ASCEP_KAFKA_SECURITY__SASL_MECHANISM": "OAUTHBEARER",
                                      "ASCEP_KAFKA_SECURITY__MSK_IAM_REGION": "eu-west-1",
                                      "ASCEP_ARBITRAGE__TAKER_FEES_BPS__KRAKEN": "25"})
    environ = {PROPERTIES_ENV: path, "ASCEP_REDIS": "redis://from-the-environment:6379/0"}
    assert str(apply_properties(environ)) == path
    settings = settings_after(monkeypatch, environ)
    assert (settings.kafka, settings.redis) == ("b-1:9098", "redis://from-the-environment:6379/0")
    assert settings.job.detectors == ["rules"]
    assert settings.kafka_security.msk_iam_region == "eu-west-1"
    assert settings.arbitrage.taker_fees_bps["kraken"] == 25


def test_an_unknown_key_is_an_error_naming_it(tmp_path):
    path = properties_file(tmp_path, {"ASCEP_KAFKA": "b:9092", "ASCEP_JOB__PARTITONS": "4"})
    with pytest.raises(UnknownSetting, match="ASCEP_JOB__PARTITONS: 'partitons' is not a setting of job"):
        apply_properties({PROPERTIES_ENV: path})


def test_a_named_file_must_exist_and_be_properties(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{PROPERTIES_ENV} names .*absent.json"):
        apply_properties({PROPERTIES_ENV: str(tmp_path / "absent.json")})
    bad = tmp_path / "bad.json"
    bad.write_text('{"ascep": {}}')
    with pytest.raises(ValueError, match="not application properties"):
        apply_properties({PROPERTIES_ENV: str(bad)})
    numbers = properties_file(tmp_path, {"ASCEP_JOB__PARTITIONS": 4})
    with pytest.raises(ValueError, match="ASCEP_JOB__PARTITIONS of group 'ascep' is 4, not a string"):
        apply_properties({PROPERTIES_ENV: numbers})


@pytest.mark.parametrize("name", ["ASCEP_KAFKA", "ASCEP_REDIS_CA_FILE", "ASCEP_KAFKA_SECURITY__SASL_PASSWORD",
                                  "ASCEP_ARBITRAGE__TRIANGULAR__MIN_PROFIT_BPS", "ascep_job__partitions"])
def test_setting_names(name):
    check_env_name(name)


@pytest.mark.parametrize("name, message", [
    ("KAFKA", r"not a setting \(settings are named ASCEP_\.\.\.\)"),
    ("ASCEP_KAFKA__HOST", "kafka has no field 'host'"),
    ("ASCEP_JOB", "job is a group of settings"),
    ("ASCEP_CONFIG", "'config' is not a setting"),
])
def test_names_that_set_nothing(name, message):
    with pytest.raises(UnknownSetting, match=message):
        check_env_name(name)
