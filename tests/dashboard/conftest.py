"""A real dashboard (uvicorn, child process) on a free port, reading a real Redis that RedisSink writes."""
from __future__ import annotations

import pytest
import requests
from dashboard_testing import (
    DASHBOARD_DB,
    MIN_PROFIT_BPS,
    Accounts,
    cross_exchange_signal,
    make_accounts,
    serve_dashboard,
    write_rules_lake,
)
from playwright.sync_api import sync_playwright

from flink_jobs.sinks.redis_sink import RedisSink


@pytest.fixture(scope="session")
def dashboard_redis(redis_url) -> str:
    return f"{redis_url.rsplit('/', 1)[0]}/{DASHBOARD_DB}"


@pytest.fixture(scope="session")
def accounts(tmp_path_factory) -> Accounts:
    """The users of `dashboard` and `rules_dashboard`, which share their database."""
    return make_accounts(tmp_path_factory.mktemp("accounts"))


@pytest.fixture(scope="session")
def dashboard(dashboard_redis, service_logs, tmp_path_factory, accounts) -> str:
    """Base URL of the dashboard; its lake is a directory nothing was written to, and it has no Kafka."""
    unwritten_lake = tmp_path_factory.mktemp("no-lake") / "lake"
    with serve_dashboard(dashboard_redis, service_logs, {"ASCEP_ARBITRAGE__MIN_PROFIT_BPS": MIN_PROFIT_BPS,
                                                         "ASCEP_LAKE": str(unwritten_lake), "ASCEP_KAFKA": "",
                                                         "ASCEP_STATE_DIR": str(accounts.state_dir)}) as url:
        yield url


@pytest.fixture(scope="session")
def rules_lake(tmp_path_factory) -> str:
    return str(write_rules_lake(tmp_path_factory.mktemp("rules-lake") / "lake"))


@pytest.fixture(scope="session")
def rules_dashboard(dashboard_redis, kafka, rules_lake, service_logs, accounts) -> str:
    """Base URL of a dashboard with a real broker (its `rules` topic) and a lake written by
    dashboard_testing.write_rules_lake."""
    with serve_dashboard(dashboard_redis, service_logs, {"ASCEP_KAFKA": kafka, "ASCEP_LAKE": rules_lake,
                                                         "ASCEP_STATE_DIR": str(accounts.state_dir)}) as url:
        yield url


@pytest.fixture
def sink(dashboard_redis) -> RedisSink:
    """The Flink job's own sink, writing to an emptied database."""
    sink = RedisSink(dashboard_redis)
    sink.client.flushdb()
    yield sink
    sink.client.close()


@pytest.fixture
def api(dashboard):
    def get(path: str, expect: int = 200):
        response = requests.get(dashboard + path, timeout=10)
        assert response.status_code == expect, f"GET {path}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/json")
        return response.json()
    return get


@pytest.fixture
def make_signal():
    return cross_exchange_signal


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()
