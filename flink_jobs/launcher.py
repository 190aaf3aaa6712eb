"""Runs the job: on the local MiniCluster in this process, or submitted to a Flink cluster.

`ascep job run` calls run(). On a cluster, Flink's own `flink run` client starts this file as a
script (see submit_to_cluster), which runs the same job build against that cluster.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from core.clock import now_ms
from core.log import configure_logging, event
from core.settings import Settings, load_settings
from core.stack_file import latest_checkpoint, resolve
from flink_jobs import rest_tls
from flink_jobs.topology import JOB_NAME, build, topic_ids, topics_read

log = logging.getLogger(__name__)
SUBMITTED_BY_FLINK_CLI = "ASCEP_SUBMITTED_BY_FLINK_CLI"
TOPICS_FILE = "topics.json"  # next to the job folders of a checkpoint directory: which topics their offsets are of


class StaleCheckpoint(RuntimeError):
    """A checkpoint holds offsets of topics that no longer exist (an embedded broker restarted, topics recreated)."""


def python_env() -> dict[str, str]:
    """Flink's thread mode loads the venv's Python: its bin must be first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        path = bin_dir + os.pathsep + path
    return {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"}


def submit_to_cluster(flink: str, job_args: list[str], restore: Path | None) -> int:
    """PyFlink's own environments always run locally: a cluster is reached through Flink's `flink run`
    client, which runs this module as a script with an environment bound to that cluster. Detached: it returns
    once the job is submitted and prints its JobID."""
    import subprocess

    import pyflink

    client = Path(pyflink.__file__).parent / "bin" / "flink"
    argv = [str(client), "run", "--detached", "--jobmanager", flink, "-pyclientexec", sys.executable,
            "-pyexec", sys.executable]
    if restore is not None:
        argv += ["--fromSavepoint", str(restore.resolve())]
    argv += ["--python", str(Path(__file__).resolve()), *job_args]
    return subprocess.call(argv, env={**os.environ, SUBMITTED_BY_FLINK_CLI: "1"})


def record_topics(checkpoint_dir: Path, ids: dict[str, str], started_ms: int) -> None:
    """Appends `ids` to the checkpoint directory's record when they differ from the last entry: each entry says
    which topics the checkpoints written from its `since` on are of."""
    path = checkpoint_dir / TOPICS_FILE
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    if not runs or runs[-1]["topics"] != ids:
        runs.append({"since": started_ms, "topics": ids})
        path.write_text(json.dumps({"runs": runs}, indent=1))


def topics_of(checkpoint: Path) -> dict[str, str] | None:
    """The topic ids of the run that wrote `checkpoint` (<dir>/<job id>/chk-N), from <dir>/topics.json;
    None when there is no record (a savepoint copied from elsewhere, or written before the record existed)."""
    parents = checkpoint.resolve().parents
    path = parents[1] / TOPICS_FILE if len(parents) > 1 else None
    if path is None or not path.exists():
        return None
    metadata = checkpoint / "_metadata"
    written_ms = (metadata if metadata.exists() else checkpoint).stat().st_mtime * 1000
    try:
        runs = json.loads(path.read_text())["runs"]
        return next((run["topics"] for run in reversed(runs) if run["since"] <= written_ms), None)
    except (ValueError, KeyError, TypeError) as exc:
        raise StaleCheckpoint(f"{path}: not a record of topic ids ({exc!r}); move it away to restore anyway") from None


def check_restorable(checkpoint: Path, ids: dict[str, str]) -> None:
    """Refuses a checkpoint whose topics are gone: its offsets would point into topics that no longer exist."""
    recorded = topics_of(checkpoint)
    if recorded is None:
        event(log, "restoring a checkpoint with no record of its topics", logging.WARNING, path=str(checkpoint))
        return
    gone = sorted(name for name, topic_id in recorded.items() if ids.get(name, topic_id) != topic_id)
    if gone:
        raise StaleCheckpoint(
            f"--restore {checkpoint}: refused, its topics are gone: {', '.join(gone)} "
            f"({', '.join(f'{n} was {recorded[n]}, now {ids[n]}' for n in gone)}). The broker has new topics "
            f"(an embedded broker keeps them in memory, so each `ascep up` creates new ones); start without --restore")


def restore_point(checkpoint_dir: Path, restore: str | None, ids: dict[str, str]) -> Path | None:
    """The checkpoint to restore: for "latest" the newest one in `checkpoint_dir` (None if there is none), else
    the path given; refused (StaleCheckpoint) when its topics are not those of `ids` any more."""
    if not restore:
        return None
    if restore == "latest":
        path = latest_checkpoint(checkpoint_dir)
        event(log, "restoring", path=str(path) if path else None)
    else:
        path = Path(restore)
        if not path.exists():
            raise FileNotFoundError(f"--restore {restore}: no such checkpoint or savepoint")
    if path is not None:
        check_restorable(path, ids)
    return path


def run(settings: Settings, kafka: str, redis: str, lake: str | None = None, restore: str | None = None,
        flink: str | None = None, checkpoints: str | None = None) -> int:
    """Run on the local MiniCluster until stopped, or, with `flink` (host:port), submit and return.

    `restore` is "latest" (the newest checkpoint of an earlier run, if any) or a checkpoint/savepoint path.
    """
    checkpoint_dir = Path(checkpoints or settings.state_dir / "checkpoints").resolve()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str((settings.state_dir / "logs").resolve()))
    os.environ["PATH"] = python_env()["PATH"]
    ids = topic_ids(kafka, settings.kafka_security, topics_read(settings, lake))
    restore_path = restore_point(checkpoint_dir, restore, ids)
    ship_code = bool(os.environ.get(SUBMITTED_BY_FLINK_CLI))
    if flink and not ship_code:  # the script `flink run` starts builds the job here (ASCEP_FLINK reaches it too)
        job_args = ["--kafka", kafka, "--redis", redis, "--checkpoints", str(checkpoint_dir)]
        return submit_to_cluster(flink, job_args + (["--lake", lake] if lake else []), restore_path)
    record_topics(checkpoint_dir, ids, now_ms())
    if not ship_code:
        # On the MiniCluster PyFlink otherwise runs process-mode workers in a "loopback" pool inside this process,
        # listening on every interface: every subtask's Python then shares this one interpreter and its lock, so
        # parallelism 2 ran slower than 1. Real worker processes, as a cluster's TaskManager starts them, run in
        # parallel; thread mode runs the Python code inside the JVM and uses neither.
        os.environ.setdefault("_python_worker_execution_mode", "process")
    # The MiniCluster's REST API takes only clients holding this run's own key: nobody (see flink_jobs/rest_tls.py).
    tls = None if ship_code else rest_tls.generate(settings.state_dir / rest_tls.DIRECTORY)
    build(settings, kafka, redis, checkpoint_dir, ids, restore_path, lake, ship_code, tls).execute(JOB_NAME)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's options: `ascep job run` and the script `flink run --python` starts share them."""
    parser.add_argument("--kafka")
    parser.add_argument("--redis")
    parser.add_argument("--flink", help="JobManager REST address host:port (default: local MiniCluster)")
    parser.add_argument("--lake", help="Parquet lake: a directory or s3://bucket/prefix (default: settings; none)")
    parser.add_argument("--checkpoints", help="checkpoint folder (default: <state_dir>/checkpoints)")
    parser.add_argument("--restore", nargs="?", const="latest", default=None,
                        help="restore from the latest checkpoint, or from the given checkpoint/savepoint path")


def run_from_arguments(args: argparse.Namespace) -> int:
    settings = load_settings()
    return run(settings, resolve(settings, "kafka", args.kafka), resolve(settings, "redis", args.redis),
               lake=args.lake or settings.lake, restore=args.restore, flink=args.flink or settings.flink,
               checkpoints=args.checkpoints)


if __name__ == "__main__":  # the script `flink run --python` starts on the cluster's client
    configure_logging()
    script = argparse.ArgumentParser(prog="flink_jobs.launcher")
    add_arguments(script)
    sys.exit(run_from_arguments(script.parse_args()))
