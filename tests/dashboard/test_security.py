"""Accounts and permissions, against real dashboards (uvicorn child processes) on a real Redis, with users and
tokens made by `ascep users` in the dashboards' own database: who may read and write, CSRF on session writes,
API tokens and their revocation, rate limits shared by two processes, the security headers and CORS.

The closed pair lets nobody read without credentials and believes one proxy's X-Forwarded-For, so each test
that counts logins gives itself a client address of its own. It has no Kafka: a rule write that gets past the
checks is a 503 naming Kafka there; the writes that succeed are on conftest's rules_dashboard (its accounts)."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ascep.services import start_dashboard
from core.contracts.tick import Tick

pytestmark = pytest.mark.integration

SECURITY_DB = 10  # a Redis database of its own: the rate-limit counters of these dashboards only
PASSWORDS = {"erin": "erin's long passphrase", "victor": "victor's long passphrase", "rita": "rita's long passphrase"}
T0 = 1_763_700_000_000
TRIAL = {"rule": 'IF spread_bps("BTC/USDT") > 20 THEN WIDE',
         "ticks": [Tick("binance", "BTC/USDT", 100.0, 100.5, 1.0, 1.0, T0).to_json_dict()]}
CORS_ORIGIN = "https://ops.example.com"
RULE_TEST_LIMIT, RULE_WRITE_LIMIT, BACKTEST_LIMIT, LOGIN_LIMIT = 3, 3, 2, 4
HIGH = 'IF price("BTC/USDT") > 100 THEN HIGH'
# Every rule write: (method, path, body).
WRITES = (("POST", "/api/rules", {"id": "sec-high", "text": HIGH}),
          ("PUT", "/api/rules/sec-high", {"text": HIGH}),
          ("PUT", "/api/rules/sec-high", {"enabled": False}),
          ("DELETE", "/api/rules/sec-high", None))
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def users_cli(state_dir: Path, *args: str, stdin: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ascep.cli", "users", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "ASCEP_STATE_DIR": str(state_dir), **(env or {})})


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Path:
    """The closed pair's accounts: erin edits, victor and rita view; a token for each of erin and victor."""
    state = tmp_path_factory.mktemp("accounts")
    for name, role in (("erin", "editor"), ("victor", "viewer"), ("rita", "viewer")):
        ok(users_cli(state, "create", name, "--role", role, "--password-stdin", stdin=PASSWORDS[name] + "\n"))
    return state


@pytest.fixture(scope="module")
def tokens(state_dir) -> dict[str, str]:
    return {name: ok(users_cli(state_dir, "token", "create", name, "--label", "tests")).strip()
            for name in ("erin", "victor")}


@pytest.fixture(scope="module")
def closed(redis_url, service_logs, state_dir):
    """Two dashboards on one Redis and one database, as two tasks behind one load balancer."""
    redis = f"{redis_url.rsplit('/', 1)[0]}/{SECURITY_DB}"
    env = {"ASCEP_STATE_DIR": str(state_dir), "ASCEP_DASHBOARD__ANONYMOUS_READ": "false",
           "ASCEP_DASHBOARD__PROXY_COUNT": "1", "ASCEP_DASHBOARD__CORS_ORIGINS": json.dumps([CORS_ORIGIN]),
           "ASCEP_DASHBOARD__RATE_LIMITS__RULE_TEST": f"{RULE_TEST_LIMIT}/60s",
           "ASCEP_DASHBOARD__RATE_LIMITS__RULE_WRITE": f"{RULE_WRITE_LIMIT}/60s",
           "ASCEP_DASHBOARD__RATE_LIMITS__BACKTEST": f"{BACKTEST_LIMIT}/60s",
           "ASCEP_DASHBOARD__RATE_LIMITS__LOGIN": f"{LOGIN_LIMIT}/60s", "ASCEP_KAFKA": ""}
    servers = [start_dashboard(redis, service_logs, env=env) for _ in range(2)]
    yield [server.address for server in servers]
    for server in servers:
        server.stop()


def address() -> dict[str, str]:
    """A client address of its own, as the load balancer in front would say it."""
    return {"X-Forwarded-For": next(_addresses)}


