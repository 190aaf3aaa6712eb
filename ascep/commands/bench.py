"""`ascep bench TARGET`: run a benchmark and print its figures (see ascep/benchmarks/)."""
from __future__ import annotations

import importlib
import json
import pkgutil

from ascep import benchmarks


def add_parser(sub) -> None:
    parser = sub.add_parser("bench", help="run a benchmark and print its figures")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"ascep.benchmarks.{info.name}")
        target = targets.add_parser(info.name, help=module.DESCRIPTION)
        target.add_argument("--json", action="store_true", help="print the figures as one JSON object")
        module.add_arguments(target)
        target.set_defaults(func=lambda args, m=module: _report(m.run(args), args.json))


def _report(figures: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(figures))
    else:
        width = max(map(len, figures), default=0)
        for name, value in figures.items():
            print(f"{name:<{width}}  {value:,.2f}" if isinstance(value, float) else f"{name:<{width}}  {value}")
    return 0
