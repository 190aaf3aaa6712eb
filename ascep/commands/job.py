"""`ascep job run`: run the Flink job alone, on the MiniCluster or submitted to a cluster (--flink)."""
from __future__ import annotations

from flink_jobs.launcher import add_arguments as add_job_arguments
from flink_jobs.launcher import run_from_arguments


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser("run", help="run the job until stopped")
    add_job_arguments(run_parser)
    run_parser.set_defaults(func=run)


def run(args) -> int:
    return run_from_arguments(args)
