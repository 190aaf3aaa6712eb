"""The Flink job's wiring: pulse source -> keyed Kafka partition reader (+ detectors) -> sinks.

Only wiring lives here; what a batch does is in tick_batches.py and the detectors.
Run it with `ascep job run` (or `python -m flink_jobs.job`). Without --flink it runs on the
local MiniCluster; with --flink HOST:PORT it is submitted to that cluster's JobManager.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ascep.log import configure_logging, event
from ascep.settings import Settings, load_settings
from ascep.tick import DEADLETTER_TOPIC, TICKS_TOPIC

log = logging.getLogger(__name__)
JOB_NAME = "ascep-signals"
PACKAGES = ("ascep", "flink_jobs")


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N folder holding _metadata) of any earlier run."""
    done = [m.parent for m in checkpoint_dir.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: p.stat().st_mtime) if done else None


def topic_partitions(bootstrap: str, topic: str) -> int:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise RuntimeError(f"topic {topic!r} not found on {bootstrap}: create it first (ascep up does)")
    return len(found.partitions)


def flink_configuration(settings: Settings, checkpoint_dir: Path, restore: Path | None, flink: str | None):
    from pyflink.common import Configuration

    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("python.execution-mode", settings.job.execution_mode)
    conf.set_string("execution.checkpointing.interval", f"{settings.job.checkpoint_interval_ms}ms")
    conf.set_string("execution.checkpointing.dir", checkpoint_dir.resolve().as_uri())
    conf.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    conf.set_string("execution.checkpointing.num-retained", "3")
    conf.set_string("python.fn-execution.bundle.time", "5")  # ms: flush results quickly, keeps latency low
    conf.set_string("pipeline.name", JOB_NAME)
    # A failing job retries a few times from its checkpoint, then fails visibly instead of looping forever.
    conf.set_string("restart-strategy.type", "fixed-delay")
    conf.set_string("restart-strategy.fixed-delay.attempts", "3")
    conf.set_string("restart-strategy.fixed-delay.delay", "2s")
    if restore is not None:
        conf.set_string("execution.state-recovery.path", restore.resolve().as_uri())
    if flink:
        host, _, port = flink.rpartition(":")
        conf.set_string("execution.target", "remote")
        conf.set_string("rest.address", host or "127.0.0.1")
        conf.set_string("rest.port", port)
    return conf


def build(settings: Settings, kafka: str, redis: str, checkpoint_dir: Path, restore: Path | None = None,
          flink: str | None = None):
    from pyflink.common import Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    from flink_jobs.kafka_reader import KafkaPartitionReader
    from flink_jobs.sinks.batch_writer import BatchWriter

    partitions = topic_partitions(kafka, TICKS_TOPIC)
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(settings, checkpoint_dir, restore, flink))
    env.set_parallelism(settings.job.parallelism)
    if flink:  # a remote cluster's workers need our code; a local run imports it from the venv
        root = Path(__file__).resolve().parents[1]
        for package in PACKAGES:
            env.add_python_file(str(root / package))
    t_env = StreamTableEnvironment.create(env)
    # The pulse: Flink's built-in datagen gives an unbounded, rate-limited stream that drives the polls.
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE pulse (p INT) WITH ('connector'='datagen', "
        f"'rows-per-second'='{settings.job.pulse_per_second * partitions}', "
        f"'fields.p.min'='0', 'fields.p.max'='{partitions - 1}')")
    pulses = t_env.to_data_stream(t_env.from_path("pulse")).map(lambda row: row[0], output_type=Types.INT())
    reader = KafkaPartitionReader(kafka, TICKS_TOPIC, DEADLETTER_TOPIC, settings.arbitrage, settings.job.poll_batch)
    (pulses.key_by(lambda p: p, key_type=Types.INT())
        .process(reader).name("read ticks + detect arbitrage")
        .flat_map(BatchWriter(redis)).name("write signals"))
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ascep job run", description="run the ASCEP Flink job")
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default <state_dir>/checkpoints)")
    parser.add_argument("--restore", nargs="?", const="latest", default=None,
                        help="restore from a checkpoint or savepoint path; without a path, the latest checkpoint")
    parser.add_argument("--flink", default=None, help="JobManager REST address host:port; default: local MiniCluster")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = load_settings()
    configure_logging(1 if os.environ.get("ASCEP_VERBOSE") else 0)
    checkpoint_dir = Path(args.checkpoints or settings.state_dir / "checkpoints")
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str((settings.state_dir / "logs").resolve()))
    restore = None
    if args.restore == "latest":
        restore = latest_checkpoint(checkpoint_dir)
        event(log, "restoring", path=str(restore) if restore else None)
    elif args.restore:
        restore = Path(args.restore)
        if not restore.exists():
            raise SystemExit(f"ascep job run: --restore {restore}: no such checkpoint or savepoint")
    env = build(settings, args.kafka, args.redis, checkpoint_dir, restore, args.flink)
    env.execute(JOB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
