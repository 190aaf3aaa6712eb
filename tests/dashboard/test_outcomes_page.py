"""/api/analytics/outcomes and the /analytics/outcomes page over the planted lake (tests/lake/planted.py), served
by a real dashboard with the default fees."""
from __future__ import annotations

import re

import pytest
import requests
from dashboard_testing import serve_dashboard
from playwright.sync_api import expect

from core.contracts.times import iso_ms
from tests.lake import planted
from tests.lake.planted import END, T0

pytestmark = pytest.mark.integration

RANGE = {"start": iso_ms(T0), "end": str(END)}  # ISO 8601 and epoch ms alike


@pytest.fixture(scope="module")
def planted_dashboard(tmp_path_factory, dashboard_redis, service_logs, accounts) -> str:
    lake = tmp_path_factory.mktemp("planted") / "lake"
    planted.write(str(lake))
    with serve_dashboard(dashboard_redis, service_logs, {"ASCEP_LAKE": str(lake), "ASCEP_KAFKA": "",
                                                         "ASCEP_STATE_DIR": str(accounts.state_dir)}) as url:
        yield url


def outcomes(base: str, **params) -> requests.Response:
    return requests.get(base + "/api/analytics/outcomes", params={**RANGE, **params}, timeout=30)


def test_the_api_gives_each_signals_outcome_and_the_shares(planted_dashboard):
    response = outcomes(planted_dashboard)
    assert response.status_code == 200, response.text
    report = response.json()
    assert {r["id"]: r["survival_ms"] for r in report["outcomes"]} == {"cross": 700, "book": 2_500, "triangle": 300,
                                                                        "lasting": None}
    everything = [(r["delay_ms"], r["still_profitable"]) for r in report["summary"] if r["dimension"] == "all"]
    assert everything == [(50, 4), (250, 4), (1_000, 2), (5_000, 1)]
    assert sum(report["skipped"].values()) == 2
    listed = outcomes(planted_dashboard, delays="0,800", limit=1).json()
    assert (listed["delays_ms"], listed["outcomes_listed"], len(listed["outcomes"])) == ([0, 800], 1, 1)


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"delays": "50,soon"}, 400, "delay 'soon' is not a whole number of milliseconds"),
    ({"start": str(END), "end": str(T0)}, 400, "empty range"),
    ({"horizon_ms": "100"}, 400, "horizon_ms 100 is shorter than the longest delay 5000 ms"),
    ({"start": "2025-11-01T00:00:00Z"}, 400, "the range is 485.5 hours: here at most 24"),
    ({"start": "2025-11-20T00:00:00Z", "end": "2025-11-20T01:00:00Z"}, 404, "holds no signals from"),
])
def test_bad_requests_say_what_is_wrong(planted_dashboard, params, status, message):
    response = outcomes(planted_dashboard, **params)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_no_lake_is_404(dashboard):
    response = outcomes(dashboard)
    assert response.status_code == 404 and "no lake at" in response.json()["error"]


def test_the_page_draws_the_chart_and_the_shares(browser, planted_dashboard, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{planted_dashboard}/analytics/outcomes?start={RANGE['start']}&end={RANGE['end']}")
    row = page.locator('#outcomes-table tr[data-dimension="type"][data-value="cross_exchange"]')
    expect(row.locator('td[data-delay="1000"]')).to_have_text("66.7 %")
    expect(row.locator('td[data-delay="5000"]')).to_have_text("33.3 %")
    expect(page.locator("#outcomes-plot canvas")).to_have_count(1)
    assert page.locator("#outcomes-plot").get_attribute("data-points") == "8"  # two types, four delays
    expect(page.locator("#outcomes-skipped li")).to_have_count(2)
    page.screenshot(path=tmp_path / "dashboard-outcomes.png", full_page=True)
    assert errors == []


def test_the_page_without_a_range_asks_for_one(browser, planted_dashboard):
    page = browser.new_page()
    page.goto(f"{planted_dashboard}/analytics/outcomes")
    expect(page.locator("#outcomes-message")).to_contain_text("Choose a range")


def test_the_page_has_no_inline_script(planted_dashboard):
    """The dashboard's strict Content-Security-Policy allows scripts by their address only."""
    html = requests.get(f"{planted_dashboard}/analytics/outcomes", timeout=10).text
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert " style=" not in html and "<style" not in html
