"""The dashboard as the control room, in Chromium, on a whole `ascep up` stack fed by its default source.

An editor logs in, writes a rule with a typo and sees the error at its line and column, fixes it, tries it on
the lake's recent ticks, saves it and sees it fire on the live page, where the charts draw the market; edits
it, then deletes it. A viewer's rule write is refused with a 403.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from browser_checks import BLUE, pixels_of
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.integration

# The simulated market's BTC/USDT spreads sit at 1-16 bps, and widen every 20 s: this fires within seconds.
TYPO = 'IF spraed_bps("BTC/USDT") > 3 THEN WIDE'
RULE = 'IF spread_bps("BTC/USDT") > 3 THEN WIDE'
EDITED = 'IF spread_bps("BTC/USDT") > 4 THEN WIDE'
VIEWER_PASSWORD = "a viewer's long passphrase"


def wait_for(condition, what: str, timeout: float = 120, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"no {what} after {timeout} s")


def admin_password(output: str) -> str:
    found = re.search(r"^login     first run: made the editor admin, password (\S+) ", output, re.M)
    assert found, f"ascep up printed no first password:\n{output}"
    return found.group(1)


def log_in(page, url: str, name: str, password: str, then: str) -> None:
    page.goto(f"{url}/accounts/login?next={then}")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{url}{then}")


def type_rule(page, text: str) -> None:
    """Replaces the editor's text by typing, as a user would (CodeMirror takes keystrokes, not fill())."""
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def lake_ticks(url: str) -> int:
    reply = requests.get(f"{url}/api/analytics", timeout=60)
    return sum(row["ticks"] for row in reply.json()["ticks_by_venue"]) if reply.status_code == 200 else 0


def test_an_editor_runs_a_rule_from_the_browser_and_a_viewer_may_not(start_stack, tmp_path):
    stack = start_stack()  # the default source: the simulated crypto and FX markets
    made = subprocess.run([sys.executable, "-m", "ascep.cli", "users", "create", "watcher", "--role", "viewer",
                           "--password-stdin"], cwd=stack.workdir, env=stack.env, input=VIEWER_PASSWORD + "\n",
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    wait_for(lambda: lake_ticks(stack.url) > 0, "ticks in the lake")  # what "Try it" reads
    shots = Path(os.environ.get("ASCEP_SCREENSHOTS", tmp_path))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            editor = browser.new_page(viewport={"width": 1440, "height": 1000})
            errors: list[str] = []
            editor.on("pageerror", lambda exc: errors.append(str(exc)))
            log_in(editor, stack.url, "admin", admin_password(stack.output()), "/rules")

            type_rule(editor, TYPO)
            # "IF " is three characters: the unknown function starts at column 4.
            expect(editor.locator("#rule-errors li").first).to_contain_text(
                "line 1, column 4: unknown function 'spraed_bps'")
            expect(editor.locator(".cm-lintRange-error")).to_have_count(1)  # marked in the text too
            type_rule(editor, RULE)
            expect(editor.locator("#check-status")).to_have_text("No errors.")
            expect(editor.locator("#rule-errors li")).to_have_count(0)

            editor.fill("#rule-id", "wide-btc")
            editor.fill("#trial-minutes", "5")
            editor.click("#try-rule")
            tried = re.compile(r"over the last 5 min .*: [1-9][\d,]* signal")
            expect(editor.locator("#trial-summary")).to_contain_text(tried, timeout=60_000)
            expect(editor.locator("#trial-signals tbody tr").first).to_contain_text("WIDE")
            editor.screenshot(path=str(shots / "rules.png"))

            editor.click("#save-rule")
            expect(editor.locator("#rule-message")).to_contain_text(re.compile(r"Saved wide-btc, version \w+"))
            saved = requests.get(f"{stack.url}/api/rules/wide-btc", timeout=30).json()
            wait_for(lambda: requests.get(f"{stack.url}/api/rules/wide-btc", timeout=30).json()["in_force"],
                     "the saved rule in force in the job")

            live = browser.new_page(viewport={"width": 1440, "height": 1000})
            live.on("pageerror", lambda exc: errors.append(str(exc)))
            live.goto(stack.url + "/")
            expect(live.locator("#status")).to_have_text("live", timeout=30_000)
            expect(live.locator("#signals tbody")).to_contain_text("rule wide-btc", timeout=90_000)
            for chart in ("quotes", "spread", "rate", "profit"):
                expect(live.locator(f'[data-chart="{chart}"] .plot')).to_have_attribute(
                    "data-points", re.compile(r"^[1-9]"), timeout=30_000)
            # Lines and steps in the first series' colour, not only axes: the quotes of the first venue, the
            # rate of the first signal type (the canvases fill as the seconds pass).
            for chart in ("quotes", "rate", "profit"):
                wait_for(lambda chart=chart: pixels_of(live, chart, BLUE) > 100, f"{chart} drawn", timeout=60)
            live.screenshot(path=str(shots / "live.png"))

            editor.locator("#rule-list").get_by_text("wide-btc", exact=True).click()
            expect(editor.locator("#rule-id")).to_have_value("wide-btc")
            type_rule(editor, EDITED)
            expect(editor.locator("#check-status")).to_have_text("No errors.")
            editor.click("#save-rule")
            expect(editor.locator("#rule-message")).to_contain_text(
                re.compile(rf"Saved wide-btc, version (?!{saved['version']}\.)\w+"))
            edited = requests.get(f"{stack.url}/api/rules/wide-btc", timeout=30).json()
            assert edited["version"] != saved["version"] and "> 4" in edited["text"]
            wait_for(lambda: requests.get(f"{stack.url}/api/rules/wide-btc", timeout=30).json()["in_force_version"]
                     == edited["version"], "the edited rule in force")

            editor.click("#delete-rule")
            editor.click("#delete-yes")
            expect(editor.locator("#rule-message")).to_have_text("Deleted wide-btc.")
            assert requests.get(f"{stack.url}/api/rules/wide-btc", timeout=30).status_code == 404

            viewer = browser.new_page()
            log_in(viewer, stack.url, "watcher", VIEWER_PASSWORD, "/rules")
            viewer.fill("#rule-id", "not-mine")
            type_rule(viewer, RULE)
            expect(viewer.locator("#check-status")).to_have_text("No errors.")
            with viewer.expect_response(lambda r: r.url.endswith("/api/rules") and r.request.method == "POST") as sent:
                viewer.click("#save-rule")
            assert sent.value.status == 403
            expect(viewer.locator("#rule-message")).to_contain_text("editor")
            assert errors == []
        finally:
            browser.close()
    assert requests.get(f"{stack.url}/api/rules/not-mine", timeout=30).status_code == 404
    code, _ = stack.stop()
    assert code == 0
