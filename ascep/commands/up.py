"""`ascep up`: the whole product on this machine, with embedded services where none is given."""
from __future__ import annotations

from core.settings import load_settings

DEFAULT_SOURCE = "sim+fx"  # FX has direct arbitrage, crypto the cross-exchange and triangular kinds


def add_arguments(parser) -> None:
    parser.add_argument("--kafka", help="use this Kafka bootstrap address instead of the embedded broker")
    parser.add_argument("--redis", help="use this Redis URL instead of the embedded Redis")
    parser.add_argument("--port", type=int, default=None, help="dashboard port (default 8000)")
    parser.add_argument("--source", default=DEFAULT_SOURCE,
                        help=f"data fed in: {DEFAULT_SOURCE} (default: the simulated crypto and FX markets), sim "
                             "(crypto only), fx, replay:FILE or none")
    parser.add_argument("--restore", action="store_true", help="restore the job from its latest checkpoint")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ascep.stack import up

    settings = load_settings()
    return up(settings, args.kafka or settings.kafka, args.redis or settings.redis,
              args.port or settings.dashboard.port, args.source, args.restore)
