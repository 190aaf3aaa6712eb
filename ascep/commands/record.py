"""`ascep record VENUE --out FILE`: save a venue's live frames in the exchange-recordings format."""
from __future__ import annotations

from pathlib import Path

from ascep.commands.ingest import add_venue_options, stop_on_signals, venue_from_args
from ingestion.venues import VENUES


def add_arguments(parser) -> None:
    parser.add_argument("venue", choices=sorted(VENUES), help="venue to record")
    parser.add_argument("--out", required=True, type=Path, help="recording file (appended to if it exists)")
    add_venue_options(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ingestion.recorder import record

    venue = venue_from_args(args)
    metrics = record(venue, venue.symbols, args.out, stop_on_signals(args.duration), url=args.url,
                     watchdog_s=args.watchdog)
    print(f"recorded {metrics.frames} frames from {venue.name} over {metrics.connects} connection(s) to {args.out}")
    return 0
