"""/analytics and /api/analytics over a real lake written by the job's LakeWriter, served by
`ascep dashboard --lake`; figures are checked against the rows written."""
from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import pytest
import requests
from dashboard_testing import OPEN, cross_exchange_signal
from playwright.sync_api import expect

from ascep.services import free_port, spawn, wait_for_port
from core.contracts.tick import Tick
from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake.synthetic import TOPIC_ID

pytestmark = pytest.mark.integration

HOUR = 1_763_701_200_000  # an hour boundary, so every row falls in one hour
TICK_TIMES = {"binance": [0, 1_000, 2_000, 3_000, 25_000], "kraken": [500, 1_500, 2_500]}  # binance: one 22 s gap
TICKS = sorted((Tick(venue, "BTC/USDT", 100.0, 100.1, 1.0, 1.0, HOUR + at) for venue, times in TICK_TIMES.items()
                for at in times), key=lambda t: t.ts)
# Every state the job would write: an opportunity that opens then closes at a higher peak, one still
# open, one that opens already closed.
STATES = [
    cross_exchange_signal(("kraken", 100.0), ("binance", 100.03), 3.0, HOUR + 1_000, detected_after_ms=5),
    cross_exchange_signal(("kraken", 100.0), ("binance", 100.04), 4.0, HOUR + 1_000, detected_after_ms=9,
                          closed_after_ms=1_500),
    cross_exchange_signal(("binance", 100.0), ("kraken", 100.12), 12.0, HOUR + 2_000, detected_after_ms=7),
    cross_exchange_signal(("kraken", 100.0), ("binance", 100.005), 0.5, HOUR + 3_000, detected_after_ms=3,
                          closed_after_ms=4_000),
]
GAP_MS = 10_000


def final_states() -> list[dict]:
    """The state each opportunity ends in: its latest update, with the first detection time."""
    finals: dict[str, dict] = {}
    for state in STATES:
        known = finals.get(state["id"])
        first_detected = min(state["detected_at"], known["detected_at"]) if known else state["detected_at"]
        if known is None or state["updated_at"] >= known["updated_at"]:
            finals[state["id"]] = {**state, "detected_at": first_detected}
        else:
            known["detected_at"] = first_detected
    return list(finals.values())


@pytest.fixture(scope="module")
def lake_dashboard(tmp_path_factory, dashboard_redis, service_logs) -> str:
    lake = tmp_path_factory.mktemp("lake") / "lake"
    writer = LakeWriter(open_lake(str(lake)), topic_id=TOPIC_ID, tick_range=1_000, signal_range=1_000,
                        roll_event_span_ms=10**12)
    for offset, tick in enumerate(TICKS):
        writer.add_ticks(0, offset, [tick])
    for offset, state in enumerate(STATES):
        writer.add_signals(0, offset, [state])
    writer.flush(0, len(TICKS))

    port = free_port()
    ascep = str(Path(sys.executable).with_name("ascep"))
    env = {**{k: v for k, v in os.environ.items() if k != "ASCEP_LAKE"}, **OPEN,
           "ASCEP_STATE_DIR": str(tmp_path_factory.mktemp("state"))}
    proc, log_path = spawn(f"dashboard-lake-{port}", [ascep, "dashboard", "--port", str(port), "--redis",
                                                      dashboard_redis, "--lake", str(lake)], service_logs, env=env)
    try:
        wait_for_port(port, proc, "ascep dashboard --lake")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_api_gives_the_figures_of_the_rows_written(lake_dashboard):
    response = requests.get(lake_dashboard + "/api/analytics", timeout=30)
    assert response.status_code == 200, response.text
    figures = response.json()
    finals = final_states()
    assert figures["totals"] == {"ticks": len(TICKS), "signals": len(finals), "signal_states": len(STATES)}

    profits = sorted(s["profit_bps"] for s in finals)
    assert figures["profit_bps"]["max"] == profits[-1] and figures["profit_bps"]["min"] == profits[0]
    histogram = {row["bucket"]: row["signals"] for row in figures["profit_bps"]["histogram"]}
    assert histogram["<1"] == sum(p < 1 for p in profits) and histogram["2-5"] == sum(2 <= p < 5 for p in profits)
    assert histogram["10-20"] == sum(10 <= p < 20 for p in profits) and sum(histogram.values()) == len(finals)

    lasted = [s["closed_at"] - s["event_time"] for s in finals if s["status"] == "closed"]
    assert figures["duration_ms"]["count"] == len(lasted)
    assert figures["duration_ms"]["p50"] == statistics.median(lasted)
    assert figures["duration_ms"]["still_open"] == sum(s["status"] == "open" for s in finals)
    latencies = [s["detected_at"] - s["event_time"] for s in finals]
    assert figures["detection_latency_ms"]["p50"] == statistics.median(latencies)

    for row in figures["ticks_by_venue"]:
        stamps = [HOUR + at for at in TICK_TIMES[row["venue"]]]
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b - a > GAP_MS]
        assert (row["ticks"], row["first_ts"], row["last_ts"]) == (len(stamps), stamps[0], stamps[-1])
        assert (row["gaps"], row["longest_gap_ms"]) == (len(gaps), max(gaps, default=0))
    assert [row["venue"] for row in figures["ticks_by_venue"]] == sorted(TICK_TIMES)


def test_the_gap_threshold_is_a_query_parameter(lake_dashboard):
    wide = requests.get(lake_dashboard + "/api/analytics?gap_seconds=30", timeout=30).json()
    assert wide["gap_ms"] == 30_000
    assert {row["venue"]: row["gaps"] for row in wide["ticks_by_venue"]} == {venue: 0 for venue in TICK_TIMES}
    bad = requests.get(lake_dashboard + "/api/analytics?gap_seconds=soon", timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("query parameter 'gap_seconds': Input should be a valid number")


def test_no_lake_is_404_saying_so(dashboard):
    response = requests.get(dashboard + "/api/analytics", timeout=10)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error.startswith("no lake at ") and "nothing was written there" in error
    page = requests.get(dashboard + "/analytics", timeout=10)
    assert page.status_code == 404 and "No lake yet" in page.text and "nothing was written there" in page.text


def test_the_page_shows_tables_and_bars(browser, lake_dashboard, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(lake_dashboard + "/analytics")
    expect(page.locator("#totals td").first).to_have_text(str(len(TICKS)))
    binance = page.locator('#ticks-by-venue tr[data-venue="binance"]')
    expect(binance.locator("td").nth(1)).to_have_text(str(len(TICK_TIMES["binance"])))
    # The venue with the most ticks has the full-width bar, the other one a proportionally shorter one.
    assert float(binance.locator("rect").get_attribute("width")) == 160
    kraken_bar = float(page.locator('#ticks-by-venue tr[data-venue="kraken"] rect').get_attribute("width"))
    assert kraken_bar == pytest.approx(160 * len(TICK_TIMES["kraken"]) / len(TICK_TIMES["binance"]), abs=0.1)
    expect(page.locator('#profit-histogram tr[data-bucket="10-20"] td').nth(1)).to_have_text("1")
    page.screenshot(path=tmp_path / "dashboard-analytics.png", full_page=True)
    assert errors == []
