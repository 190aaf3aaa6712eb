"""`ascep config`: every setting in force, and where it came from (an environment variable, the TOML file,
the running `ascep up`, or the default)."""
from __future__ import annotations

import json
import os
import tomllib

from core.settings import load_settings
from core.stack_file import running_stack, settings_in_force


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true",
                        help='one JSON object: {"settings": {...}, "sources": {"dotted.name": source}}')
    parser.set_defaults(func=run)


def run(args) -> int:
    """Secrets shown masked: the Kafka password as pydantic prints a SecretStr, Redis's token as ***."""
    settings = load_settings()
    config_file = os.environ.get("ASCEP_CONFIG")
    file_values = {}
    if config_file:
        with open(config_file, "rb") as toml:
            file_values = tomllib.load(toml)
    rows = settings_in_force(settings, os.environ, file_values, config_file, running_stack(settings.state_dir))
    if args.json:
        nested: dict = {}
        for row in rows:
            *groups, leaf = row.name.split(".")
            place = nested
            for group in groups:
                place = place.setdefault(group, {})
            place[leaf] = row.value
        print(json.dumps({"settings": nested, "sources": {row.name: row.source for row in rows}}, indent=2))
        return 0
    cells = [("setting", "from", "value"), *((row.name, row.source, _shown(row.value)) for row in rows)]
    widths = [max(len(cell[i]) for cell in cells) for i in range(2)]
    for name, source, value in cells:  # the value last: a map's is long
        print(f"{name.ljust(widths[0])}  {source.ljust(widths[1])}  {value}")
    return 0


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
