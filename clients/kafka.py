"""librdkafka configuration for every Kafka client of the product, from settings.kafka_security.

Each producer, consumer and admin client is built from kafka_config(), so the job's readers and
writers, the connectors, `ascep rules` and the stack's topic creation all authenticate alike:
plaintext, TLS, SASL/SCRAM over TLS, or MSK IAM (SASL OAUTHBEARER over TLS, tokens signed with the
process's AWS credentials by aws-msk-iam-sasl-signer-python, the optional extra `aws`).
The job's operators carry the settings model, not a config: they build their clients where they run.
"""
from __future__ import annotations

from typing import Any

from core.settings import KAFKA_SECURITY_ENV, KafkaSecuritySettings

# The embedded Tansu broker (`ascep up` without ASCEP_KAFKA, the benchmarks, the tests) speaks plaintext only.
EMBEDDED = KafkaSecuritySettings()
PROTOCOLS = {"plaintext": "PLAINTEXT", "ssl": "SSL", "sasl_ssl": "SASL_SSL"}
# What kafka_config sets from the security settings: a caller's options may not change them.
SECURITY_KEYS = frozenset({"bootstrap.servers", "security.protocol", "ssl.ca.location", "sasl.mechanism",
                           "sasl.username", "sasl.password", "oauth_cb"})


class KafkaSecurityError(ValueError):
    """The security settings cannot make a working client here; the message names the setting."""


class MskIamToken:
    """librdkafka's oauth_cb for MSK IAM: a token for `region`, signed with the credentials the AWS SDK finds
    (the task's or application's role on AWS). librdkafka calls it again before the token expires."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.provider = msk_token_provider()

    def __call__(self, _oauthbearer_config: str) -> tuple[str, float]:
        token, expiry_ms = self.provider.generate_auth_token(self.region)
        return token, expiry_ms / 1000


def msk_token_provider() -> Any:
    """aws_msk_iam_sasl_signer's provider, imported only when MSK IAM is configured: only that needs it."""
    try:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    except ImportError:
        raise KafkaSecurityError(
            f"{KAFKA_SECURITY_ENV}SASL_MECHANISM=OAUTHBEARER (MSK IAM) needs the package "
            f"aws-msk-iam-sasl-signer-python: pip install 'ascep[aws]'") from None
    return MSKAuthTokenProvider


def kafka_config(bootstrap: str, security: KafkaSecuritySettings, options: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The configuration of a client of `bootstrap`: the security settings, then the caller's own `options`
    (linger, group, callbacks), which may not override them."""
    clash = sorted(SECURITY_KEYS & set(options or {}))
    if clash:
        raise ValueError(f"client options {clash} are set from {KAFKA_SECURITY_ENV}* and ASCEP_KAFKA only")
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "security.protocol": PROTOCOLS[security.protocol]}
    if security.ca_file is not None:
        if not security.ca_file.is_file():
            raise KafkaSecurityError(f"{KAFKA_SECURITY_ENV}CA_FILE names {str(security.ca_file)!r}, "
                                     f"which is not a file")
        config["ssl.ca.location"] = str(security.ca_file)
    if security.sasl_mechanism == "SCRAM-SHA-512":
        assert security.sasl_password is not None  # the settings' validator saw to it
        config.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": security.sasl_username,
                       "sasl.password": security.sasl_password.get_secret_value()})
    elif security.sasl_mechanism == "OAUTHBEARER":
        assert security.msk_iam_region is not None
        config.update({"sasl.mechanism": "OAUTHBEARER", "oauth_cb": MskIamToken(security.msk_iam_region)})
    return {**config, **(options or {})}


def describe(bootstrap: str, security: KafkaSecuritySettings) -> str:
    """Where and how, for error messages: a client that cannot connect says which protocol it tried."""
    return f"{bootstrap} ({KAFKA_SECURITY_ENV}PROTOCOL={security.protocol}" + (
        f", SASL {security.sasl_mechanism})" if security.sasl_mechanism else ")")


def unreachable(bootstrap: str, security: KafkaSecuritySettings, reason: str) -> str:
    """The error of a client that got no answer: librdkafka says only "transport failure" when the port
    speaks another protocol, so the message says which one each MSK port speaks."""
    return (f"Kafka at {describe(bootstrap, security)}: {reason}. Does the port speak that protocol? MSK's: "
            f"9092 plaintext, 9094 ssl, 9096 sasl_ssl SCRAM-SHA-512, 9098 sasl_ssl OAUTHBEARER (IAM)")


class KafkaUnavailable(RuntimeError):
    """No answer from the broker, or it refused a topic: the message says which broker and why."""


def create_topics(bootstrap: str, security: KafkaSecuritySettings, partitions: dict[str, int],
                  compacted: tuple[str, ...] = (), options: dict[str, Any] | None = None) -> None:
    """Create topics that do not exist yet; an existing topic is left as it is. `options`: the admin client's.

    Replication is the broker's default.replication.factor (-1, KIP-464): 1 on the embedded broker, 3 on a
    three-zone MSK cluster, so topics made by `ascep prepare` survive a broker's loss where the cluster allows."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka_config(bootstrap, security, options))
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise KafkaUnavailable(unreachable(bootstrap, security, exc.args[0].str())) from None
    wanted = [NewTopic(name, num_partitions=n, replication_factor=-1,
                       config={"cleanup.policy": "compact"} if name in compacted else {})
              for name, n in partitions.items() if name not in existing]
    for name, fut in admin.create_topics(wanted, operation_timeout=10).items() if wanted else []:
        try:
            fut.result(15)
        except Exception as exc:  # noqa: BLE001 - name the topic in the error
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise KafkaUnavailable(f"could not create topic {name!r} on {bootstrap}: {exc}") from exc