def logged_in(base: str, name: str, password: str | None = None) -> requests.Session:
    """A browser's session: the login page for the CSRF cookie, then the form posted as the page does."""
    session = requests.Session()
    session.headers.update(address())
    session.get(f"{base}/accounts/login", timeout=10).raise_for_status()
    response = session.post(f"{base}/accounts/login", timeout=30, allow_redirects=False,
                            data={"username": name, "password": password or PASSWORDS[name],
                                  "csrfmiddlewaretoken": session.cookies["csrftoken"], "next": "/analytics"},
                            headers={"Origin": base})
    assert response.status_code == 302 and response.headers["Location"] == "/analytics", response.text
    return session


def trial(base: str, client=requests, expect: int = 200, **headers: str) -> dict:
    response = client.post(f"{base}/api/rules/wide/test", json=TRIAL, timeout=30, headers=headers)
    assert response.status_code == expect, f"{response.status_code} {response.text}"
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- who may read ---------------------------------------------------------------------------------------------


def test_without_anonymous_reads_a_visitor_must_log_in(closed):
    base = closed[0]
    refused = requests.get(f"{base}/api/signals", timeout=10)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert "log in first" in refused.json()["error"] and "Authorization: Bearer" in refused.json()["error"]
    assert trial(base, expect=401)["error"].startswith("log in first")
    page = requests.get(f"{base}/analytics?gap_seconds=5", timeout=10, allow_redirects=False)
    assert page.status_code == 302 and page.headers["Location"] == "/accounts/login?next=/analytics%3Fgap_seconds%3D5"
    assert requests.get(f"{base}/accounts/login", timeout=10).status_code == 200
    assert requests.get(f"{base}/api/ping", timeout=10).json() == {"ok": True}  # the load balancer's check
    with pytest.raises(InvalidStatus) as refused_socket:
        connect(base.replace("http://", "ws://") + "/ws/live", origin=base, proxy=None, open_timeout=10)
    assert refused_socket.value.response.status_code == 403


def test_with_anonymous_reads_anyone_reads_but_writes_nothing(dashboard):
    assert requests.get(f"{dashboard}/api/me", timeout=10).json() == {"name": "", "role": "anonymous",
                                                                        "via": "anonymous"}
    assert requests.get(f"{dashboard}/", timeout=10, allow_redirects=False).status_code == 200
    assert trial(dashboard)["ticks"] == 1  # compute only: READ


def test_a_viewer_and_an_editor_read_with_a_token_or_a_session(closed, tokens):
    for name, role in (("erin", "editor"), ("victor", "viewer")):
        assert requests.get(f"{closed[1]}/api/me", headers=bearer(tokens[name]), timeout=10).json() == {
            "name": name, "role": role, "via": "token"}
        session = logged_in(closed[0], name)
        assert session.get(f"{closed[1]}/api/me", timeout=10).json() == {"name": name, "role": role,
                                                                          "via": "session"}
        page = session.get(f"{closed[1]}/", timeout=10)
        assert page.status_code == 200
        assert re.search(rf"<span>{name} <small>{role}</small></span>", page.text), "the header names the user"


def test_the_live_socket_takes_a_session_or_a_token(closed, tokens):
    ws = closed[0].replace("http://", "ws://") + "/ws/live"
    session = logged_in(closed[0], "victor")
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    for url, headers in ((ws, {"Cookie": cookie}), (ws, bearer(tokens["victor"])),
                         (f"{ws}?token={tokens['victor']}", {})):
        with connect(url, origin=closed[0], proxy=None, open_timeout=10, additional_headers=headers) as socket:
            socket.send(json.dumps({"kind": "subscribe_signals"}))
            assert "signals" in json.loads(socket.recv(timeout=10))  # what the subscription matches now
    with pytest.raises(InvalidStatus):
        connect(f"{ws}?token=ascep_not-a-token", origin=closed[0], proxy=None, open_timeout=10)


# -- who may write --------------------------------------------------------------------------------------------


def write(base: str, method: str, path: str, body, client=requests, **headers: str) -> requests.Response:
    return client.request(method, base + path, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize("method, path, body", WRITES)
def test_anonymous_writes_are_refused_even_where_anyone_may_read(dashboard, closed, method, path, body):
    for base in (dashboard, closed[0]):
        refused = write(base, method, path, body)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"].startswith("log in first") and refused.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method, path, body", WRITES)
