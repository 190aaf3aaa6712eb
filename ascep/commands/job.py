"""`ascep job run`: run the Flink job alone, on the MiniCluster or submitted to a cluster (--flink)."""
from __future__ import annotations


def add_parser(sub) -> None:
    from flink_jobs.launcher import add_arguments

    parser = sub.add_parser("job", help="run the Flink job (local MiniCluster or a remote cluster)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser("run", help="run the job until stopped")
    add_arguments(run_parser)
    run_parser.set_defaults(func=run)


def run(args) -> int:
    from flink_jobs.launcher import run_from_arguments

    return run_from_arguments(args)
