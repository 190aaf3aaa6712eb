"""The maintenance Lambda's actions other than compaction, and its settings.

Managed Service for Apache Flink cannot run here (moto has no snapshots, operations or starts for it), so the
restart is tested at the AWS API boundary with botocore's Stubber, which checks every request against the service's
own model. CloudWatch can: moto's server is the session's S3 server, which answers CloudWatch too, so the freshness
metric is published there for real and read back.
"""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake import synthetic
from tests.lake.synthetic import TOPIC_ID
from tests.maintenance.runtime import LambdaContext

APP = "ascep-job"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def flink_client():
    return boto3.client("kinesisanalyticsv2", region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def described(status: str) -> dict:
    arn = f"arn:aws:kinesisanalytics:us-east-1:123456789012:application/{APP}"
    return {"ApplicationDetail": {"ApplicationARN": arn, "ApplicationName": APP, "RuntimeEnvironment": "FLINK-2_3",
                                  "ApplicationStatus": status, "ApplicationVersionId": 7}}


def operations(*statuses: str, operation: str = "StartApplication") -> dict:
    """Newest first, as statuses are given; the service lists them in no promised order, so they come shuffled."""
    ops = [{"Operation": operation, "OperationId": f"op{i}", "StartTime": T0 - timedelta(hours=i),
            "OperationStatus": status} for i, status in enumerate(statuses)]
    return {"ApplicationOperationInfoList": ops[1::2] + ops[0::2]}


def snapshots(*ages_h: int, status: str = "READY") -> dict:
    return {"SnapshotSummaries": [{"SnapshotName": f"snap-{age}h", "SnapshotStatus": status,
                                   "ApplicationVersionId": 7, "SnapshotCreationTimestamp": T0 - timedelta(hours=age)}
                                  for age in ages_h]}


def stubbed(*calls: tuple[str, dict, dict | None]) -> tuple[object, Stubber]:
    client = flink_client()
    stubber = Stubber(client)
    for method, response, expected in calls:
        stubber.add_response(method, response, expected)
    stubber.activate()
    return client, stubber


NAMED = {"ApplicationName": APP}
RESTORE_LATEST = {"ApplicationName": APP, "RunConfiguration": {
    "ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"},
    "FlinkRunConfiguration": {"AllowNonRestoredState": False}}}


def test_a_failed_application_starts_again_from_its_latest_snapshot(maintenance):
    client, stubber = stubbed(("describe_application", described("READY"), NAMED),
                              ("list_application_operations", operations("FAILED", "SUCCESSFUL"), NAMED),
                              ("list_application_snapshots", snapshots(30, 2, 9), NAMED),
                              ("start_application", {"OperationId": "op-restart"}, RESTORE_LATEST))
    assert maintenance.restart_if_failed(client, APP, attempts=3) == \
        {"status": "READY", "restarted": True, "snapshot": "snap-2h"}
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["RUNNING", "STARTING", "UPDATING", "AUTOSCALING"])
def test_a_running_or_busy_application_is_left_alone(maintenance, status):
    client, stubber = stubbed(("describe_application", described(status), NAMED))
    assert maintenance.restart_if_failed(client, APP, attempts=3) == {"status": status, "restarted": False}
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("history", [operations("SUCCESSFUL", "FAILED", operation="StopApplication"),
                                     {"ApplicationOperationInfoList": []}])
def test_an_application_someone_stopped_or_never_started_is_left_alone(maintenance, history):
    client, stubber = stubbed(("describe_application", described("READY"), NAMED),
                              ("list_application_operations", history, NAMED))
    assert maintenance.restart_if_failed(client, APP, attempts=3) == {"status": "READY", "restarted": False}
    stubber.assert_no_pending_responses()


def test_no_snapshot_to_restore_is_an_error_naming_the_application(maintenance):
    client, _stubber = stubbed(("describe_application", described("READY"), NAMED),
                               ("list_application_operations", operations("FAILED"), NAMED),
                               ("list_application_snapshots", snapshots(1, status="CREATING"), NAMED))
    with pytest.raises(RuntimeError, match=f"application {APP} has failed and has no snapshot to restore"):
        maintenance.restart_if_failed(client, APP, attempts=3)


def test_it_stops_trying_after_failed_starts_in_a_row(maintenance):
    client, _stubber = stubbed(("describe_application", described("READY"), NAMED),
                               ("list_application_operations", operations("FAILED", "FAILED", "FAILED",
                                                                          "SUCCESSFUL"), NAMED))
    with pytest.raises(RuntimeError, match=f"{APP}: its last 3 operations failed .*start it by hand"):
        maintenance.restart_if_failed(client, APP, attempts=3)


def write_signals(lake, times_ms: list[tuple[int, int]]) -> None:
    """Signal states opened and updated at the given (event_time, updated_at), on one partition."""
    writer = LakeWriter(lake, topic_id=TOPIC_ID)
    for offset, (opened, updated) in enumerate(times_ms):
        state = {**synthetic.opening(0, offset), "event_time": opened, "updated_at": updated}
        writer.add_signals(0, offset, [state])
    writer.flush(0, len(times_ms) - 1)


