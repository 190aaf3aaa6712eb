"""Kafka client security, per mode: what librdkafka is told, that librdkafka takes it, and the errors of bad settings.

The embedded Tansu broker speaks plaintext only, so TLS and SASL are checked here as configuration, through
real librdkafka clients, and the MSK IAM token through AWS's real signer (signing needs no AWS call).
"""
from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError

from ascep.services import free_port
from clients.kafka import KafkaUnavailable, MskIamToken, create_topics, kafka_config
from core.settings import KafkaSecuritySettings, Settings

SCRAM = {"protocol": "sasl_ssl", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "ascep",
         "sasl_password": "s3cret-pw"}
IAM = {"protocol": "SASL_SSL", "sasl_mechanism": "oauthbearer", "msk_iam_region": "eu-west-1"}


def from_env(monkeypatch, **values: str) -> Settings:
    for name, value in values.items():
        monkeypatch.setenv(f"ASCEP_KAFKA_SECURITY__{name.upper()}", value)
    return Settings()


def clients_accept(config: dict) -> None:
    """librdkafka itself checks every key and value when a client is made."""
    for make in (Producer, AdminClient, lambda c: Consumer({**c, "group.id": "config-check"})):
        make(config)


def test_plaintext_is_the_default_and_options_follow():
    config = kafka_config("b:9092", Settings().kafka_security, {"linger.ms": 20})
    assert config == {"bootstrap.servers": "b:9092", "security.protocol": "PLAINTEXT", "linger.ms": 20}
    clients_accept(config)


def test_tls_with_a_private_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not read until a connection is made")
    config = kafka_config("b-1:9094,b-2:9094", KafkaSecuritySettings(protocol="ssl", ca_file=ca))
    assert config == {"bootstrap.servers": "b-1:9094,b-2:9094", "security.protocol": "SSL",
                      "ssl.ca.location": str(ca)}
    with pytest.raises(ValueError, match=r"ASCEP_KAFKA_SECURITY__CA_FILE names .*gone.pem'?, which is not a file"):
        kafka_config("b:9094", KafkaSecuritySettings(protocol="ssl", ca_file=tmp_path / "gone.pem"))


def test_scram_from_the_environment(monkeypatch):
    settings = from_env(monkeypatch, **SCRAM)
    config = kafka_config("b:9096", settings.kafka_security)
    assert config == {"bootstrap.servers": "b:9096", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                      "sasl.username": "ascep", "sasl.password": "s3cret-pw"}
    clients_accept(config)
    assert "s3cret-pw" not in json.dumps(settings.model_dump(mode="json"))  # what `ascep config` prints


