"""Schemathesis against the running dashboard's generated OpenAPI schema (/api/openapi.json): every operation, with
generated requests, must answer without a 5xx, with a status code the schema documents, in the shape the schema
gives. The dashboard is the one with a broker and a lake (conftest's rules_dashboard), so the rules and lake
operations run for real; the Redis it reads holds a signal and rule counters the job's RedisSink wrote.

Run as schemathesis's own CLI (`st run`), so a failure prints the request that reproduces it. The seed is fixed so
that a run is repeatable; ASCEP_SCHEMATHESIS_SEED=random draws one (printed) to look further.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from dashboard_testing import QUOTES_T0, SPREAD, cross_exchange_signal

from clients.kafka import EMBEDDED
from clients.rules_topic import RulesTopic
from core.cep.rules import parse

pytestmark = pytest.mark.integration

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
MAX_EXAMPLES = 15


@pytest.fixture
def api_token(accounts) -> str:
    """An editor's: the rule writes need one."""
    return accounts.editor


def schemathesis_seed() -> int:
    chosen = os.environ.get("ASCEP_SCHEMATHESIS_SEED", "1")
    return random.randrange(2**32) if chosen == "random" else int(chosen)


def test_the_api_keeps_to_its_openapi_schema(rules_dashboard, kafka, sink, api_token, tmp_path):
    signal = cross_exchange_signal(("kraken", 100.0), ("binance", 100.1), 9.0, QUOTES_T0, closed_after_ms=1_000)
    sink.write_signals([signal])
    RulesTopic(kafka, EMBEDDED).put("st-spread", parse(SPREAD))
    sink.write_rule_stats({"st-spread": {"evaluations": 3, "matches": 1, "errors": 0, "timeouts": 0, "time_ns": 10,
                                         "last_error": None, "version": "0123456789abcdef"}})
    # Half the generated ids are ones that exist, so the operations on a signal or a rule get past their 404.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f"""
[dictionaries.signal_ids]
values = ["{signal['id']}"]
[dictionaries.rule_ids]
values = ["st-spread"]
[parameters]
"path.signal_id" = {{ dictionary = "signal_ids", probability = 0.5 }}
"path.rule_id" = {{ dictionary = "rule_ids", probability = 0.5 }}
""")
    seed = schemathesis_seed()
    argv = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
            f"{rules_dashboard}/api/openapi.json",
            "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(seed), "--workers", "2",
            "--request-timeout", "30", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)]
    argv += ["--header", f"Authorization: Bearer {api_token}"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its cache goes there
                         env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    print(run.stdout[-6_000:])  # the summary and its warnings, shown with -s or on a failure
    assert run.returncode == 0, f"schemathesis (seed {seed}) found problems:\n{run.stdout[-20_000:]}\n{run.stderr}"
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout
