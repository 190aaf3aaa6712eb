"""Runs the job: on the local MiniCluster in this process, or submitted to a Flink cluster.

`ascep job run` calls run(). On a cluster, Flink's own `flink run` client starts this file as a
script (see submit_to_cluster), which runs the same job build against that cluster.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from core.log import configure_logging, event
from core.settings import Settings, load_settings
from core.stack_file import latest_checkpoint, resolve
from flink_jobs.topology import JOB_NAME, build

log = logging.getLogger(__name__)
SUBMITTED_BY_FLINK_CLI = "ASCEP_SUBMITTED_BY_FLINK_CLI"


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


def run(settings: Settings, kafka: str, redis: str, lake: str | None = None, restore: str | None = None,
        flink: str | None = None, checkpoints: str | None = None) -> int:
    """Run on the local MiniCluster until stopped, or, with `flink` (host:port), submit and return.

    `restore` is "latest" (the newest checkpoint of an earlier run, if any) or a checkpoint/savepoint path.
    """
    checkpoint_dir = Path(checkpoints or settings.state_dir / "checkpoints").resolve()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str((settings.state_dir / "logs").resolve()))
    os.environ["PATH"] = python_env()["PATH"]
    restore_path = None
    if restore == "latest":
        restore_path = latest_checkpoint(checkpoint_dir)
        event(log, "restoring", path=str(restore_path) if restore_path else None)
    elif restore:
        restore_path = Path(restore)
        if not restore_path.exists():
            raise FileNotFoundError(f"--restore {restore}: no such checkpoint or savepoint")
    if flink:
        job_args = ["--kafka", kafka, "--redis", redis, "--checkpoints", str(checkpoint_dir)]
        return submit_to_cluster(flink, job_args + (["--lake", lake] if lake else []), restore_path)
    ship_code = bool(os.environ.get(SUBMITTED_BY_FLINK_CLI))
    build(settings, kafka, redis, checkpoint_dir, restore_path, lake, ship_code).execute(JOB_NAME)
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
