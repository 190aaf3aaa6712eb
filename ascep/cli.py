"""The `ascep` command. Each subcommand is a module in ascep/commands/ with `add_arguments(parser)`, listed
with its help line in ascep.commands.COMMANDS; only the module of the command that runs is imported."""
from __future__ import annotations

import argparse
import logging
import sys

from ascep import __version__
from ascep.commands import COMMANDS
from ascep.lazy import add_lazy_subcommands
from core.log import configure_logging, event


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ascep",
                                     description="Real-time arbitrage signals from market ticks, on Flink.")
    parser.add_argument("--version", action="version", version=f"ascep {__version__}")
    parser.add_argument("--config", help="TOML settings file (same as ASCEP_CONFIG)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    add_lazy_subcommands(parser, "ascep.commands", COMMANDS, dest="command", metavar="COMMAND", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        import os

        os.environ["ASCEP_CONFIG"] = args.config
    configure_logging(args.verbose)
    warn_if_stale()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI's last line of defence: one clear line, no traceback
        if args.verbose:
            raise
        logging.getLogger("ascep").debug("failed", exc_info=True)
        print(f"ascep {args.command}: error: {exc}", file=sys.stderr)
        return 1


def warn_if_stale() -> None:
    """An edited rule engine whose extension was not rebuilt runs its old code (ascep/compiled.py)."""
    from ascep import compiled

    stale = compiled.stale()
    if stale:
        event(logging.getLogger("ascep"), "compiled modules are older than their source: they run the old code",
              logging.WARNING, modules=stale, rebuild=compiled.REBUILD)


if __name__ == "__main__":
    sys.exit(main())