def freshness_env(monkeypatch, s3, bucket: str, namespace: str) -> None:
    monkeypatch.setenv("ASCEP_LAKE", f"s3://{bucket}/lake")
    monkeypatch.setenv("ASCEP_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", s3.endpoint)
    monkeypatch.setenv("MAINTENANCE_METRIC_NAMESPACE", namespace)


def test_the_age_of_the_newest_signal_state_reaches_cloudwatch(maintenance, s3, monkeypatch):
    now = int(time.time() * 1000)
    bucket, namespace = s3.new_bucket(), f"ascep-{uuid.uuid4().hex[:8]}"
    newest = now - 95_000
    # one opened 40 minutes ago and updated since, the newest; one opened 8 hours ago, beyond the lookback
    write_signals(open_lake(f"s3://{bucket}/lake", s3.endpoint),
                  [(now - 2_400_000, now - 2_000_000), (now - 2_400_000, newest), (now - 8 * 3_600_000, now)])
    freshness_env(monkeypatch, s3, bucket, namespace)
    result = maintenance.handler({"actions": ["freshness"]}, LambdaContext())["freshness"]
    assert result["newest_signal_ms"] == newest and 95 <= result["age_s"] < 95 + 60
    cloudwatch = boto3.client("cloudwatch", endpoint_url=s3.endpoint, region_name="us-east-1")
    found = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="SignalAgeSeconds", Statistics=["Maximum"], Period=60,
        StartTime=datetime.now(UTC) - timedelta(minutes=5), EndTime=datetime.now(UTC) + timedelta(minutes=5))
    assert [(p["Maximum"], p["Unit"]) for p in found["Datapoints"]] == [(result["age_s"], "Seconds")]


def test_no_recent_signal_publishes_nothing(maintenance, s3, monkeypatch):
    bucket, namespace = s3.new_bucket(), f"ascep-{uuid.uuid4().hex[:8]}"
    freshness_env(monkeypatch, s3, bucket, namespace)
    assert maintenance.handler({"actions": ["freshness"]}, LambdaContext()) == \
        {"freshness": {"newest_signal_ms": None}}
    cloudwatch = boto3.client("cloudwatch", endpoint_url=s3.endpoint, region_name="us-east-1")
    assert cloudwatch.list_metrics(Namespace=namespace)["Metrics"] == []


def test_actions_come_from_the_event_or_from_what_is_configured(maintenance, monkeypatch):
    monkeypatch.delenv("MAINTENANCE_FLINK_APPLICATION", raising=False)
    monkeypatch.delenv("MAINTENANCE_REDIS_URL_SECRET", raising=False)
    settings = maintenance.maintenance_settings()
    assert maintenance.requested_actions({"source": "aws.events"}, settings) == ["freshness", "compact"]
    with pytest.raises(ValueError, match="asks for 'restart' but MAINTENANCE_FLINK_APPLICATION is not set"):
        maintenance.requested_actions({"actions": ["restart"]}, settings)
    with pytest.raises(ValueError, match="asks for 'lag' but MAINTENANCE_REDIS_URL_SECRET is not set"):
        maintenance.requested_actions({"actions": ["freshness", "lag"]}, settings)
    with pytest.raises(ValueError, match=r"event 'actions' must be a list of restart, freshness, lag, compact; "
                                         r"got \['x"):
        maintenance.requested_actions({"actions": ["x"]}, settings)
    monkeypatch.setenv("MAINTENANCE_FLINK_APPLICATION", APP)
    monkeypatch.setenv("MAINTENANCE_REDIS_URL_SECRET", "arn:aws:secretsmanager:us-east-1:123456789012:secret:url")
    settings = maintenance.maintenance_settings()
    assert maintenance.requested_actions({}, settings) == ["restart", "freshness", "lag", "compact"]
    assert maintenance.requested_actions({"actions": ["compact", "restart"]}, settings) == ["restart", "compact"]


def test_a_bad_or_unknown_setting_is_an_error_naming_the_variable(maintenance, monkeypatch):
    monkeypatch.setenv("MAINTENANCE_GRACE_MINUTE", "5")
    with pytest.raises(ValueError, match="unknown maintenance setting MAINTENANCE_GRACE_MINUTE: the known ones are "
                                         "MAINTENANCE_FLINK_APPLICATION, "):
        maintenance.maintenance_settings()
    monkeypatch.delenv("MAINTENANCE_GRACE_MINUTE")
    monkeypatch.setenv("MAINTENANCE_LOOKBACK_HOURS", "-2")
    with pytest.raises(ValueError, match="MAINTENANCE_LOOKBACK_HOURS='-2': Input should be greater than 0"):
        maintenance.maintenance_settings()


def test_every_failing_action_is_named_and_the_others_still_run(maintenance, monkeypatch, tmp_path):
    monkeypatch.delenv("ASCEP_LAKE", raising=False)
    monkeypatch.setenv("ASCEP_STATE_DIR", str(tmp_path))  # no `ascep up` running there either
    with pytest.raises(RuntimeError, match="maintenance failed: freshness: LookupError: no lake address.*; "
                                           "compact: LookupError: no lake address"):
        maintenance.handler({"actions": ["freshness", "compact"]}, LambdaContext())
