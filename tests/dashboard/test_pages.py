"""The charts, a signal's page and the rule editor in a real Chromium, fed by the job's own sink.

The rule API's writes are tested with the whole stack; here, what the pages do with what Redis holds.
"""
from __future__ import annotations

import re
import secrets

import pytest
from browser_checks import BLUE, pixels_of
from playwright.sync_api import expect

from core.cep.trial import run_rule
from core.clock import now_ms
from core.contracts.tick import Tick

pytestmark = pytest.mark.integration

# The policy the dashboard is served under; the pages must need nothing it forbids.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
          "connect-src 'self' ws: wss:; frame-ancestors 'none'")


def watched_page(browser, width: int = 1440, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def legend_at_right_edge(page, chart: str) -> str:
    """The legend with the cursor on a chart's newest point."""
    over = page.locator(f'[data-chart="{chart}"] .u-over')
    box = over.bounding_box()
    over.hover(position={"x": box["width"] - 1, "y": box["height"] / 2})
    return page.locator(f'[data-chart="{chart}"] .u-legend').inner_text()


def test_charts_draw_the_quotes_spread_and_signals_the_job_writes(browser, dashboard, sink, make_signal):
    now = now_ms()
    sink.write_prices([Tick("kraken", "BTC/USDT", 97_010.5, 97_012.0, 0.4, 0.9, now - 3_000)], 1, 0)
    page, errors = watched_page(browser)
    page.goto(dashboard + "/")
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#chart-symbol option")).to_have_text(["BTC/USDT"])

    for tick in (Tick("binance", "BTC/USDT", 97_020.1, 97_020.2, 1.2, 0.8, now - 1_000),
                 Tick("coinbase", "BTC/USDT", 96_990.0, 96_991.5, 0.3, 0.5, now - 500),
                 Tick("binance", "ETH/USDT", 3_412.55, 3_412.6, 12.0, 9.5, now)):
        sink.write_prices([tick], 1, 0)
    sink.write_signals([make_signal(("coinbase", 96_991.5), ("binance", 97_020.1), 2.95, now - 500),
                        make_signal(("kraken", 97_012.0), ("binance", 97_020.1), 0.83, now - 4_000,
                                    closed_after_ms=1_250)])

    expect(page.locator("#chart-symbol option")).to_have_text(["BTC/USDT", "ETH/USDT"])
    quotes = page.locator('[data-chart="quotes"]')
    for label in ("binance bid", "coinbase ask", "kraken ask"):
        expect(quotes.locator(".u-legend")).to_contain_text(label)
    expect(page.locator('[data-chart="rate"] .u-legend')).to_contain_text("cross-exchange")
    for chart in ("quotes", "spread", "profit"):
        expect(page.locator(f'[data-chart="{chart}"] .plot')).to_have_attribute("data-points", re.compile(r"^[1-9]"))
    # The newest bucket: best bid anywhere (binance 97,020.1) less best ask anywhere (coinbase 96,991.5).
    best_bid, best_ask = 97_020.1, 96_991.5
    spread = (best_bid - best_ask) / ((best_bid + best_ask) / 2) * 1e4
    assert re.search(rf"spread bps\s*{spread:.2f}", legend_at_right_edge(page, "spread"))
    # Each venue's latest quote stands until its next: kraken's, 3 s old, is still drawn.
    assert re.sub(r"\s", "", legend_at_right_edge(page, "quotes")).endswith(
        "binancebid97,020.1binanceask97,020.2coinbasebid96,990coinbaseask96,991.5krakenbid97,010.5krakenask97,012")
    page.mouse.move(0, 0)
    assert pixels_of(page, "quotes", BLUE) > 50  # binance, the first venue, drawn in blue
    assert pixels_of(page, "profit", BLUE) > 50  # the histogram's bars

    page.select_option("#chart-symbol", "ETH/USDT")
    expect(quotes.locator(".u-legend")).not_to_contain_text("kraken")  # ETH/USDT has a binance quote only
    assert errors == []


def test_a_signal_row_opens_its_page_with_legs_and_lifecycle(browser, dashboard, sink, make_signal):
    now = now_ms()
    closed = make_signal(("kraken", 97_012.0), ("binance", 97_020.1), 0.83, now - 4_000, closed_after_ms=1_250)
    closed["legs"][0]["vwap"] = 97_013.25  # a book walked on the buy side only
    sink.write_signals([closed])
    page, errors = watched_page(browser)
    page.goto(dashboard + "/")
    page.locator(f'#signals tr[data-id="{closed["id"]}"] td').nth(2).click()  # anywhere on the row

    expect(page).to_have_url(f"{dashboard}/signals/{closed['id']}")
    legs = page.locator("#legs tbody tr")
    expect(legs).to_have_count(2)
    expect(legs.nth(0).locator("td")).to_have_text(["buy", "kraken", "BTC/USDT", "97,012", "97,013.25"])
    expect(legs.nth(1).locator("td")).to_have_text(["sell", "binance", "BTC/USDT", "97,020.1", "–"])
    facts = page.locator("#lifecycle-facts")
    expect(facts).to_contain_text("peak profit bps0.83")
    expect(facts).to_contain_text("duration1.3 s")
    expect(page.locator("#states tbody tr").last.locator("td").first).to_have_text("close")
    expect(page.locator("#quotes-note")).to_contain_text("No quotes to show")  # this dashboard has no lake
    assert errors == []


def test_a_rule_signal_page_lists_the_events_its_pattern_took(browser, dashboard, sink):
    from core.cep.trial import run_rule

    now = now_ms()
    wide = [Tick("okx", "BTC/USDT", 100.0, ask, 1.0, 1.0, now + i) for i, ask in enumerate((100.5, 101.0))]
    matched = run_rule('DEFINE wide AS spread_bps("BTC/USDT") > 20\nDEFINE wider AS spread("BTC/USDT") > wide.spread\n'
                       "PATTERN wide NEXT wider THEN WIDENING", wide, rule_id="widening")["signals"][0]
    sink.write_signals([matched])
    page, errors = watched_page(browser)
    page.goto(f"{dashboard}/signals/{matched['id']}")
    expect(page.locator("#legs-title")).to_have_text("Pattern events")
    expect(page.locator("#legs tbody tr")).to_have_count(2)
    expect(page.locator("#legs tbody tr").nth(1).locator("td").nth(0)).to_have_text("wider")
    expect(page.locator("#signal-facts")).to_contain_text("rulewidening")
    expect(page.locator("#signal-facts")).to_contain_text("nameWIDENING")
    assert errors == []


def test_an_unknown_signal_id_says_so(browser, dashboard, sink):
    page, errors = watched_page(browser)
    page.goto(dashboard + "/signals/0123456789abcdef0123")
    expect(page.locator("#signal-message")).to_have_text(
        "No signal with id 0123456789abcdef0123: Redis keeps the newest only.")
    assert errors == []


def test_the_rule_editor_highlights_the_rule_language(browser, dashboard):
    page, errors = watched_page(browser)
    page.goto(dashboard + "/rules")
    page.locator(".cm-content").click()
    page.keyboard.type('# widening spreads\nDEFINE wide AS spread_bps("BTC/USDT") > 20\n'
                       "DEFINE wider AS spread(\"BTC/USDT\") > wide.spread\n"
                       "PATTERN wide followed by wider WITHIN 30s THEN WIDENING")

    content = page.locator(".cm-content")
    expect(content.locator(".rl-keyword")).to_have_text(["DEFINE", "AS", "DEFINE", "AS", "PATTERN", "followed", "by",
                                                         "WITHIN", "THEN"])
    expect(content.locator(".rl-function")).to_have_text(["spread_bps", "spread"])
    expect(content.locator(".rl-string")).to_have_text(['"BTC/USDT"', '"BTC/USDT"'])
    expect(content.locator(".rl-number")).to_have_text(["20"])
    expect(content.locator(".rl-duration")).to_have_text(["30s"])
    expect(content.locator(".rl-field")).to_have_text(["spread"])  # wide.spread: a stage's field
    expect(content.locator(".rl-signal")).to_have_text(["WIDENING"])
    expect(content.locator(".rl-comment")).to_have_text(["# widening spreads"])
    expect(page.locator(".cm-lineNumbers .cm-gutterElement", has_text="4")).to_be_visible()
    assert errors == []


def test_the_signals_table_fits_its_card_at_1440_px(browser, dashboard, sink, make_signal, tmp_path):
    now = now_ms()
    sink.write_prices([Tick(venue, symbol, bid, bid + 1.5, 1.0, 1.0, now)
                       for venue in ("binance", "coinbase", "kraken")
                       for symbol, bid in (("BTC/USDT", 97_010.5), ("ETH/USDT", 3_412.55))], 6, 0)
    sink.write_prices([Tick("binance", "BNB/BTC", 0.00915493, 0.00916147, 1.0, 1.0, now),
                       Tick("fx_dealer", "AUD/USD", 0.659943, 0.660192, None, None, now)], 2, 0)
    sink.write_signals([make_signal((buy, 96_991.5), (sell, 97_020.1), 2.95, now - i * 1_000, symbol=symbol)
                        for i, (buy, sell, symbol) in enumerate((("coinbase", "binance", "BTC/USDT"),
                                                                 ("kraken", "coinbase", "ETH/USDT")))])
    # What the default source also makes: FX venues' long names, six-decimal prices, a size in the millions.
    sink.write_signals([make_signal(("fx_dealer", 0.737224), ("fx_ecn", 0.739913), 24.26, now - 3_000,
                                    symbol="CAD/USD", size=2_229_130.0),
                        make_signal(("kraken", 0.0496711), ("binance", 0.049989), 13.88, now - 4_000,
                                    symbol="ETH/BTC", size=6.82167)])
    wide = [Tick("okx", "BTC/USDT", 100.0, 100.5, 1.0, 1.0, now - 5_000)]
    sink.write_signals(run_rule('IF spread_bps("BTC/USDT") > 20 THEN WIDE', wide, rule_id="wide-btc")["signals"])
    sink.write_rule_stats({"widening": {"evaluations": 1_234_567, "matches": 3, "errors": 2, "time_ns": 5_555_555,
                                        "last_error": "division by zero", "version": "0f0f0f0f0f0f0f0f"}})
    page, errors = watched_page(browser, 1440, 1000)
    page.goto(dashboard + "/")
    expect(page.locator("#signals tbody tr")).to_have_count(5)
    expect(page.locator("#rules tbody tr")).to_have_count(1)

    card = page.locator("section", has=page.locator("#signals"))
    page_widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert page_widths[0] <= page_widths[1], f"the page is wider than the window: {page_widths}"
    widths = card.evaluate("s => [s.scrollWidth, s.clientWidth]")
    assert widths[0] <= widths[1], f"the signals table overflows its card: {widths}"
    opened, inside = page.locator("#signals th").last.bounding_box(), card.bounding_box()
    assert opened["x"] + opened["width"] <= inside["x"] + inside["width"]
    page.screenshot(path=tmp_path / "live-1440.png", full_page=True)
    assert errors == []


@pytest.fixture
def strict_browser(browser):
    """A Chromium of its own: a document served by a route counts as public, and the default one would then
    refuse the page's WebSocket to 127.0.0.1 (local network access), which is no CSP matter."""
    chromium = browser.browser_type.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-features=LocalNetworkAccessChecks"])
    yield chromium
    chromium.close()


def test_the_pages_need_nothing_a_strict_content_security_policy_forbids(strict_browser, dashboard, sink,
                                                                          make_signal):
    """Each page is served under the policy, with a fresh nonce in its csp-nonce meta (what django-csp does);
    any inline script, style attribute or nonce-less <style> shows as a violation."""
    now = now_ms()
    signal = make_signal(("coinbase", 96_991.5), ("binance", 97_020.1), 2.95, now)
    sink.write_prices([Tick("kraken", "BTC/USDT", 97_010.5, 97_012.0, 0.4, 0.9, now)], 1, 0)
    sink.write_signals([signal])

    def under_policy(route):
        response = route.fetch()
        nonce = secrets.token_urlsafe(16)
        body = re.sub(r'(<meta name="csp-nonce" content=")[^"]*"', rf'\g<1>{nonce}"', response.text())
        route.fulfill(response=response, body=body,
                      headers={**response.headers, "content-security-policy": POLICY.format(nonce=nonce)})

    page = strict_browser.new_page(viewport={"width": 1440, "height": 900})
    page.add_init_script("document.addEventListener('securitypolicyviolation', (e) => "
                         "(window.violations ||= []).push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`))")
    page.route(re.compile(r"^[^?]*/(rules|signals/\w+)?$"), under_policy)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(dashboard + "/")
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator('[data-chart="quotes"] .u-legend')).to_contain_text("kraken bid")
    assert page.evaluate("window.violations ?? []") == []

    page.goto(f"{dashboard}/signals/{signal['id']}")
    expect(page.locator("#legs tbody tr")).to_have_count(2)
    assert page.evaluate("window.violations ?? []") == []

    page.goto(dashboard + "/rules")
    page.locator(".cm-content").click()
    page.keyboard.type('IF spread_bps("BTC/USDT") > 20 THEN WIDE')
    expect(page.locator(".cm-content .rl-keyword")).to_have_count(2)
    assert page.evaluate("window.violations ?? []") == []
    # CodeMirror's own stylesheet applied: its <style> carried the nonce.
    assert page.locator(".cm-editor").evaluate("e => getComputedStyle(e).display") == "flex"
    assert errors == []
