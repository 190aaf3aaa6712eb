"""The layer contracts in pyproject.toml hold for the tree, and an import that runs up a layer breaks them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "lake", "clients", "ingestion", "flink_jobs", "dashboard", "ascep")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """import-linter over the packages under `tree`, which come first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def copy_of_the_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def add_import(module: Path, statement: str) -> None:
    module.write_text(module.read_text() + f"\n{statement}\n")


def test_the_tree_keeps_every_layer_contract(copy_of_the_tree):
    result = lint_imports(copy_of_the_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize("module, statement, broken", [
    ("core/contracts/tick.py", "import ascep.cli", "core.contracts.tick -> ascep.cli"),
    ("lake/reader.py", "from flink_jobs import topology", "lake.reader -> flink_jobs.topology"),
    ("ingestion/producer.py", "import dashboard.views", "ingestion.producer -> dashboard.views"),
    ("core/contracts/signal.py", "from core.cep import engine", "core.contracts.signal -> core.cep.engine"),
    ("core/arbitrage/direct.py", "import pyflink", "core.arbitrage.direct -> pyflink"),
    ("clients/kafka.py", "import lake.writer", "clients.kafka -> lake.writer"),
    ("core/settings.py", "from clients import kafka", "core.settings -> clients.kafka"),
])
def test_an_import_up_a_layer_fails(copy_of_the_tree, tmp_path, module, statement, broken):
    tree = tmp_path / "tree"
    shutil.copytree(copy_of_the_tree, tree)
    add_import(tree / module, statement)
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert broken in result.stdout
