"""Reading docker-compose.yml and infrastructure/docker/Dockerfile the way Docker would, for the tests beside this.

No Docker engine runs here, so the tests cannot build or start the images; they read the files instead, and what
they read is what Docker reads: the YAML with its anchors and ${VAR:-default} interpolation, and the Dockerfile's
instructions with their continuation lines.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PRODUCT_TARGET = "ascep"  # the Dockerfile stage of the product image
FLINK_TARGET = "flink"

INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: Any, where: str) -> Any:
    """Compose's ${NAME:-default} with the defaults, as an `up` with none of those variables set would see it;
    a variable without a default is an error here (compose would put an empty string in its place)."""
    if isinstance(value, dict):
        return {key: interpolate(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def default(match: re.Match) -> str:
        if match.group(2) is None:
            raise ValueError(f"{where}: ${{{match.group(1)}}} has no default, so a plain `docker compose up` "
                             f"would run with it empty")
        return match.group(2)
    return VARIABLE.sub(default, value)


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as parsed YAML (anchors and merge keys resolved), before interpolation: what the schema sees."""
    return yaml.safe_load(path.read_text())


def services(compose: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every service, interpolated."""
    compose = compose if compose is not None else load_compose()
    return {name: interpolate(spec, f"services.{name}") for name, spec in compose["services"].items()}


def built_from(service: dict[str, Any]) -> str | None:
    """The Dockerfile stage a service's image is built from, None for a third-party image."""
    build = service.get("build")
    return build.get("target") if isinstance(build, dict) else None


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose also accepts a list of NAME=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """name -> condition (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def exec_form(value: Any, where: str) -> list[str]:
    """A command, entrypoint or healthcheck test as an argv list (compose splits a string form like a shell)."""
    if isinstance(value, str):
        return shlex.split(value)
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise ValueError(f"{where}: expected a string or a list of strings, got {value!r}")
    return list(value)


@dataclass
class Stage:
    name: str
    base: str  # the FROM image, or an earlier stage's name
    line: int
    instructions: list[tuple[int, str, str]] = field(default_factory=list)  # (line, INSTRUCTION, arguments)

    def last(self, instruction: str) -> tuple[int, str] | None:
        found = [(line, args) for line, name, args in self.instructions if name == instruction]
        return found[-1] if found else None


def dockerfile_stages(path: Path) -> dict[str, Stage]:
    """The stages of a Dockerfile by name (an unnamed stage by its index), with their instructions. Continuation
    lines are joined and comments dropped as Docker does; an unknown instruction is an error naming its line."""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    logical, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        instruction, _, args = logical.partition(" ")
        instruction, args, logical = instruction.upper(), args.strip(), ""
        if instruction not in INSTRUCTIONS:
            raise ValueError(f"{path}:{start}: unknown instruction {instruction!r}")
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            current = stages[name] = Stage(name, words[0], start)
        elif current is None:
            if instruction != "ARG":
                raise ValueError(f"{path}:{start}: {instruction} before the first FROM")
        else:
            current.instructions.append((start, instruction, args))
    if logical:
        raise ValueError(f"{path}: the last instruction ends in a line continuation")
    return stages


def json_or_shell(args: str) -> list[str]:
    """ENTRYPOINT/CMD arguments: the exec (JSON) form, or the shell form split into words."""
    if args.startswith("["):
        return json.loads(args)
    return shlex.split(args)


def image_env(stage: Stage) -> dict[str, str]:
    """What the stage's ENV instructions set (NAME=VALUE form), later ones winning."""
    env: dict[str, str] = {}
    for line, instruction, args in stage.instructions:
        if instruction != "ENV":
            continue
        for word in shlex.split(args):
            name, equals, value = word.partition("=")
            if not equals:
                raise ValueError(f"line {line}: ENV {args!r}: write NAME=VALUE")
            env[name] = value
    return env
