"""The CLI starts light: `ascep --help` and `ascep config` import none of the heavy libraries, and the
`--help` of every command and benchmark imports only what its options need.

A heavy top-level import in a command or benchmark module fails here. Each check runs in a fresh
interpreter (`python -c` from the repository root, so this tree's code is imported), because this
one has imported everything already.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from ascep import benchmarks, commands
from ascep.benchmarks import TARGETS
from ascep.cli import main
from ascep.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
# What a command may import only once it runs: the heavy libraries and the dev extras (pyproject.toml).
HEAVY = {"pyflink", "pyarrow", "duckdb", "pandas", "numpy", "matplotlib", "django", "channels", "uvicorn",
         "confluent_kafka", "redis", "boto3", "botocore", "requests", "websockets",
         "pytest", "hypothesis", "moto", "playwright", "psutil"}
# `ascep ingest --help` shows defaults that live next to the Kafka producer.
ALLOWED_FOR_HELP = {"ingest": {"confluent_kafka"}}

RUN = """
import json, sys
from ascep.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(*argvs: list[str]) -> list[str]:
    """sys.modules of a fresh interpreter after main(argv) for each argv in turn."""
    done = subprocess.run([sys.executable, "-c", RUN, json.dumps(argvs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def heavy_in(modules: list[str]) -> set[str]:
    return HEAVY & {name.partition(".")[0] for name in modules}


def test_help_and_config_import_no_heavy_library():
    loaded = modules_loaded_by(["--help"], ["config"])
    assert "ascep.commands.config" in loaded, "`ascep config` did not run"
    assert heavy_in(loaded) == set()
    assert [m for m in loaded if m.startswith("ascep.commands.")] == ["ascep.commands.config"]


@pytest.mark.parametrize("argv", [[name] for name in COMMANDS] + [["bench", name] for name in TARGETS], ids=" ".join)
def test_the_help_of_every_command_imports_no_heavy_library(argv):
    loaded = modules_loaded_by([*argv, "--help"])
    assert (f"ascep.benchmarks.{argv[1]}" if len(argv) == 2 else f"ascep.commands.{argv[0]}") in loaded
    assert heavy_in(loaded) - ALLOWED_FOR_HELP.get(argv[0], set()) == set()


@pytest.mark.parametrize(("package", "table"), [(commands, COMMANDS), (benchmarks, TARGETS)])
def test_every_module_is_listed_with_its_help_line(package, table):
    modules = sorted(info.name for info in pkgutil.iter_modules(package.__path__))
    assert sorted(table) == modules
    for name in modules:
        assert callable(importlib.import_module(f"{package.__name__}.{name}").add_arguments)


def help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines to the terminal width


def test_help_still_lists_every_command_and_every_option(capsys):
    top = help_text([], capsys)
    assert all(f"{name} {' '.join(line.split())}" in top for name, line in COMMANDS.items())
    bench = help_text(["bench"], capsys)
    assert all(f"{name} {' '.join(line.split())}" in bench for name, line in TARGETS.items())
    pipeline = help_text(["bench", "pipeline"], capsys)
    assert "--json" in pipeline and "--rates RATES" in pipeline and "--configs CONFIGS" in pipeline
    assert "--restore [RESTORE]" in help_text(["job", "run"], capsys)
    assert "--per-minute PER_MINUTE" in help_text(["ingest", "alphavantage"], capsys)