def test_msk_iam_signs_a_token_for_the_region(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE12")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    settings = from_env(monkeypatch, **IAM)
    config = kafka_config("b:9098", settings.kafka_security)
    assert (config["security.protocol"], config["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    assert isinstance(config["oauth_cb"], MskIamToken)
    token, expires_at = config["oauth_cb"]("")
    url = urlsplit(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.netloc == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEEXAMPLE12/")
    assert time.time() < expires_at < time.time() + 3600  # seconds, as librdkafka wants them
    clients_accept(config)


def test_msk_iam_without_the_signer_fails_at_once_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "aws_msk_iam_sasl_signer", None)  # as if the extra `aws` were not installed
    with pytest.raises(ValueError, match=r"needs the package aws-msk-iam-sasl-signer-python: "
                                         r"pip install 'ascep\[aws\]'"):
        kafka_config("b:9098", KafkaSecuritySettings(**IAM))


def test_ascep_config_masks_the_secrets(tmp_path):
    env = {**os.environ, "ASCEP_REDIS": "rediss://:the-token@cache:6379/0", **{
        f"ASCEP_KAFKA_SECURITY__{name.upper()}": value for name, value in SCRAM.items()}}
    printed = subprocess.run([sys.executable, "-m", "ascep.cli", "config"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    shown = json.loads(printed.stdout)
    assert shown["redis"] == "rediss://:***@cache:6379/0"
    assert shown["kafka_security"]["sasl_password"] == "**********"
    assert "the-token" not in printed.stdout and "s3cret-pw" not in printed.stdout


@pytest.mark.parametrize("values, message", [
    ({"protocol": "tls"}, "ASCEP_KAFKA_SECURITY__PROTOCOL='tls' is not one of plaintext, ssl, sasl_ssl"),
    ({"protocol": "sasl_ssl"}, "ASCEP_KAFKA_SECURITY__PROTOCOL=sasl_ssl needs ASCEP_KAFKA_SECURITY__SASL_MECHANISM"),
    ({"protocol": "sasl_ssl", "sasl_mechanism": "PLAIN"}, "ASCEP_KAFKA_SECURITY__SASL_MECHANISM='PLAIN' is not one"),
    ({"protocol": "sasl_ssl", "sasl_mechanism": "OAUTHBEARER"},
     "OAUTHBEARER needs ASCEP_KAFKA_SECURITY__MSK_IAM_REGION"),
    ({**SCRAM, "sasl_password": ""}, "SCRAM-SHA-512 needs ASCEP_KAFKA_SECURITY__SASL_PASSWORD"),
    ({"protocol": "ssl", "sasl_mechanism": "SCRAM-SHA-512"}, "PROTOCOL is ssl, not sasl_ssl"),
    ({**IAM, "sasl_password": "s3cret-pw"}, "SASL_PASSWORD are for SCRAM-SHA-512 only"),
    ({"ca_file": "/ca.pem"}, "CA_FILE is set but ASCEP_KAFKA_SECURITY__PROTOCOL is plaintext"),
])
def test_bad_settings_name_the_variable_and_hide_the_password(monkeypatch, values, message):
    with pytest.raises(ValidationError) as caught:
        from_env(monkeypatch, **values)
    assert message in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_caller_options_cannot_undo_the_security():
    with pytest.raises(ValueError, match=r"\['security.protocol'\] are set from ASCEP_KAFKA_SECURITY"):
        kafka_config("b:9092", KafkaSecuritySettings(), {"security.protocol": "PLAINTEXT"})


@pytest.mark.integration
def test_tls_against_a_plaintext_broker_fails_clearly(kafka):
    started = time.monotonic()
    security = KafkaSecuritySettings(**SCRAM)
    with pytest.raises(KafkaUnavailable, match=r"PROTOCOL=sasl_ssl, SASL SCRAM-SHA-512\): .*(transport|timed out).*"
                                           r"Does the port speak that protocol\?"):
        create_topics(kafka, security, {"never-made": 1})
    assert time.monotonic() - started < 20  # an error, not a hang


def test_the_embedded_broker_is_not_given_a_secured_client(tmp_path):
    env = {**os.environ, "ASCEP_STATE_DIR": str(tmp_path), "ASCEP_KAFKA_SECURITY__PROTOCOL": "ssl"}
    env.pop("ASCEP_KAFKA", None)
    result = subprocess.run([sys.executable, "-m", "ascep.cli", "up", "--port", str(free_port())], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "ASCEP_KAFKA_SECURITY__PROTOCOL=ssl but no Kafka is given" in result.stderr


def test_every_kafka_client_of_the_product_is_built_by_kafka_config():
    """A client made from a config of its own would connect in plaintext whatever the settings say."""
    root = Path(__file__).resolve().parents[2]
    stray = []
    for package in ("core", "lake", "clients", "ingestion", "flink_jobs", "dashboard", "ascep"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                name = getattr(node, "func", None)
                name = getattr(name, "id", getattr(name, "attr", None))
                if isinstance(node, ast.Call) and name in ("Producer", "Consumer", "AdminClient"):
                    made_by = node.args[0] if node.args else None
                    if not (isinstance(made_by, ast.Call) and getattr(made_by.func, "id", None) == "kafka_config"):
                        stray.append(f"{path.relative_to(root)}:{node.lineno}")
    assert stray == []
