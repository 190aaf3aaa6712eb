"""The page in a real Chromium: rows appear as the job writes, without a reload."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect, sync_playwright

from ascep.tick import Tick

pytestmark = pytest.mark.integration

SCREENSHOT = "/tmp/dashboard.png"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


def test_prices_and_signals_appear_live(browser, dashboard, sink, make_signal):
    now = int(time.time() * 1000)
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
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert errors == []
