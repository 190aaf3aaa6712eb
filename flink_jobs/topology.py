"""The Flink job's topology: pulse source -> keyed Kafka partition readers -> detectors -> sinks.

Only wiring lives here: what a batch does is in core/ (the detectors, the rule engine), how a
partition is read in flink_jobs/readers/, where results go in flink_jobs/sinks/. flink_jobs/launcher.py
runs it on the MiniCluster or submits it to a cluster.
"""
from __future__ import annotations

import sys
from pathlib import Path

from clients.kafka import describe, kafka_config, unreachable
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from core.settings import KafkaSecuritySettings, Settings
from flink_jobs.rest_tls import RestTls

JOB_NAME = "ascep-signals"
# What a cluster's Python workers need of this repository: the core and the Flink wiring, nothing above.
PACKAGES = ("core", "lake", "clients", "flink_jobs")
# A rule change may take half a second longer to land; every fetch costs the embedded broker (job.fetch_wait_ms).
RULES_FETCH_WAIT_MS = 500


def topic_partitions(bootstrap: str, security: KafkaSecuritySettings, topic: str) -> int:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient(kafka_config(bootstrap, security)).list_topics(topic, timeout=15)
    except KafkaException as exc:
        raise RuntimeError(unreachable(bootstrap, security, exc.args[0].str())) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise RuntimeError(f"topic {topic!r} not found on {bootstrap}: create it first (ascep up does)")
    return len(found.partitions)


def topics_read(settings: Settings, lake: str | None) -> tuple[str, ...]:
    """The topics whose offsets the job's state holds: what a checkpoint is only valid against. The rules read
    trades too (vwap, volume), and the lake keeps them."""
    rules = "rules" in settings.job.detectors
    return (TICKS_TOPIC, *((RULES_TOPIC,) if rules else ()), *((TRADES_TOPIC,) if rules or lake else ()),
            *((SIGNALS_TOPIC,) if lake else ()))


def topic_ids(bootstrap: str, security: KafkaSecuritySettings, topics: tuple[str, ...]) -> dict[str, str]:
    """Topic name -> the UUID the broker gave it when it created it: a topic created again gets another one."""
    import uuid

    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka_config(bootstrap, security))  # kept until the results are in: they need its handle
    found = admin.describe_topics(TopicCollection(list(topics)))
    ids = {}
    for name, future in found.items():
        try:
            topic_id = future.result(15).topic_id
        except KafkaException as exc:
            raise RuntimeError(f"topic {name!r} not found on {describe(bootstrap, security)}: create it first "
                               f"(ascep up does): {exc.args[0].str()}") from None
        bits = (topic_id.get_most_significant_bits() % 2**64) << 64 | topic_id.get_least_significant_bits() % 2**64
        ids[name] = str(uuid.UUID(int=bits))
    return ids


def flink_configuration(settings: Settings, checkpoint_dir: Path | None, restore: Path | None,
                        rest_tls: RestTls | None = None):
    """`rest_tls`: mutual TLS on the local MiniCluster's REST API (None when a cluster's client runs the build:
    that cluster's own security applies, and these options would only reconfigure the client).
    `checkpoint_dir` None: the service running the job (Managed Flink) owns checkpoints, restarts, the Python
    interpreter and the cluster's network options, so only what is the job's own is set."""
    from pyflink.common import Configuration

    conf = Configuration()
    conf.set_string("python.execution-mode", settings.job.execution_mode)
    # Barriers overtake the buffered pulses and batches: aligned, a checkpoint at 10,000 ticks/s waited behind
    # them for 60-156 s; unaligned, 0.1-15 s (README, "Figures"). The buffers are stored with the checkpoint.
    conf.set_string("execution.checkpointing.unaligned.enabled", "true")
    conf.set_string("python.fn-execution.bundle.time", "5")  # ms: flush results quickly, keeps latency low
    conf.set_string("pipeline.name", JOB_NAME)
    if checkpoint_dir is None:
        return conf
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("execution.checkpointing.interval", f"{settings.job.checkpoint_interval_ms}ms")
    conf.set_string("execution.checkpointing.dir", checkpoint_dir.resolve().as_uri())
    conf.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    conf.set_string("execution.checkpointing.num-retained", "3")
    # The local MiniCluster answers this machine only: its REST API, and the BLOB server, which binds
    # jobmanager.bind-host. The REST API takes no jar uploads. (Flink 2.3 has no setting that turns off
    # cancellation over REST: web.cancel.enable only hides the web UI's button; hence rest_tls.)
    conf.set_string("rest.bind-address", "127.0.0.1")
    conf.set_string("rest.address", "127.0.0.1")
    conf.set_string("jobmanager.bind-host", "127.0.0.1")
    conf.set_string("taskmanager.bind-host", "127.0.0.1")
    conf.set_string("taskmanager.host", "127.0.0.1")
    conf.set_string("web.submit.enable", "false")
    conf.set_string("web.cancel.enable", "false")
    for key, value in (rest_tls.options() if rest_tls else {}).items():
        conf.set_string(key, value)
    # A failing job retries a few times from its checkpoint, then fails visibly instead of looping forever.
    conf.set_string("restart-strategy.type", "fixed-delay")
    conf.set_string("restart-strategy.fixed-delay.attempts", "3")
    conf.set_string("restart-strategy.fixed-delay.delay", "2s")
    if restore is not None:
        conf.set_string("execution.state-recovery.path", restore.resolve().as_uri())
    return conf


