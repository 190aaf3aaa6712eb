"""`ascep deploy package`: the application zip for Amazon Managed Service for Apache Flink.

What goes in it, and why, is ascep/application_zip.py."""
from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_OUT = Path("build") / "ascep-flink-application.zip"


def add_arguments(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    package = actions.add_parser("package", help="build the Managed Flink application zip: the job and the "
                                                 "libraries the Flink runtime lacks, for its platform")
    package.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the zip to write (default {DEFAULT_OUT})")
    package.add_argument("--wheels", type=Path, help="a folder to keep the downloaded wheels in between builds: "
                                                     "a rebuild then needs no package index")
    package.set_defaults(func=run_package)


def run_package(args) -> int:
    from ascep.application_zip import build_zip, summary_lines

    def say(line: str) -> None:
        print(f"ascep deploy package: {line}", file=sys.stderr, flush=True)

    summary = build_zip(args.out, args.wheels, say)
    print("\n".join(summary_lines(summary)))
    return 0
