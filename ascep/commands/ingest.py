"""`ascep ingest SOURCE`: stream ticks into Kafka from a simulated market or a live venue."""
from __future__ import annotations

import signal
import threading

from core.contracts.topics import TICKS_TOPIC
from core.settings import load_settings
from core.stack_file import resolve, resolve_optional
from ingestion.venues import VENUES
from ingestion.venues.base import DEFAULT_BOOK_LEVELS

# name -> (help, default ticks per second in all)
SIMULATED = {"sim": ("a simulated crypto market with planted opportunities", 50.0),
             "fx": ("a simulated FX market with planted opportunities (the only one with direct arbitrage)", 50.0),
             "sim+fx": ("both in one stream, each at half the rate: what `ascep up` feeds by default", 100.0)}


def add_arguments(parser) -> None:
    # Imported here, not at the top: `ascep record` uses this module's venue options and needs no Kafka.
    from ingestion.fx_poller import API_URL
    from ingestion.sim.fx import FX_PAIRS

    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, (help_text, rate) in SIMULATED.items():
        source = sources.add_parser(name, help=help_text)
        source.add_argument("--rate", type=float, default=rate, help=f"ticks per second in all (default {rate:g})")
        source.add_argument("--seed", type=int, default=0, help="same seed, same market (default 0)")
        source.add_argument("--every", type=float, default=20.0,
                            help="seconds between planted opportunities, 0 for none (default 20)")
        source.add_argument("--hold", type=float, default=3.0, help="seconds a planted opportunity lasts (default 3)")
        source.add_argument("--no-widenings", dest="widenings", action="store_false",
                            help="no spread widenings (by default one quote's spread widens 4-8x for --hold seconds "
                                 "halfway between two plants)")
        source.add_argument("--book-levels", type=int, default=0,
                            help="order-book levels of each side every tick carries, its quote first (default 0: "
                                 "top of book only)")
        source.add_argument("--topic", default=TICKS_TOPIC, help=f"topic to produce to (default {TICKS_TOPIC})")
        add_run_options(source)
        source.add_argument("--kafka", help="Kafka bootstrap servers (default: settings, then the running `ascep up`)")
        source.add_argument("--redis", help="Redis URL for the topic ends health reads "
                                            "(default: settings, then the running `ascep up`, else none)")
        source.set_defaults(func=run_simulated)
    poller = sources.add_parser("alphavantage", help="real FX rates polled from Alpha Vantage (needs an API key)")
    poller.add_argument("--pairs", default=",".join(FX_PAIRS), help="comma-separated pairs (default: ten majors)")
    poller.add_argument("--key", help="API key (default: $ASCEP_ALPHAVANTAGE_KEY)")
    poller.add_argument("--url", default=API_URL, help=f"API endpoint (default {API_URL})")
    poller.add_argument("--per-minute", type=int, default=5, help="most requests in any minute (default 5)")
    poller.add_argument("--per-day", type=int, default=25, help="most requests in any day (default 25)")
    add_run_options(poller)
    poller.add_argument("--kafka", help="Kafka bootstrap servers (default: settings, then the running `ascep up`)")
    poller.add_argument("--redis", help="Redis URL for the topic ends health reads "
                                        "(default: settings, then the running `ascep up`, else none)")
    poller.set_defaults(func=run_poller)
    for name in sorted(VENUES):
        source = sources.add_parser(name, help=f"the live {name} market-data WebSocket")
        add_venue_options(source)
        source.add_argument("--kafka", help="Kafka bootstrap servers (default: settings, then the running `ascep up`)")
        source.add_argument("--redis", help="Redis URL for the health hash ascep:ingest:<venue> and the topic ends "
                                            "(default: settings, then the running `ascep up`, else none)")
        source.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port at /metrics")
        source.set_defaults(func=run_venue, venue=name)


def add_run_options(parser) -> None:
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")


