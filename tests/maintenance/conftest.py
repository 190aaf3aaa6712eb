"""The maintenance Lambda's handler, loaded from its file: `lambda` is a Python keyword, so
infrastructure/lambda/maintenance cannot be imported as a package."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HANDLER = Path(__file__).resolve().parents[2] / "infrastructure" / "lambda" / "maintenance" / "handler.py"


@pytest.fixture(scope="session")
def maintenance():
    spec = importlib.util.spec_from_file_location("maintenance_handler", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
