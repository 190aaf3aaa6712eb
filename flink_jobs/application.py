"""The job as Amazon Managed Service for Apache Flink runs it: the application zip's ascep_job.py calls main().

The service writes the application's property groups to /etc/flink/application_properties.json
(ASCEP_APPLICATION_PROPERTIES names another file). The group `ascep` holds settings under their
environment variable names (ASCEP_KAFKA, ASCEP_JOB__PARTITIONS, ...), as ECS tasks and compose services
get them, and they are applied as if they were environment variables: a real one wins. A key that is no
setting is an error naming it, rather than a setting silently left at its default.

Checkpoints, snapshots, restarts and parallelism are the service's (its application configuration), so
the job sets none of them (flink_jobs/topology.py, flink_configuration), and restores whatever snapshot
the service restores.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.log import configure_logging
from core.settings import check_env_name, load_settings
from core.stack_file import redis_address
from flink_jobs.topology import JOB_NAME, build, topic_ids, topics_read

PROPERTIES_ENV = "ASCEP_APPLICATION_PROPERTIES"
SERVICE_PROPERTIES = Path("/etc/flink/application_properties.json")
SETTINGS_GROUP = "ascep"


def read_properties(path: Path) -> dict[str, str]:
    """The `ascep` group of an application properties file, each key checked to be a setting."""
    try:
        groups = json.loads(path.read_text())
        found = [group["PropertyMap"] for group in groups if group["PropertyGroupId"] == SETTINGS_GROUP]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: not application properties (a list of {{PropertyGroupId, PropertyMap}}): "
                         f"{exc!r}") from None
    properties = {key: value for group in found for key, value in group.items()}
    for key, value in properties.items():
        check_env_name(key)
        if not isinstance(value, str):
            raise ValueError(f"{path}: property {key} of group {SETTINGS_GROUP!r} is {value!r}, not a string")
    return properties


def apply_properties(environ: dict[str, str] | os._Environ[str]) -> Path | None:
    """Sets the settings of the properties file, where there is one, in `environ` unless already set there;
    returns the file read. A file named by ASCEP_APPLICATION_PROPERTIES must exist."""
    named = environ.get(PROPERTIES_ENV)
    path = Path(named) if named else SERVICE_PROPERTIES
    if not path.is_file():
        if named:
            raise FileNotFoundError(f"{PROPERTIES_ENV} names {named!r}, which is not a file")
        return None
    for key, value in read_properties(path).items():
        environ.setdefault(key.upper(), value)
    return path


def main() -> int:
    """Builds the job against the settings' Kafka and Redis and hands it to the cluster running this script."""
    configure_logging()
    source = apply_properties(os.environ)
    settings = load_settings()
    where = f"the property group {SETTINGS_GROUP!r} of {source}" if source else "the environment"
    missing = [name for name, value in (("ASCEP_KAFKA", settings.kafka), ("ASCEP_REDIS", settings.redis)) if not value]
    if missing:
        raise LookupError(f"{' and '.join(missing)} not set in {where}: the job needs its Kafka and Redis")
    kafka, redis = settings.kafka, redis_address(settings.redis, settings.redis_ca_file)
    ids = topic_ids(kafka, settings.kafka_security, topics_read(settings, settings.lake))
    build(settings, kafka, redis, None, ids, lake=settings.lake).execute(JOB_NAME)
    return 0
