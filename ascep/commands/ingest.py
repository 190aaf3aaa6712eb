"""`ascep ingest SOURCE`: stream ticks into Kafka from a simulated market or a live venue."""
from __future__ import annotations

import signal
import threading

from ascep.runtime import resolve
from ascep.settings import load_settings
from ascep.tick import TICKS_TOPIC

SIMULATED = {"sim": "a simulated crypto market with planted opportunities",
             "fx": "a simulated FX market with planted opportunities"}


def add_parser(sub) -> None:
    parser = sub.add_parser("ingest", help="stream ticks into Kafka from a simulated market or a live venue")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, help_text in SIMULATED.items():
        source = sources.add_parser(name, help=help_text)
        source.add_argument("--rate", type=float, default=50.0, help="ticks per second (default 50)")
        source.add_argument("--seed", type=int, default=0, help="same seed, same market (default 0)")
        source.add_argument("--every", type=float, default=20.0,
                            help="seconds between planted opportunities, 0 for none (default 20)")
        source.add_argument("--hold", type=float, default=3.0, help="seconds a planted opportunity lasts (default 3)")
        _common(source)
        source.set_defaults(func=run_simulated)


def _common(parser) -> None:
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--kafka", help="Kafka bootstrap servers (default: settings, then the running `ascep up`)")
    parser.add_argument("--topic", default=TICKS_TOPIC, help=f"topic to produce to (default {TICKS_TOPIC})")


def stop_on_signals() -> threading.Event:
    """SIGTERM (how `ascep up` stops its children) and Ctrl-C end the stream cleanly, flushing what was sent."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_simulated(args) -> int:
    from ingestion.sim import run

    bootstrap = resolve(load_settings(), "kafka", args.kafka)
    sent = run(bootstrap, rate=args.rate, seed=args.seed, stop_event=stop_on_signals(), duration_s=args.duration,
               market=args.source, topic=args.topic, opportunity_every_s=args.every, opportunity_duration_s=args.hold)
    print(f"sent {sent} ticks to {args.topic} at {bootstrap}")
    return 0
