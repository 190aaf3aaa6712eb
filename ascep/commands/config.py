"""`ascep config`: the settings in force (defaults, TOML file and ASCEP_ environment merged), as JSON."""
from __future__ import annotations

import json

from core.settings import load_settings
from core.stack_file import redacted


def add_arguments(parser) -> None:
    parser.set_defaults(func=run)


def run(args) -> int:
    """Secrets shown masked: the Kafka password as pydantic prints a SecretStr, Redis's token as ***."""
    settings = load_settings().model_dump(mode="json")
    if settings["redis"]:
        settings["redis"] = redacted(settings["redis"])
    print(json.dumps(settings, indent=2))
    return 0
