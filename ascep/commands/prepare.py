"""`ascep prepare`: make given services ready for the product, as `ascep up` does for its embedded ones.

A deployment whose broker and store are not the embedded ones (docker-compose.yml) runs this once before the
job and the producers: the topics with their partitions and the compacted `rules`, and the lake's bucket on a
fresh S3-compatible store. What exists already is left as it is, so it can run on every start.
"""
from __future__ import annotations

from core.settings import load_settings
from core.stack_file import resolve


def add_arguments(parser) -> None:
    parser.add_argument("--kafka", help="Kafka bootstrap servers (default: settings, then the running `ascep up`)")
    parser.add_argument("--lake", help="s3://bucket/prefix whose bucket to create if missing (default: settings; "
                                       "a local lake needs nothing)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ascep.stack import ensure_topics
    from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC

    settings = load_settings()
    kafka = resolve(settings, "kafka", args.kafka)
    ensure_topics(kafka, settings)
    print(f"topics on {kafka}: {TICKS_TOPIC}, {TRADES_TOPIC}, {SIGNALS_TOPIC} ({settings.job.partitions} "
          f"partition(s) each when created here), {DEADLETTER_TOPIC}, {RULES_TOPIC} (compacted)", flush=True)
    lake = args.lake or settings.lake
    if lake and lake.startswith("s3://"):
        from lake.storage import ensure_bucket

        created = ensure_bucket(lake, settings.s3_endpoint)
        print(f"lake {lake}: bucket {'created' if created else 'present'}"
              + (f" on {settings.s3_endpoint}" if settings.s3_endpoint else ""), flush=True)
    return 0
