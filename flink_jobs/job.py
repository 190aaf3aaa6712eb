"""The Flink job's wiring: pulse source -> keyed Kafka partition readers -> detectors -> sinks.

Only wiring lives here; what a batch does is in tick_batches.py and the detectors.
Run it with `ascep job run`. Without --flink it runs on the local MiniCluster; with --flink
HOST:PORT Flink's `flink run` client submits it to that cluster.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ascep.log import event
from ascep.services import python_env
from ascep.settings import Settings
from ascep.tick import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC

log = logging.getLogger(__name__)
JOB_NAME = "ascep-signals"
PACKAGES = ("ascep", "flink_jobs")
SUBMITTED_BY_FLINK_CLI = "ASCEP_SUBMITTED_BY_FLINK_CLI"


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


def flink_configuration(settings: Settings, checkpoint_dir: Path, restore: Path | None):
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
    return conf


def build(settings: Settings, kafka: str, redis: str, checkpoint_dir: Path, restore: Path | None = None,
          lake: str | None = None):
    """pulses -> TickReader (offsets, cross-exchange) -> [triangular by venue | direct by pair | rules] -> Redis
    and the `signals` topic; with a lake, archivers copy `ticks` and `signals` into Parquet."""
    from pyflink.common import Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    from flink_jobs.arbitrage.direct import DirectDetector
    from flink_jobs.arbitrage.triangular import TriangularDetector
    from flink_jobs.detector_operators import RULES_STATE, KeyedDetector, RuleOperator
    from flink_jobs.kafka_reader import DIRECT, RULES, TRIANGULAR, RulesReader, TickReader
    from flink_jobs.sinks.batch_writer import BatchWriter
    from flink_jobs.sinks.lake_archiver import LakeArchiver

    unknown = set(settings.job.detectors) - {"triangular", "direct", "rules"}
    if unknown:
        raise ValueError(f"job.detectors: unknown {sorted(unknown)}; choose from triangular, direct, rules")
    partitions = topic_partitions(kafka, TICKS_TOPIC)
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(settings, checkpoint_dir, restore))
    env.set_parallelism(settings.job.parallelism)
    if os.environ.get(SUBMITTED_BY_FLINK_CLI):  # a cluster's workers may not have our code: ship it
        root = Path(__file__).resolve().parents[1]
        for package in PACKAGES:
            env.add_python_file(str(root / package))
    t_env = StreamTableEnvironment.create(env)

    def pulses(name: str, per_second: int, keys: int):
        """Flink's built-in datagen: an unbounded, rate-limited stream of partition numbers that drives the polls."""
        t_env.execute_sql(f"CREATE TEMPORARY TABLE {name} (p INT) WITH ('connector'='datagen', "
                          f"'rows-per-second'='{per_second}', 'fields.p.min'='0', 'fields.p.max'='{keys - 1}')")
        return (t_env.to_data_stream(t_env.from_path(name)).map(lambda row: row[0], output_type=Types.INT())
                .key_by(lambda p: p, key_type=Types.INT()))

    detectors = settings.job.detectors
    reader = TickReader(kafka, TICKS_TOPIC, DEADLETTER_TOPIC, settings.arbitrage, settings.job.poll_batch,
                        fan_out=tuple(detectors))
    ticks = pulses("tick_pulse", settings.job.pulse_per_second * partitions, partitions).process(reader)
    ticks.name("read ticks, cross-exchange arbitrage")
    outputs = [ticks]
    for name, tag, detector in (("triangular", TRIANGULAR, TriangularDetector), ("direct", DIRECT, DirectDetector)):
        if name in detectors:
            outputs.append(ticks.get_side_output(tag).key_by(lambda batch: batch[0], key_type=Types.STRING())
                           .process(KeyedDetector(detector, settings.arbitrage)).name(f"{name} arbitrage"))
    if "rules" in detectors:
        rule_changes = pulses("rules_pulse", 20, 1).process(RulesReader(kafka, RULES_TOPIC, 1000)).name("read rules")
        outputs.append(ticks.get_side_output(RULES).key_by(lambda batch: 0, key_type=Types.INT())
                       .connect(rule_changes.broadcast(RULES_STATE))
                       .process(RuleOperator(kafka, DEADLETTER_TOPIC)).name("evaluate rules"))
    merged = outputs[0].union(*outputs[1:]) if len(outputs) > 1 else outputs[0]
    merged.flat_map(BatchWriter(redis, kafka)).name("write to Redis and the signals topic")
    if lake:
        options = settings.lake_options
        writer_options = {"tick_range": options.tick_range, "signal_range": options.signal_range,
                          "row_group_rows": options.row_group_rows}
        for kind, topic in (("ticks", TICKS_TOPIC), ("signals", SIGNALS_TOPIC)):
            archiver = LakeArchiver(kafka, topic, kind, lake, settings.s3_endpoint, writer_options,
                                    options.flush_every_s, settings.job.poll_batch)
            count = topic_partitions(kafka, topic)
            pulses(f"{kind}_archive_pulse", 20 * count, count).process(archiver).name(f"archive {kind} to the lake")
    return env


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
    build(settings, kafka, redis, checkpoint_dir, restore_path, lake).execute(JOB_NAME)
    return 0


if __name__ == "__main__":  # the script `flink run --python` starts on a cluster's client: the same `ascep job run`
    from ascep.cli import main

    sys.exit(main(["job", "run", *sys.argv[1:]]))
