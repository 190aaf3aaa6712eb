"""`ascep bench TARGET`: run a benchmark and print its figures (see ascep/benchmarks/)."""
from __future__ import annotations

import json

from ascep.benchmarks import TARGETS
from ascep.lazy import add_lazy_subcommands


def add_arguments(parser) -> None:
    add_lazy_subcommands(parser, "ascep.benchmarks", TARGETS, setup=add_target,
                         dest="target", metavar="TARGET", required=True)


def add_target(benchmark, parser) -> None:
    """The options of one benchmark module, once it is chosen."""
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    benchmark.add_arguments(parser)
    parser.set_defaults(func=lambda args: _report(benchmark, benchmark.run(args), args.json))


def _report(benchmark, figures: dict, as_json: bool) -> int:
    """As JSON, as the benchmark's own `table(figures)` when it has one, or one figure a line."""
    if as_json:
        print(json.dumps(figures))
    elif hasattr(benchmark, "table"):
        print(benchmark.table(figures))
    else:
        width = max(map(len, figures), default=0)
        for name, value in figures.items():
            print(f"{name:<{width}}  {value:,.2f}" if isinstance(value, float) else f"{name:<{width}}  {value}")
    return 0
