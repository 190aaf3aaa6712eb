"""`ascep job run`: run the Flink job alone, on the MiniCluster or submitted to a cluster (--flink)."""
from __future__ import annotations

from core.settings import load_settings
from flink_jobs.launcher import add_arguments as add_job_arguments
from flink_jobs.launcher import run_from_arguments
from flink_jobs.topology import JOB_NAME

ENDED = {"FINISHED", "CANCELED", "FAILED"}  # Flink's terminal job states; any other holds the cluster's slots


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_parser = actions.add_parser("run", help="run the job until stopped")
    add_job_arguments(run_parser)
    run_parser.set_defaults(func=run)


def run(args) -> int:
    flink = args.flink or load_settings().flink
    if flink:
        refuse_a_second_job(flink)
    return run_from_arguments(args)


def refuse_a_second_job(flink: str) -> None:
    """A cluster runs the job once: a second copy would write the same signals and wait for slots. docker compose
    starts its one-shot submitter again on every `up`, so this is what keeps that from submitting twice."""
    from ascep.services import flink_rest

    try:
        jobs = flink_rest(flink, "/jobs/overview", timeout=10)["jobs"]
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"--flink {flink}: the JobManager's REST API did not answer ({exc})") from None
    running = [job for job in jobs if job.get("name") == JOB_NAME and job.get("state") not in ENDED]
    if running:
        job = running[0]
        raise RuntimeError(f"the Flink cluster at {flink} already runs {JOB_NAME} (job {job['jid']}, {job['state']}): "
                           f"nothing submitted. To replace it, stop it with a savepoint and submit with --restore "
                           f"SAVEPOINT (README, \"A local cluster with docker compose\")")
