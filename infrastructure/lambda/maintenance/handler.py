"""The maintenance Lambda, run by EventBridge on a schedule (README.md beside this file).

Four actions, in this order: `restart` starts the Managed Flink application again from its latest snapshot when
it has failed; `freshness` publishes the age of the newest signal state in the lake to CloudWatch; `lag` publishes
the records the job's readers have not read yet, from what they and the producers report to Redis; `compact`
merges the small Parquet objects of the lake's closed hours (lake/maintenance.py). An event may name the actions
to run ({"actions": ["restart", "freshness"]}), so that one schedule restarts and measures every few minutes and
another compacts every hour; a plain scheduled event runs all of them, but `restart` only with an application
configured and `lag` only with a Redis secret. One action failing does not stop the others; the invocation then
fails, naming each failure, so the Lambda's Errors metric sees it.

Settings: the product's own for the lake (ASCEP_LAKE, ASCEP_S3_ENDPOINT, ASCEP_LAKE_OPTIONS__ROW_GROUP_ROWS) and
for a private Redis CA (ASCEP_REDIS_CA_FILE), and the Lambda's, MAINTENANCE_* (MaintenanceSettings).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import redis
from botocore.exceptions import ClientError
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.contracts.redis_keys import PROGRESS, TOPIC_ENDS
from core.log import configure_logging, event
from core.progress import read_ends, read_progress, unread_by_stage
from core.settings import Settings, load_settings
from core.stack_file import redacted, redis_address
from lake.maintenance import compact, newest_signal_ms
from lake.storage import Lake, configured_lake

log = logging.getLogger("maintenance")

ACTIONS = ("restart", "freshness", "lag", "compact")
FRESHNESS_METRIC = "SignalAgeSeconds"
LAG_METRIC = "ConsumerLag"  # one per stage of core.progress.STAGE_TOPICS, dimension STAGE_DIMENSION
STAGE_DIMENSION = "Stage"
PREFIX = "MAINTENANCE_"


class MaintenanceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid")

    flink_application: str | None = None  # the Managed Flink application's name; None: no restarts
    restart_attempts: int = Field(default=3, ge=1)  # failed operations in a row after which it stops starting it
    grace_minutes: float = Field(default=60.0, ge=0)  # an hour is closed this long after it ends
    lookback_hours: float = Field(default=48.0, gt=0)  # how far back compaction looks at hours
    max_object_mb: float = Field(default=64.0, gt=0)  # the sources of one merged object, at most
    freshness_lookback_hours: float = Field(default=6.0, gt=0)  # how far back to look for the newest signal
    metric_namespace: str = "ASCEP"
    time_margin_s: float = Field(default=60.0, ge=0)  # no merge starts this close to the Lambda's timeout
    redis_url_secret: str | None = None  # Secrets Manager secret (ARN) whose value is the Redis URL; None: no lag


# The actions that run only with a setting, and that setting.
NEEDS = {"restart": "flink_application", "lag": "redis_url_secret"}


def maintenance_settings() -> MaintenanceSettings:
    """MaintenanceSettings from the environment; a bad value or an unknown MAINTENANCE_* name is an error naming
    the variable."""
    unknown = sorted(name for name in os.environ
                     if name.startswith(PREFIX) and name[len(PREFIX):].lower() not in MaintenanceSettings.model_fields)
    if unknown:
        raise ValueError(f"unknown maintenance setting {', '.join(unknown)}: the known ones are "
                         f"{', '.join(PREFIX + name.upper() for name in MaintenanceSettings.model_fields)}")
    try:
        return MaintenanceSettings()
    except ValidationError as exc:
        problems = "; ".join(f"{PREFIX}{'__'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
                             for e in exc.errors())
        raise ValueError(f"bad maintenance setting: {problems}") from None


def requested_actions(event_: Mapping[str, Any], settings: MaintenanceSettings) -> list[str]:
    configured = [a for a in ACTIONS if a not in NEEDS or getattr(settings, NEEDS[a])]
    actions = event_.get("actions")
    if actions is None:
        return configured
    if not isinstance(actions, list) or not all(isinstance(a, str) and a in ACTIONS for a in actions):
        raise ValueError(f"event 'actions' must be a list of {', '.join(ACTIONS)}; got {actions!r}")
    for action in ACTIONS:
        if action in actions and action not in configured:
            raise ValueError(f"event asks for {action!r} but {PREFIX}{NEEDS[action].upper()} is not set")
    return [a for a in ACTIONS if a in actions]


def restart_if_failed(client, application: str, attempts: int) -> dict[str, Any]:
    """Starts `application` from its latest snapshot when it has failed: it is READY (not running) and the last
    operation on it failed, as a start does, or an update or a scaling whose rollback failed too. A stop someone
    asked for ends with a successful operation and is left alone, as is a running application, whose failing job
    Flink restarts itself from its latest checkpoint. Gives up, with an error, after `attempts` failed operations
    in a row, so that a version that cannot start is not started for ever."""
    status = client.describe_application(ApplicationName=application)["ApplicationDetail"]["ApplicationStatus"]
    if status != "READY":
        return {"status": status, "restarted": False}
    operations = sorted((op for page in client.get_paginator("list_application_operations")
                         .paginate(ApplicationName=application) for op in page["ApplicationOperationInfoList"]),
                        key=lambda op: op["StartTime"], reverse=True)
    failed = next((i for i, op in enumerate(operations) if op.get("OperationStatus") != "FAILED"), len(operations))
    if failed == 0:
        return {"status": status, "restarted": False}
    if failed >= attempts:
        raise RuntimeError(f"Managed Flink application {application}: its last {failed} operations failed "
                           f"(the last: {operations[0].get('Operation')}); not starting it again: see its logs, "
                           f"fix it and start it by hand")
    snapshots = [s for page in client.get_paginator("list_application_snapshots").paginate(
        ApplicationName=application) for s in page["SnapshotSummaries"] if s["SnapshotStatus"] == "READY"]
    if not snapshots:
        raise RuntimeError(f"Managed Flink application {application} has failed and has no snapshot to restore: "
                           f"starting it without state would lose where the job and the lake were; start it by "
                           f"hand, choosing where it reads from")
    newest = max(snapshots, key=lambda s: s["SnapshotCreationTimestamp"])
    client.start_application(ApplicationName=application, RunConfiguration={
        "ApplicationRestoreConfiguration": {"ApplicationRestoreType": "RESTORE_FROM_LATEST_SNAPSHOT"},
        "FlinkRunConfiguration": {"AllowNonRestoredState": False}})
    event(log, "Managed Flink application started from its latest snapshot", logging.WARNING,
          application=application, snapshot=newest["SnapshotName"], failed_operation=operations[0].get("Operation"))
    return {"status": status, "restarted": True, "snapshot": newest["SnapshotName"]}


def publish_freshness(client, lake: Lake, namespace: str, now_ms: int, lookback_ms: int) -> dict[str, Any]:
    """Seconds since the newest signal state's exchange time; nothing when the lake has none in the lookback (an
    alarm on the metric treats missing data as breaching)."""
    newest = newest_signal_ms(lake, now_ms, lookback_ms)
    if newest is None:
        event(log, "no signal state in the lake's recent hours: freshness not published", logging.WARNING,
              lake=lake.uri, lookback_hours=lookback_ms / 3_600_000)
        return {"newest_signal_ms": None}
    age_s = max(0.0, (now_ms - newest) / 1000)
    client.put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": FRESHNESS_METRIC, "Value": age_s, "Unit": "Seconds",
        "Timestamp": datetime.fromtimestamp(now_ms / 1000, UTC)}])
    return {"newest_signal_ms": newest, "age_s": age_s}


_redis_urls: dict[str, str] = {}  # secret -> the Redis URL it holds, read once per container


def redis_url(secrets, secret: str, ca_file: Path | None) -> str:
    """The Redis URL in `secret`, as every client of the product is given it (core.stack_file.redis_address).
    Read once per container: the token changes only when it is rotated, and publish_lag forgets a URL whose
    token Redis refuses."""
    if secret not in _redis_urls:
        variable = f"{PREFIX}REDIS_URL_SECRET"
        try:
            value = secrets.get_secret_value(SecretId=secret).get("SecretString")
        except ClientError as exc:
            raise RuntimeError(f"{variable}={secret}: Secrets Manager does not give its value: {exc}") from None
        url = value.strip() if isinstance(value, str) else ""
        if urlsplit(url).scheme not in ("redis", "rediss") or not urlsplit(url).hostname:
            # never the value itself: it holds the token
            raise ValueError(f"{variable}={secret}: the secret's value is not a redis:// or rediss:// URL (the "
                             f"elasticache module writes rediss://:TOKEN@host:6379/0)")
        _redis_urls[secret] = redis_address(url, ca_file)
    return _redis_urls[secret]


def publish_lag(cloudwatch, redis_client: redis.Redis, namespace: str, now_ms: int) -> dict[str, Any]:
    """ConsumerLag of each stage of the job: the records of its topics it has not read yet, from where its
    readers report they are (PROGRESS) and the ends the producers report (TOPIC_ENDS). Nothing for a stage
    without a figure (core.progress.unread_by_stage says why, and so does the log): the lag alarm must say what
    no data means."""
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.hgetall(PROGRESS)
        pipe.hgetall(TOPIC_ENDS)
        raw_progress, raw_ends = pipe.execute()
    unread, unknown = unread_by_stage(read_progress(raw_progress), read_ends(raw_ends))
    if unknown:
        event(log, "consumer lag not published for some stages", logging.WARNING, why=unknown,
              progress_entries=len(raw_progress), topic_ends=len(raw_ends))
    if unread:
        timestamp = datetime.fromtimestamp(now_ms / 1000, UTC)
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": LAG_METRIC, "Dimensions": [{"Name": STAGE_DIMENSION, "Value": stage}], "Value": records,
            "Unit": "Count", "Timestamp": timestamp} for stage, records in unread.items()])
    return {"unread": unread, "not_published": unknown}


def lag(settings: MaintenanceSettings, product: Settings, now_ms: int) -> dict[str, Any]:
    secret = str(settings.redis_url_secret)
    url = redis_url(boto3.client("secretsmanager"), secret, product.redis_ca_file)
    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, decode_responses=True)
    try:
        return publish_lag(boto3.client("cloudwatch"), client, settings.metric_namespace, now_ms)
    except redis.AuthenticationError as exc:
        _redis_urls.pop(secret, None)  # a rotated token: the next run reads the secret again
        raise RuntimeError(f"Redis at {redacted(url)} refused the token of {PREFIX}REDIS_URL_SECRET={secret} "
                           f"({exc}); the next run reads the secret again") from None
    finally:
        client.close()


def handler(event_: Mapping[str, Any], context: Any) -> dict[str, Any]:
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in the Lambda, not when a test calls it
        configure_logging(verbosity=1)  # the product's JSON lines on stderr, which Lambda sends to CloudWatch Logs
    settings = maintenance_settings()
    actions = requested_actions(event_, settings)
    product = load_settings()
    now_ms = int(time.time() * 1000)
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for action in actions:
        try:
            results[action] = run(action, settings, product, now_ms, context)
        except Exception as exc:  # the other actions still run; the invocation fails below
            log.exception("maintenance action %s failed", action)
            failures[action] = f"{type(exc).__name__}: {exc}"
    event(log, "maintenance done", results=results, failures=failures)
    if failures:
        raise RuntimeError("maintenance failed: " + "; ".join(f"{a}: {why}" for a, why in failures.items()))
    return results


def run(action: str, settings: MaintenanceSettings, product: Settings, now_ms: int, context: Any) -> dict[str, Any]:
    if action == "restart":
        return restart_if_failed(boto3.client("kinesisanalyticsv2"), str(settings.flink_application),
                                 settings.restart_attempts)
    if action == "lag":
        return lag(settings, product, now_ms)
    lake = configured_lake(product)
    if action == "freshness":
        return publish_freshness(boto3.client("cloudwatch"), lake, settings.metric_namespace, now_ms,
                                 round(settings.freshness_lookback_hours * 3_600_000))
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - settings.time_margin_s
    return asdict(compact(lake, now_ms, round(settings.grace_minutes * 60_000),
                          round(settings.lookback_hours * 3_600_000), round(settings.max_object_mb * 2**20),
                          product.lake_options.row_group_rows, deadline))
