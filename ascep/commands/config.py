"""`ascep config`: the settings in force (defaults, TOML file and ASCEP_ environment merged), as JSON."""
from __future__ import annotations

import json

from core.settings import load_settings


def add_arguments(parser) -> None:
    parser.set_defaults(func=run)


def run(args) -> int:
    print(json.dumps(load_settings().model_dump(mode="json"), indent=2))
    return 0