def add_venue_options(parser) -> None:
    parser.add_argument("--symbols", help="comma-separated BASE/QUOTE symbols (default: the venue's usual set)")
    parser.add_argument("--url", help="stream URL instead of the venue's (e.g. a local replay server)")
    parser.add_argument("--book-levels", type=int, default=DEFAULT_BOOK_LEVELS,
                        help=f"order-book levels of each side a tick carries (default {DEFAULT_BOOK_LEVELS})")
    parser.add_argument("--max-frame-bytes", type=int,
                        help="larger frames are dead-lettered (default: the venue's, 64 KiB; 1 MiB for the book "
                             "snapshots of kraken and okx)")
    parser.add_argument("--watchdog", type=float, default=30.0,
                        help="seconds without a data frame before reconnecting (default 30)")
    add_run_options(parser)


def stop_on_signals(duration_s: float | None = None) -> threading.Event:
    """SIGTERM (how `ascep up` stops its children), Ctrl-C or the end of --duration end the run cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if duration_s is not None:
        timer = threading.Timer(duration_s, stop.set)
        timer.daemon = True
        timer.start()
    return stop


def venue_from_args(args):
    from ingestion.venues import get_venue

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    sizes = {} if args.max_frame_bytes is None else {"max_frame_bytes": args.max_frame_bytes}
    return get_venue(args.venue, symbols, book_levels=args.book_levels, **sizes)


def run_simulated(args) -> int:
    from ingestion.sim import run

    settings = load_settings()
    bootstrap = resolve(settings, "kafka", args.kafka)
    # Planted opportunities are sized to beat the fees the detectors will charge.
    sent = run(bootstrap, settings.kafka_security, rate=args.rate, seed=args.seed,
               stop_event=stop_on_signals(args.duration), market=args.source, topic=args.topic,
               ends_to=resolve_optional(settings, "redis", args.redis),
               opportunity_every_s=args.every, opportunity_duration_s=args.hold, fees=settings.arbitrage,
               spread_widenings=args.widenings, book_levels=args.book_levels)
    print(f"sent {sent} ticks to {args.topic} at {bootstrap}")
    return 0


def run_venue(args) -> int:
    from ingestion.connection import run_connector
    from ingestion.metrics import ConnectorMetrics, publish_to_redis, serve_prometheus
    from ingestion.producer import TickProducer

    settings = load_settings()
    bootstrap = resolve(settings, "kafka", args.kafka)
    redis_url = resolve_optional(settings, "redis", args.redis)  # else health goes to the log and --metrics-port only
    venue = venue_from_args(args)
    metrics = ConnectorMetrics(venue.name)
    stop = stop_on_signals(args.duration)
    http = serve_prometheus([metrics], args.metrics_port) if args.metrics_port else None
    if redis_url:
        publish_to_redis(metrics, redis_url, stop, address=args.url or venue.stream_url(venue.symbols))
    try:
        with TickProducer(bootstrap, settings.kafka_security, ends_to=redis_url) as producer:
            run_connector(venue, venue.symbols, producer, stop, url=args.url, metrics=metrics,
                          watchdog_s=args.watchdog)
    finally:
        if http is not None:
            http.shutdown()
    counts = metrics.snapshot()
    print(f"{venue.name}: {counts['frames']} frames, {counts['ticks']} ticks, {counts['deadletters']} dead letters, "
          f"{counts['reconnects']} reconnects, {counts['gaps']} sequence gaps -> {bootstrap}")
    return 0


def run_poller(args) -> int:
    import os
    from dataclasses import asdict

    from ingestion.fx_poller import KEY_ENV, FxPoller
    from ingestion.producer import TickProducer

    key = args.key or os.environ.get(KEY_ENV)
    if not key:
        raise ValueError(f"an Alpha Vantage API key is needed: set {KEY_ENV} or pass --key")
    settings = load_settings()
    bootstrap = resolve(settings, "kafka", args.kafka)
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    ends_to = resolve_optional(settings, "redis", args.redis)
    with TickProducer(bootstrap, settings.kafka_security, ends_to=ends_to) as producer:
        poller = FxPoller(key, pairs, producer, url=args.url,
                          limits=((args.per_minute, 60.0), (args.per_day, 86_400.0)))
        poller.run(stop_on_signals(args.duration))
    print(" ".join(f"{name}={value}" for name, value in asdict(poller.counts).items()))
    return 0