def test_a_viewers_writes_are_refused_by_token_and_by_session(rules_dashboard, accounts, method, path, body):
    by_token = write(rules_dashboard, method, path, body, **bearer(accounts.viewer))
    assert by_token.status_code == 403
    assert by_token.json() == {"error": "viewer is a viewer: writing rules needs the editor role"}
    session = logged_in(rules_dashboard, "viewer", "the viewer's long passphrase")
    by_session = write(rules_dashboard, method, path, body, session, **{"X-CSRFToken": session.cookies["csrftoken"]})
    assert by_session.status_code == 403 and "needs the editor role" in by_session.json()["error"]


def test_an_editor_writes_with_a_token_or_with_a_session_and_its_csrf_token(rules_dashboard, accounts):
    created = write(rules_dashboard, "POST", "/api/rules", {"id": "sec-editor", "text": HIGH},
                    **bearer(accounts.editor))
    assert created.status_code == 201, created.text
    session = logged_in(rules_dashboard, "editor", "the editor's long passphrase")
    forged = write(rules_dashboard, "PUT", "/api/rules/sec-editor", {"enabled": False}, session)
    assert forged.status_code == 403 and forged.json()["error"].startswith("CSRF check failed (CSRF token missing)")
    csrf = {"X-CSRFToken": session.cookies["csrftoken"]}
    disabled = write(rules_dashboard, "PUT", "/api/rules/sec-editor", {"enabled": False}, session, **csrf)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert write(rules_dashboard, "DELETE", "/api/rules/sec-editor", None, session, **csrf).json() == {
        "id": "sec-editor", "deleted": True}



def test_in_chromium_an_editor_saves_a_rule_and_a_viewer_is_told_why_not(browser, rules_dashboard, accounts):
    """The login form, then the rule editor's Save: its write carries the session and the page's CSRF token."""
    for name, said in (("editor", "Saved sec-browser, version"),
                       ("viewer", "Not allowed: your account may only view rules; changing them needs an editor's "
                                  "account. (403: viewer is a viewer: writing rules needs the editor role)")):
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{rules_dashboard}/accounts/login?next=/rules")
            page.fill("input[name=username]", name)
            page.fill("input[name=password]", f"the {name}'s long passphrase")
            page.click("form.login button[type=submit]")
            page.wait_for_url(f"{rules_dashboard}/rules")
            expect(page.locator("#account")).to_contain_text(f"{name} {name}")
            page.fill("#rule-id", "sec-browser")
            page.locator(".cm-content").click()
            page.keyboard.type(HIGH)
            page.click("#save-rule")
            expect(page.locator("#rule-message")).to_contain_text(said)
        finally:
            context.close()
    assert write(rules_dashboard, "DELETE", "/api/rules/sec-browser", None, **bearer(accounts.editor)).ok

def test_checking_trying_and_backtesting_are_reads(rules_dashboard, accounts):
    """They write nothing: a viewer may, as anyone may run `ascep rules test|backtest`."""
    viewer = bearer(accounts.viewer)
    assert write(rules_dashboard, "POST", "/api/rules/check", {"text": HIGH}, **viewer).json()["ok"] is True
    assert trial(rules_dashboard, **viewer)["ticks"] == 1
    backtest = write(rules_dashboard, "POST", "/api/rules/any/backtest", {"text": HIGH, "minutes": 1}, **viewer)
    assert backtest.status_code == 200, backtest.text

# -- CSRF -----------------------------------------------------------------------------------------------------


def test_a_session_post_needs_the_csrf_token_and_a_token_post_does_not(closed, tokens, state_dir):
    ok(users_cli(state_dir, "token", "create", "rita", "--label", "csrf"))
    session = logged_in(closed[0], "erin")
    missing = trial(closed[0], session, expect=403)["error"]
    assert missing.startswith("CSRF check failed (CSRF token missing)") and "X-CSRFToken" in missing
    wrong = trial(closed[0], session, expect=403, **{"X-CSRFToken": "x" * 32})["error"]
    assert wrong.startswith("CSRF check failed (CSRF token from the 'X-Csrftoken' HTTP header incorrect)")
    csrf = session.cookies["csrftoken"]
    foreign = trial(closed[0], session, expect=403, **{"X-CSRFToken": csrf, "Origin": "http://evil.example"})
    assert "Origin checking failed" in foreign["error"]
    assert trial(closed[1], session, **{"X-CSRFToken": csrf})["ticks"] == 1  # the other process: same session
    assert trial(closed[0], **bearer(tokens["erin"]))["ticks"] == 1  # no cookie, no CSRF to check


