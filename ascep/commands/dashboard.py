"""`ascep dashboard`: serve the dashboard alone, against a Redis the job (or `ascep up`) writes to."""
from __future__ import annotations

import argparse

from ascep.services import port_in_use
from core.settings import load_settings
from core.stack_file import redacted, resolve


def add_arguments(parser) -> None:
    parser.add_argument("--host", help="address to bind (default: settings dashboard.host)")
    parser.add_argument("--port", type=int, help="port to listen on (default: settings dashboard.port)")
    parser.add_argument("--redis", help="redis://host:port/db the job writes to (default: settings, then `ascep up`)")
    parser.add_argument("--lake", help="lake directory or s3://bucket/prefix for /analytics "
                                       "(default: settings, then `ascep up`)")
    parser.add_argument("--kafka", help="bootstrap servers of the `rules` topic /api/rules reads and writes "
                                        "(default: settings, then `ascep up`)")
    parser.add_argument("--checkpoints", help="the job's checkpoint folder, for the newest checkpoint in "
                                              "/api/health (default: settings dashboard.checkpoints; none: unknown)")
    parser.add_argument("--anonymous-read", action=argparse.BooleanOptionalAction, default=None,
                        help="may visitors who are not logged in read? (default: settings dashboard.anonymous_read, "
                             "else no)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from dashboard.server import serve

    settings = load_settings()
    host = args.host or settings.dashboard.host
    port = args.port or settings.dashboard.port
    redis_url = resolve(settings, "redis", args.redis)
    if port_in_use(port, host):
        raise RuntimeError(f"port {port} on {host} is already in use; pass --port")
    print(f"dashboard on http://{host}:{port}/ (redis {redacted(redis_url)}); Ctrl-C to stop", flush=True)
    serve(host, port, redis_url, args.lake, args.checkpoints, args.kafka, args.anonymous_read)
    return 0
