"""`ascep replay FILE`: publish a JSONL tick file or an exchange recording to Kafka, paced or at full speed."""
from __future__ import annotations

import sys
from pathlib import Path

from clients.kafka import create_topics
from core.contracts.topics import DEADLETTER_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from core.settings import load_settings
from core.stack_file import resolve, resolve_optional


def add_arguments(parser) -> None:
    parser.description = ("FILE is JSONL of normalized ticks and trades (a line with a price is a trade) or an "
                          "exchange recording (detected from its first line). Bad lines and frames go to the "
                          "dead-letter topic with file:line and the reason; the replay goes on.")
    parser.add_argument("file", metavar="FILE")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0,
                      help="replay this many times faster than the file's event/receive times (default 1)")
    pace.add_argument("--max", action="store_true", help="as fast as possible, no pacing")
    parser.add_argument("--retime", action="store_true",
                        help="date the ticks and trades from now: the first one is now, later ones keep their spacing "
                             "divided by --speed, so each is dated when the replay sends it (an old recording looks "
                             "live); not with --max")
    parser.add_argument("--kafka", help="bootstrap servers (default: settings, then the running `ascep up`)")
    parser.add_argument("--redis", help="Redis URL for the topic ends health reads "
                                        "(default: settings, then the running `ascep up`, else none)")
    parser.add_argument("--topic", default=TICKS_TOPIC, help=f"ticks topic (default {TICKS_TOPIC})")
    parser.add_argument("--trades-topic", default=TRADES_TOPIC)
    parser.add_argument("--deadletter-topic", default=DEADLETTER_TOPIC)
    parser.set_defaults(func=run)


def run(args) -> int:
    import signal

    from ingestion.producer import TickProducer, Topics
    from ingestion.replay import replay

    if not Path(args.file).is_file():
        raise FileNotFoundError(f"{args.file}: no such file")
    if not args.max and args.speed <= 0:
        raise ValueError(f"--speed must be > 0, got {args.speed}")
    if args.retime and args.max:
        raise ValueError("--retime dates ticks by the replay's pacing: with --max later ticks would be dated in the "
                         "future (the job dead-letters those beyond job.max_future_skew_ms); use --speed instead")
    settings = load_settings()
    kafka = resolve(settings, "kafka", args.kafka)
    topics = Topics(args.topic, args.trades_topic, args.deadletter_topic)
    # SIGTERM (how `ascep up` stops its source) as Ctrl-C: leaving the `with` block flushes and reports the ends.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    partitions = settings.job.partitions
    security = settings.kafka_security
    create_topics(kafka, security, {topics.ticks: partitions, topics.trades: partitions, topics.deadletter: 1})
    ends_to = resolve_optional(settings, "redis", args.redis)
    with TickProducer(kafka, security, topics=topics, ends_to=ends_to) as producer:
        summary = replay(args.file, producer, None if args.max else args.speed, retime=args.retime)
    print(summary.line(args.file), file=sys.stderr)
    if producer.counts.failed or summary.undelivered:
        print(f"ascep replay: {producer.counts.failed + summary.undelivered} records were not delivered to {kafka}"
              f"{': ' + '; '.join(producer.counts.errors) if producer.counts.errors else ''}", file=sys.stderr)
        return 1
    return 0
