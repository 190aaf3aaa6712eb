"""`ascep job run`: run the Flink job alone, on the MiniCluster or submitted to a cluster (--flink)."""
from __future__ import annotations

from ascep.runtime import resolve
from ascep.settings import load_settings


def add_parser(sub) -> None:
    parser = sub.add_parser("job", help="run the Flink job (local MiniCluster or a remote cluster)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser("run", help="run the job until stopped")
    run_parser.add_argument("--kafka")
    run_parser.add_argument("--redis")
    run_parser.add_argument("--flink", help="JobManager REST address host:port (default: local MiniCluster)")
    run_parser.add_argument("--lake", help="Parquet lake: a directory or s3://bucket/prefix (default: settings; none)")
    run_parser.add_argument("--checkpoints", help="checkpoint folder (default: <state_dir>/checkpoints)")
    run_parser.add_argument("--restore", nargs="?", const="latest", default=None,
                            help="restore from the latest checkpoint, or from the given checkpoint/savepoint path")
    run_parser.set_defaults(func=run)


def run(args) -> int:
    from flink_jobs.job import run as run_job

    settings = load_settings()
    return run_job(settings, resolve(settings, "kafka", args.kafka), resolve(settings, "redis", args.redis),
                   lake=args.lake or settings.lake, restore=args.restore, flink=args.flink or settings.flink,
                   checkpoints=args.checkpoints)