def build(settings: Settings, kafka: str, redis: str, checkpoint_dir: Path | None, ids: dict[str, str],
          restore: Path | None = None, lake: str | None = None, ship_code: bool = False,
          rest_tls: RestTls | None = None):
    """pulses -> tick reader (offsets, cross-exchange; with one partition every detector; with the rules, `trades`
    too) -> [with several partitions: detection buckets] -> Redis and the `signals` topic; with a lake, archivers
    copy `ticks` (with `trades`) and `signals` into Parquet.
    `ids`: topic_ids() of topics_read(), which name the lake's objects; `rest_tls`: see flink_configuration;
    `checkpoint_dir` None: on Managed Flink (flink_jobs/application.py), whose parallelism is the service's too."""
    from pyflink.common import Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    from flink_jobs.operators.buckets import Buckets, BucketsWithRules
    from flink_jobs.operators.detection_host import DetectionHost
    from flink_jobs.operators.rule_evaluator import RULES_STATE, RuleHost
    from flink_jobs.readers.rules import RulesReader
    from flink_jobs.readers.ticks import BUCKETS, TickReader, TickReaderWithRules
    from flink_jobs.sinks.lake_archiver import LakeArchiver
    from flink_jobs.sinks.signal_writer import SignalWriter

    unknown = set(settings.job.detectors) - {"triangular", "direct", "rules"}
    if unknown:
        raise ValueError(f"job.detectors: unknown {sorted(unknown)}; choose from triangular, direct, rules")
    security = settings.kafka_security  # the operators carry it and build their clients where they run
    partitions = topic_partitions(kafka, security, TICKS_TOPIC)
    rules = "rules" in settings.job.detectors
    trade_partitions = topic_partitions(kafka, security, TRADES_TOPIC) if rules or lake else partitions
    if trade_partitions != partitions:
        raise RuntimeError(f"topic {TRADES_TOPIC!r} has {trade_partitions} partitions and {TICKS_TOPIC!r} "
                           f"{partitions}: a partition's tick reader (and the lake's archiver) reads the same "
                           f"partition of both, so create them alike (ascep up does)")
    conf = flink_configuration(settings, checkpoint_dir, restore, rest_tls)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    if checkpoint_dir is not None:
        env.set_parallelism(settings.job.parallelism)
    if ship_code:  # a cluster's workers may not have our code
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
    job = settings.job
    rule_changes = None
    if rules:
        rules_reader = RulesReader(kafka, security, RULES_TOPIC, DEADLETTER_TOPIC, 1000, RULES_FETCH_WAIT_MS, redis)
        rule_changes = pulses("rules_pulse", 20, 1).process(rules_reader).name("read rules").broadcast(RULES_STATE)

    def host(sources: int) -> DetectionHost:
        return DetectionHost(settings.arbitrage, sources, job.idle_after_ms,
                             RuleHost(kafka, security, DEADLETTER_TOPIC, settings.rules) if rules else None)

    fused = partitions == 1  # every detector in the reader: no hop at all
    buckets = 0 if fused or not detectors else job.detection_buckets
    reader_class = TickReaderWithRules if fused and rules else TickReader
    reader = reader_class(kafka, security, TICKS_TOPIC, DEADLETTER_TOPIC, settings.arbitrage, job,
                          host(1) if fused and detectors else None, buckets, redis_url=redis,
                          trades_topic=TRADES_TOPIC if rules else None)
    tick_pulses = pulses("tick_pulse", job.pulse_per_second * partitions, partitions)
    ticks = (tick_pulses.connect(rule_changes) if reader_class is TickReaderWithRules else tick_pulses).process(reader)
    ticks.name("read ticks, detect" if fused else "read ticks, cross-exchange arbitrage")
    outputs = [ticks]
    if buckets:
        shares = ticks.get_side_output(BUCKETS).key_by(lambda share: share[0], key_type=Types.INT())
        bucket_class = BucketsWithRules if rules else Buckets
        detected = (shares.connect(rule_changes) if rules else shares).process(bucket_class(host(partitions)))
        outputs.append(detected.name("detect triangular, direct, rules in event-time order"))
    merged = outputs[0].union(*outputs[1:]) if len(outputs) > 1 else outputs[0]
    merged.flat_map(SignalWriter(redis, kafka, security)).name("write to Redis and the signals topic")
    if lake:
        options = settings.lake_options
        writer_options = {"tick_range": options.tick_range, "signal_range": options.signal_range,
                          "row_group_rows": options.row_group_rows}
        for kind, topic in (("ticks", TICKS_TOPIC), ("signals", SIGNALS_TOPIC)):
            archiver = LakeArchiver(kafka, security, topic, ids[topic], kind, lake, settings.s3_endpoint,
                                    writer_options, options.flush_every_s, job.poll_batch, options.fetch_wait_ms,
                                    job.max_future_skew_ms, redis,
                                    (TRADES_TOPIC, ids[TRADES_TOPIC]) if topic == TICKS_TOPIC else None)
            count = topic_partitions(kafka, security, topic)
            pulses(f"{kind}_archive_pulse", 20 * count, count).process(archiver).name(f"archive {kind} to the lake")
    return env
