"""The maintenance Lambda's `lag` action: the records the job has not read yet, from what its readers and the
producers report to a real Redis, published to CloudWatch. The Redis URL comes from a Secrets Manager secret;
Secrets Manager and CloudWatch are moto's server (the session's S3 server answers them too)."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from core.contracts.redis_keys import progress_field
from core.progress import Progress, TopicEnds
from flink_jobs.sinks.redis_sink import RedisSink
from tests.maintenance.runtime import LambdaContext

NOW = 1_763_700_000_000


@pytest.fixture
def lag_redis(redis_url):
    """A database of the session's Redis for these tests alone, emptied."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    sink = RedisSink(url)
    sink.client.flushdb()
    yield url, sink
    sink.client.flushdb()


def aws(s3, service: str):
    return boto3.client(service, endpoint_url=s3.endpoint, region_name="us-east-1")


def lag_env(monkeypatch, s3, secret_value: str) -> tuple[str, str]:
    """A new secret holding `secret_value` and a new namespace, given to the handler: (secret ARN, namespace)."""
    arn = aws(s3, "secretsmanager").create_secret(Name=f"ascep-{uuid.uuid4().hex[:8]}/redis-url",
                                                  SecretString=secret_value)["ARN"]
    namespace = f"ascep-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", s3.endpoint)
    monkeypatch.setenv("MAINTENANCE_REDIS_URL_SECRET", arn)
    monkeypatch.setenv("MAINTENANCE_METRIC_NAMESPACE", namespace)
    return arn, namespace


def report(sink: RedisSink, places: dict[tuple[str, str, int], int], delivered: dict[tuple[str, int], int]) -> None:
    """As the job's readers report where they are, and the producers the offsets their deliveries got."""
    for (stage, topic, partition), next_offset in places.items():
        sink.report_progress(progress_field(stage, topic, partition), Progress(next_offset, NOW, NOW).to_json())
    ends = TopicEnds()
    for (topic, partition), last_offset in delivered.items():
        ends.delivered(topic, partition, last_offset)
    sink.raise_topic_ends(ends.take())


def published(s3, namespace: str, stage: str) -> list[tuple[float, str]]:
    found = aws(s3, "cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName="ConsumerLag", Dimensions=[{"Name": "Stage", "Value": stage}],
        Statistics=["Maximum"], Period=60, StartTime=datetime.now(UTC) - timedelta(minutes=5),
        EndTime=datetime.now(UTC) + timedelta(minutes=5))
    return [(p["Maximum"], p["Unit"]) for p in found["Datapoints"]]


def test_the_records_the_job_has_not_read_reach_cloudwatch_by_stage(maintenance, s3, lag_redis, monkeypatch):
    url, sink = lag_redis
    _, namespace = lag_env(monkeypatch, s3, url)
    # ticks:0 holds offsets 0..99 and ticks:1 0..24: the tick reader is at 40 and 10, 60 + 15 unread; the lake
    # archivers at 30 and 10 of ticks and 2 of signals (0..4), 70 + 15 + 3; the rules reader has no reported end
    report(sink, {("read", "ticks", 0): 40, ("read", "ticks", 1): 10, ("lake", "ticks", 0): 30,
                  ("lake", "ticks", 1): 10, ("lake", "signals", 0): 2, ("rules", "rules", 0): 3},
           {("ticks", 0): 99, ("ticks", 1): 24, ("signals", 0): 4})
    assert maintenance.handler({"actions": ["lag"]}, LambdaContext()) == \
        {"lag": {"unread": {"read": 75, "lake": 88}, "not_published": {}}}
    assert published(s3, namespace, "read") == [(75.0, "Count")]
    assert published(s3, namespace, "lake") == [(88.0, "Count")]


def test_no_progress_in_redis_publishes_nothing_and_says_why(maintenance, s3, lag_redis, monkeypatch, caplog):
    url, sink = lag_redis
    _, namespace = lag_env(monkeypatch, s3, url)
    report(sink, {}, {("ticks", 0): 99})  # producers ran, the job never reported
    with caplog.at_level(logging.WARNING, logger="maintenance"):
        result = maintenance.handler({"actions": ["lag"]}, LambdaContext())["lag"]
    assert result["unread"] == {}
    assert result["not_published"]["read"] == "stage read reported no place on ticks in ascep:progress"
    (record,) = [r for r in caplog.records if r.getMessage() == "consumer lag not published for some stages"]
    assert record.fields["why"] == result["not_published"] and record.fields["progress_entries"] == 0
    assert aws(s3, "cloudwatch").list_metrics(Namespace=namespace)["Metrics"] == []


def test_a_bad_secret_is_an_error_naming_the_variable_and_not_the_token(maintenance, s3, monkeypatch):
    token = "a-token-nobody-may-read-in-a-log"
    arn, _ = lag_env(monkeypatch, s3, f'{{"auth_token": "{token}"}}')  # the token's secret, not the URL's
    with pytest.raises(RuntimeError) as failed:
        maintenance.handler({"actions": ["lag"]}, LambdaContext())
    assert f"lag: ValueError: MAINTENANCE_REDIS_URL_SECRET={arn}: the secret's value is not a redis:// or " \
           f"rediss:// URL" in str(failed.value)
    assert token not in str(failed.value)
    missing = arn.replace("redis-url", "no-such-secret")
    monkeypatch.setenv("MAINTENANCE_REDIS_URL_SECRET", missing)
    with pytest.raises(RuntimeError, match=f"MAINTENANCE_REDIS_URL_SECRET={missing}: Secrets Manager does not "
                                           f"give its value: .*ResourceNotFoundException"):
        maintenance.handler({"actions": ["lag"]}, LambdaContext())


def test_the_url_is_read_once_per_container_until_redis_refuses_its_token(maintenance, s3, lag_redis, monkeypatch):
    url, sink = lag_redis
    report(sink, {("read", "ticks", 0): 5}, {("ticks", 0): 9})
    wrong = url.replace("redis://", "redis://:an-old-token@")
    arn, _ = lag_env(monkeypatch, s3, wrong)
    with pytest.raises(RuntimeError, match=r"lag: RuntimeError: Redis at redis://:\*\*\*@127.0.0.1:\d+/7 refused "
                                           r"the token of MAINTENANCE_REDIS_URL_SECRET="):
        maintenance.handler({"actions": ["lag"]}, LambdaContext())
    secrets = aws(s3, "secretsmanager")
    secrets.put_secret_value(SecretId=arn, SecretString=url)  # rotated: the failed run forgot the old URL
    assert maintenance.handler({"actions": ["lag"]}, LambdaContext())["lag"]["unread"] == {"read": 5}
    secrets.put_secret_value(SecretId=arn, SecretString="not a URL")  # not read again while the URL works
    assert maintenance.handler({"actions": ["lag"]}, LambdaContext())["lag"]["unread"] == {"read": 5}