def test_the_login_and_logout_forms_need_the_csrf_token(closed):
    base = closed[0]
    forged = requests.post(f"{base}/accounts/login", data={"username": "erin", "password": PASSWORDS["erin"]},
                           headers=address(), timeout=10, allow_redirects=False)
    assert forged.status_code == 403 and forged.json()["error"].startswith("CSRF check failed")
    session = logged_in(base, "victor")
    assert session.get(f"{base}/accounts/logout", timeout=10).status_code == 405  # a link cannot log you out
    assert session.post(f"{base}/accounts/logout", timeout=10, allow_redirects=False).status_code == 403
    out = session.post(f"{base}/accounts/logout", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
                       headers={"Origin": base}, timeout=10, allow_redirects=False)
    assert out.status_code == 302 and out.headers["Location"] == "/accounts/login"
    assert session.get(f"{base}/api/me", timeout=10).status_code == 401


def test_a_wrong_password_is_refused_and_a_login_never_leaves_the_site(closed):
    session = requests.Session()
    session.headers.update(address())
    session.get(f"{closed[0]}/accounts/login", timeout=10)
    form = {"username": "erin", "password": "not it at all", "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    wrong = session.post(f"{closed[0]}/accounts/login", data=form, headers={"Origin": closed[0]}, timeout=30)
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    away = session.post(f"{closed[0]}/accounts/login", headers={"Origin": closed[0]}, timeout=30,
                        allow_redirects=False, data={**form, "password": PASSWORDS["erin"],
                                                     "next": "https://evil.example/"})
    assert away.status_code == 302 and away.headers["Location"] == "/"


# -- tokens ---------------------------------------------------------------------------------------------------


def test_a_revoked_token_and_a_removed_users_token_are_refused_by_every_process(closed, state_dir):
    ok(users_cli(state_dir, "create", "tess", "--role", "editor", "--password-stdin",
                 stdin="tess's long passphrase\n"))
    first = ok(users_cli(state_dir, "token", "create", "tess", "--label", "first")).strip()
    second = ok(users_cli(state_dir, "token", "create", "tess", "--label", "second")).strip()
    for base in closed:
        assert requests.get(f"{base}/api/signals", headers=bearer(first), timeout=10).status_code == 200
    listed = [json.loads(line) for line in ok(users_cli(state_dir, "token", "list", "tess", "--json")).splitlines()]
    assert [(t["label"], t["revoked_at"]) for t in listed] == [("first", None), ("second", None)]
    assert listed[0]["last_used_at"] != "never" and listed[1]["last_used_at"] == "never"
    assert first not in json.dumps(listed) and ok(users_cli(state_dir, "token", "revoke", "tess",
                                                            str(listed[0]["id"]))).startswith("token")
    for base in closed:
        refused = requests.get(f"{base}/api/signals", headers=bearer(first), timeout=10)
        assert refused.status_code == 401 and refused.json()["error"].startswith("the API token is unknown or revoked")
        assert requests.get(f"{base}/api/signals", headers=bearer(second), timeout=10).status_code == 200
    ok(users_cli(state_dir, "remove", "tess"))
    for base in closed:
        assert requests.get(f"{base}/api/signals", headers=bearer(second), timeout=10).status_code == 401


def test_a_password_change_ends_the_users_sessions_and_a_role_change_applies_at_once(closed, state_dir):
    ok(users_cli(state_dir, "create", "pat", "--role", "viewer", "--password-stdin", stdin="pat's long passphrase\n"))
    token = ok(users_cli(state_dir, "token", "create", "pat", "--label", "script")).strip()
    session = logged_in(closed[0], "pat", "pat's long passphrase")
    assert session.get(f"{closed[1]}/api/signals", timeout=10).status_code == 200  # one database, both processes
    changed = ok(users_cli(state_dir, "password", "pat", "--password-stdin", stdin="pat's new passphrase\n"))
    assert "its browser sessions have ended" in changed
    for base in closed:
        assert session.get(f"{base}/api/signals", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/signals", headers=bearer(token), timeout=10).status_code == 200
    refused = users_cli(state_dir, "password", "pat", "--password-stdin", stdin="short\n")
    assert refused.returncode == 1 and "password for 'pat' refused" in refused.stderr
    logged_in(closed[1], "pat", "pat's new passphrase")

    rule = {"id": "sec-pat", "text": HIGH}
    assert requests.post(f"{closed[0]}/api/rules", json=rule, headers=bearer(token), timeout=30).status_code == 403
    assert ok(users_cli(state_dir, "role", "pat", "editor")).strip() == "user pat is now editor"
    assert [u["role"] for u in map(json.loads, ok(users_cli(state_dir, "list", "--json")).splitlines())
            if u["name"] == "pat"] == ["editor"]
    assert requests.post(f"{closed[1]}/api/rules", json=rule, headers=bearer(token), timeout=30).status_code != 403
    ok(users_cli(state_dir, "role", "pat", "viewer"))
    assert requests.delete(f"{closed[0]}/api/rules/sec-pat", headers=bearer(token), timeout=30).status_code == 403
    unknown = users_cli(state_dir, "role", "nobody", "viewer")
    assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr


# -- rate limits ----------------------------------------------------------------------------------------------


def test_the_trial_limit_is_shared_by_two_processes_and_says_which_limit(closed, state_dir):
    token = ok(users_cli(state_dir, "token", "create", "rita", "--label", "limits")).strip()
    for i in range(RULE_TEST_LIMIT):
        trial(closed[i % 2], **bearer(token))
    over = requests.post(f"{closed[1]}/api/rules/wide/test", json=TRIAL, headers=bearer(token), timeout=30)
    assert over.status_code == 429
    body = over.json()
    assert body["limit"] == "rule_test"
    assert re.fullmatch(rf"rate limit rule_test: {RULE_TEST_LIMIT} per 60 s; retry in (\d+) s", body["error"])
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert trial(closed[0], **bearer(token), expect=429)["limit"] == "rule_test"
    # Per user: another user's allowance is untouched.
    victor = ok(users_cli(state_dir, "token", "create", "victor", "--label", "limits")).strip()
    assert trial(closed[0], **bearer(victor))["ticks"] == 1



def test_rule_writes_and_backtests_have_limits_of_their_own(closed, state_dir):
    ok(users_cli(state_dir, "create", "wes", "--role", "editor", "--password-stdin",
                 stdin="wes's long passphrase\n"))
    token = bearer(ok(users_cli(state_dir, "token", "create", "wes")).strip())
    for i in range(RULE_WRITE_LIMIT):  # past the checks and the limit: no Kafka here
        answer = write(closed[i % 2], "PUT", "/api/rules/sec-limit", {"text": HIGH}, **token)
        assert answer.status_code == 503 and "kafka" in answer.json()["error"], answer.text
    over = write(closed[1], "DELETE", "/api/rules/sec-limit", None, **token)
    assert over.status_code == 429 and over.json()["limit"] == "rule_write"
    assert over.json()["error"].startswith(f"rate limit rule_write: {RULE_WRITE_LIMIT} per 60 s; retry in")
    for i in range(BACKTEST_LIMIT):  # a lake nobody wrote: 404
        assert write(closed[i % 2], "POST", "/api/rules/any/backtest", {"text": HIGH}, **token).status_code == 404
    over = write(closed[0], "POST", "/api/rules/any/backtest", {"text": HIGH}, **token)
    assert over.status_code == 429 and over.json()["limit"] == "backtest"
    assert trial(closed[0], **token)["ticks"] == 1  # the trial's own allowance is untouched

def test_the_login_limit_counts_each_client_address_across_processes(closed):
    client = address()
    session = requests.Session()
    session.get(f"{closed[0]}/accounts/login", timeout=10)
    form = {"username": "erin", "password": "a wrong guess", "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    for i in range(LOGIN_LIMIT):
        guess = session.post(f"{closed[i % 2]}/accounts/login", data=form, timeout=30,
                             headers={**client, "Origin": closed[i % 2]})
        assert guess.status_code == 401
    over = session.post(f"{closed[0]}/accounts/login", data={**form, "password": PASSWORDS["erin"]}, timeout=30,
                        headers={**client, "Origin": closed[0]}, allow_redirects=False)
    assert over.status_code == 429 and f"rate limit login: {LOGIN_LIMIT} per 60 s; retry in" in over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    logged_in(closed[1], "erin")  # from another address


# -- headers --------------------------------------------------------------------------------------------------

CSP = {"default-src": "'self'", "script-src": "'self'", "img-src": "'self' data:",
       "connect-src": "'self' ws: wss:", "frame-ancestors": "'none'", "object-src": "'none'", "base-uri": "'self'",
       "form-action": "'self'"}


def policy(header: str) -> dict[str, str]:
    return dict(part.strip().partition(" ")[::2] for part in header.split(";"))


def test_every_response_has_the_security_headers(dashboard):
    page = requests.get(f"{dashboard}/", timeout=10)
    directives = policy(page.headers["Content-Security-Policy"])
    nonce = re.search(r'<meta name="csp-nonce" content="([^"]+)">', page.text).group(1)
    assert directives == {**CSP, "style-src": f"'self' 'nonce-{nonce}'"}
    api = requests.get(f"{dashboard}/api/me", timeout=10)
    assert policy(api.headers["Content-Security-Policy"]) == {**CSP, "style-src": "'self'"}
    for response in (page, api):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


def test_cookies_are_http_only_and_over_tls_secure(closed, redis_url, service_logs, state_dir):
    session = logged_in(closed[0], "victor")
    assert session.cookies.get_dict() and "sessionid" in session.cookies
    cookie = next(c for c in session.cookies if c.name == "sessionid")
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure
    tls = start_dashboard(f"{redis_url.rsplit('/', 1)[0]}/{SECURITY_DB}", service_logs,
                          env={"ASCEP_STATE_DIR": str(state_dir), "ASCEP_DASHBOARD__HTTPS": "true",
                               "ASCEP_DASHBOARD__PROXY_COUNT": "1"})
    try:
        behind_tls = {**address(), "X-Forwarded-Proto": "https"}
        login = requests.get(f"{tls.address}/accounts/login", headers=behind_tls, timeout=10)
        assert "Secure" in login.headers["Set-Cookie"] and "SameSite=Lax" in login.headers["Set-Cookie"]
        assert login.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        tls.stop()


def test_cors_answers_the_configured_origin_only(closed):
    def preflight(origin: str) -> requests.Response:
        return requests.options(f"{closed[0]}/api/signals", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
    allowed = preflight(CORS_ORIGIN)
    assert allowed.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in preflight("https://elsewhere.example").headers
    page = requests.get(f"{closed[0]}/accounts/login", headers={"Origin": CORS_ORIGIN}, timeout=10)
    assert "Access-Control-Allow-Origin" not in page.headers  # the API only


# -- the pages under the CSP, in Chromium -----------------------------------------------------------------------

WATCH_CSP = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI || "inline"}`));"""


def test_the_pages_pass_their_csp_in_chromium(browser, dashboard):
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(WATCH_CSP)
    try:
        for path, ready in (("/", "#status:not(.connecting)"), ("/analytics", "#no-lake"),
                            ("/rules", "#editor .cm-editor"), ("/signals/none", "#signal-summary"),
                            ("/docs", ".swagger-ui .info"), ("/accounts/login", "form.login")):
            page.goto(dashboard + path)
            page.wait_for_selector(ready, timeout=15_000)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__csp") == [], f"{path}: CSP violations"
        assert not [line for line in console if "Content Security Policy" in line], console
        # The watch sees a violation when there is one: an inline script, which the policy refuses.
        page.evaluate("document.head.appendChild(Object.assign(document.createElement('script'), "
                      "{textContent: 'window.ran = true'}))")
        page.wait_for_function("window.__csp.length > 0")
        assert page.evaluate("window.ran") is None
    finally:
        page.close()


def test_a_page_style_with_the_nonce_applies(browser, dashboard):
    """What the rule editor (CodeMirror) does: a <style> element carrying the nonce of <meta name="csp-nonce">."""
    page = browser.new_page()
    page.add_init_script(WATCH_CSP)
    try:
        page.goto(dashboard + "/accounts/login")
        applied = page.evaluate("""() => {
            const nonce = document.querySelector('meta[name="csp-nonce"]').content;
            const style = Object.assign(document.createElement('style'),
                                        {nonce, textContent: 'h1 {color: rgb(1, 2, 3)}'});
            document.head.appendChild(style);
            return getComputedStyle(document.querySelector('h1')).color;
        }""")
        assert applied == "rgb(1, 2, 3)" and page.evaluate("window.__csp") == []
    finally:
        page.close()


# -- ascep users ----------------------------------------------------------------------------------------------


def test_ascep_users_end_to_end(tmp_path):
    """On a fresh state directory: the database is made by the first command, no dashboard needed."""
    assert ok(users_cli(tmp_path, "list")) == ""
    ok(users_cli(tmp_path, "create", "ann", "--role", "editor", "--password-stdin", stdin="ann's long passphrase\n"))
    ok(users_cli(tmp_path, "create", "bo", "--role", "viewer", "--password-stdin", stdin="bo's long passphrase\n"))
    listed = [json.loads(line) for line in ok(users_cli(tmp_path, "list", "--json")).splitlines()]
    assert [(u["name"], u["role"], u["last_login"], u["active_tokens"]) for u in listed] == [
        ("ann", "editor", "never", 0), ("bo", "viewer", "never", 0)]
    for args, stdin, message in (
            (("create", "ann", "--role", "viewer", "--password-stdin"), "another long passphrase\n",
             "user 'ann' exists already"),
            (("create", "cy", "--role", "viewer", "--password-stdin"), "short\n", "password for 'cy' refused: "
                                                                                "This password is too short"),
            (("create", "cy", "--role", "viewer"), "", "no terminal to ask for the password on"),
            (("remove", "nobody"), None, "no user 'nobody'"),
            (("token", "create", "nobody"), None, "no user 'nobody'"),
            (("token", "revoke", "bo", "99"), None, "'bo' has no active token 99")):
        done = users_cli(tmp_path, *args, stdin=stdin)
        assert done.returncode == 1 and message in done.stderr, done.stderr
    bad_role = users_cli(tmp_path, "create", "cy", "--role", "admin")
    assert bad_role.returncode == 2 and "invalid choice: 'admin'" in bad_role.stderr

    made = ok(users_cli(tmp_path, "token", "create", "bo", "--label", "ci"))
    assert re.fullmatch(r"ascep_[A-Za-z0-9_-]{43}\n", made), "stdout is the token alone, for scripts"
    assert ok(users_cli(tmp_path, "list", "--json")).count('"active_tokens": 1') == 1
    with sqlite3.connect(tmp_path / "dashboard.sqlite3") as db:  # only a hash of the token is stored
        assert [row[0] for row in db.execute("SELECT digest FROM accounts_apitoken")] == [
            hashlib.sha256(made.strip().encode()).hexdigest()]
    token_id = json.loads(ok(users_cli(tmp_path, "token", "list", "bo", "--json")))["id"]
    ok(users_cli(tmp_path, "token", "revoke", "bo", str(token_id)))
    assert "revoked" in ok(users_cli(tmp_path, "token", "list", "bo"))
    ok(users_cli(tmp_path, "remove", "bo"))
    assert [json.loads(line)["name"] for line in ok(users_cli(tmp_path, "list", "--json")).splitlines()] == ["ann"]


def test_a_users_session_outlives_a_restart_of_the_dashboard(dashboard_redis, service_logs, tmp_path):
    """The secret key is kept in the state directory, so a restart does not log everyone out. (sam's password is
    one --random-password made, as a one-off task where nothing can be typed would.)"""
    made = ok(users_cli(tmp_path, "create", "sam", "--role", "viewer", "--random-password"))
    password = re.fullmatch(r"user sam created, role viewer, password (\S{16}) \(shown this once\)\n", made).group(1)
    env = {"ASCEP_STATE_DIR": str(tmp_path), "ASCEP_DASHBOARD__ANONYMOUS_READ": "false"}
    first = start_dashboard(dashboard_redis, service_logs, env=env)
    try:
        session = logged_in(first.address, "sam", password)
    finally:
        first.stop()
    second = start_dashboard(dashboard_redis, service_logs, env=env)
    try:
        assert session.get(f"{second.address}/api/me", timeout=10).json()["name"] == "sam"
    finally:
        second.stop()
    assert (tmp_path / "dashboard-secret-key").stat().st_mode & 0o077 == 0, "the key file is the owner's only"

