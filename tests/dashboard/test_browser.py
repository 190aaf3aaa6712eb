"""The page in a real Chromium: rows appear as the job writes, without a reload."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.clock import now_ms
from core.contracts.tick import Tick

pytestmark = pytest.mark.integration


def test_prices_and_signals_appear_live(browser, dashboard, sink, make_signal, tmp_path):
    now = now_ms()
    sink.write_prices([Tick("kraken", "BTC/USDT", 97_010.5, 97_012.0, 0.4, 0.9, now)], 1, 0)
    page = browser.new_page(viewport={"width": 1500, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(dashboard + "/")
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator('#prices tr[data-key="kraken:BTC/USDT"]')).to_be_visible()
    expect(page.locator("#signals-empty")).to_be_visible()

    ticks = [Tick("binance", "BTC/USDT", 97_020.1, 97_020.2, 1.2, 0.8, now + 100),
             Tick("coinbase", "BTC/USDT", 96_990.0, 96_991.5, 0.3, 0.5, now + 120),
             Tick("binance", "ETH/USDT", 3_412.55, 3_412.6, 12.0, 9.5, now + 130)]
    sink.write_prices(ticks, 3, 0)
    opened = make_signal(("coinbase", 96_991.5), ("binance", 97_020.1), 2.95, now + 100, size=0.3)
    closed = make_signal(("kraken", 97_012.0), ("binance", 97_020.1), 0.83, now - 4_000, closed_after_ms=1_250)
    sink.write_signals([opened, closed])

    binance = page.locator('#prices tr[data-key="binance:BTC/USDT"]')
    expect(binance).to_contain_text("97,020.1")
    expect(binance.locator("td").nth(4)).to_have_text("0.01")  # spread in bps
    expect(binance.locator("td").nth(2)).to_have_class("num best")  # the best bid of BTC/USDT
    row = page.locator(f'#signals tr[data-id="{opened["id"]}"]')
    expect(row).to_contain_text("2.95")
    expect(row).to_contain_text("open")
    expect(page.locator(f'#signals tr[data-id="{closed["id"]}"]')).to_contain_text("1.3 s")
    expect(page.locator("#signals tbody tr")).to_have_count(2)
    expect(page.locator('[data-counter="ticks"]')).to_have_text("4", timeout=8_000)
    page.wait_for_timeout(300)  # let the highlight animations settle before the picture
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    assert errors == []


def test_rule_signals_and_rule_counters_are_shown(browser, dashboard, sink, tmp_path):
    from core.cep.trial import run_rule

    now = now_ms()
    wide = [Tick("okx", "BTC/USDT", 100.0, ask, 1.0, 1.0, now + i) for i, ask in enumerate((100.5, 101.0))]
    condition = run_rule('IF spread_bps("BTC/USDT") > 20 THEN WIDE', wide[:1], rule_id="wide-btc")
    pattern = run_rule('DEFINE wide AS spread_bps("BTC/USDT") > 20\nDEFINE wider AS spread("BTC/USDT") > wide.spread\n'
                       "PATTERN wide NEXT wider THEN WIDENING", wide, rule_id="widening")
    sink.write_signals(condition["signals"] + pattern["signals"])
    sink.write_rule_stats({"wide-btc": {**condition["stats"], "version": "a1b2c3d4e5f60718"},
                           "widening": {**pattern["stats"], "errors": 2, "last_error": "division by zero",
                                        "version": "0f0f0f0f0f0f0f0f"}})
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(dashboard + "/")

    opened = page.locator(f'#signals tr[data-id="{condition["signals"][0]["id"]}"]')
    expect(opened.locator("td.route")).to_have_text("WIDErule wide-btc")
    matched = page.locator(f'#signals tr[data-id="{pattern["signals"][0]["id"]}"]')
    expect(matched.locator("td.route")).to_have_text("WIDENINGrule widening2 events")
    expect(matched.locator("td").nth(0)).to_have_text("rule")
    expect(matched.locator("td").nth(2)).to_have_text("–")  # a rule gives no profit figure
    counters = page.locator('#rules tr[data-rule="widening"] td')
    expect(counters.nth(1)).to_have_text("0f0f0f0f0f0f0f0f")
    expect(counters.nth(2)).to_have_text(str(pattern["stats"]["evaluations"]))
    expect(counters.nth(4)).to_have_text("2")
    expect(counters.nth(6)).to_have_text("division by zero")
    expect(page.locator("#rules tbody tr")).to_have_count(2)
    page.screenshot(path=tmp_path / "dashboard-rules.png", full_page=True)

    page.click("header nav >> text=Analytics")
    expect(page.locator("#no-lake")).to_contain_text("nothing was written there")
    assert errors == []


def test_the_badge_follows_health_with_the_reason_as_its_title(browser, dashboard, sink):
    from core.contracts.redis_keys import progress_field, topic_end_field
    from core.progress import Progress

    now = now_ms()
    sink.write_prices([Tick("kraken", "BTC/USDT", 97_010.5, 97_012.0, 0.4, 0.9, now)], 1, 0)
    page = browser.new_page()
    page.goto(dashboard + "/")
    expect(page.locator("#status")).to_have_text("live")

    sink.raise_topic_ends({topic_end_field("ticks", 0): 80})
    sink.report_progress(progress_field("read", "ticks", 0), Progress(30, now - 60_000, now).to_json())
    status = page.locator("#status")
    expect(status).to_have_text("down", timeout=8_000)
    expect(status).to_have_attribute("title", re.compile(r"^the tick reader of ticks:0 is stalled: 50 records wait "
                                                         r"and it has not moved for 6\d s$"))
    sink.report_progress(progress_field("read", "ticks", 0), Progress(80, now_ms(), now_ms()).to_json())
    expect(status).to_have_text("live", timeout=8_000)
