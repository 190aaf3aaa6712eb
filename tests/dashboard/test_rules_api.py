"""Rules over HTTP against a real dashboard, a real broker (its `rules` topic) and a lake written here: the same
topic `ascep rules` reads and writes, the version each write gives, and when the job (its RedisSink stats) has it
in force; checking text as it is typed; templates; backtests over the lake; a signal's states and quotes."""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from dashboard_testing import (
    FX_T0,
    FX_TICKS,
    QUOTE_TICKS,
    QUOTES_T0,
    SPREAD,
    cross_exchange_signal,
    serve_dashboard,
    served,
)

from ascep.cli import main
from ascep.services import free_port
from core.cep.rule_records import record_value, rule_version
from core.cep.rules import parse, to_json, to_text
from core.cep.templates import TEMPLATES
from core.contracts.times import iso_ms

pytestmark = pytest.mark.integration

HIGH = 'IF price("BTC/USDT") > 100 THEN HIGH'


# These tests act as an editor, with a token (conftest's accounts); test_security.py tests who may not.
EDITOR = requests.Session()


@pytest.fixture(scope="module", autouse=True)
def as_editor(accounts):
    EDITOR.headers["Authorization"] = f"Bearer {accounts.editor}"


def call(base: str, method: str, path: str, body=None, expect: int = 200, timeout: float = 30) -> dict:
    response = EDITOR.request(method, base + path, json=body, timeout=timeout)
    assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.fixture
def rule_id() -> str:
    """The dashboards share one broker's `rules` topic: each test's rule has an id of its own."""
    return f"r-{uuid.uuid4().hex[:8]}"


def test_a_rule_is_added_read_replaced_and_deleted(rules_dashboard, sink, rule_id):
    entry = call(rules_dashboard, "POST", "/api/rules", {"id": rule_id, "text": HIGH}, expect=201)
    version = rule_version(record_value(parse(HIGH)))
    assert entry == {"id": rule_id, "text": to_text(parse(HIGH)), "enabled": True, "version": version,
                     "in_force_version": None, "in_force": False, "stats": None}
    assert call(rules_dashboard, "GET", f"/api/rules/{rule_id}") == entry
    assert entry in call(rules_dashboard, "GET", "/api/rules")["rules"]
    assert call(rules_dashboard, "POST", "/api/rules", {"id": rule_id, "text": HIGH}, expect=409)["error"] == \
        f"rule {rule_id!r} exists: PUT /api/rules/{rule_id} replaces it"

    higher = to_json(parse('IF price("BTC/USDT") > 200 THEN HIGH'))
    replaced = call(rules_dashboard, "PUT", f"/api/rules/{rule_id}", {"rule": higher})
    assert replaced["text"] == to_text(parse('IF price("BTC/USDT") > 200 THEN HIGH'))
    assert replaced["version"] == rule_version(json.dumps(higher, separators=(",", ":")).encode()) != version

    assert call(rules_dashboard, "DELETE", f"/api/rules/{rule_id}") == {"id": rule_id, "deleted": True}
    assert call(rules_dashboard, "GET", f"/api/rules/{rule_id}", expect=404)["error"] == f"no rule {rule_id!r}"
    assert call(rules_dashboard, "DELETE", f"/api/rules/{rule_id}", expect=404)["error"] == f"no rule {rule_id!r}"
    assert rule_id not in [r["id"] for r in call(rules_dashboard, "GET", "/api/rules")["rules"]]
    created = call(rules_dashboard, "PUT", f"/api/rules/{rule_id}", {"text": HIGH, "enabled": False})  # creates
    assert (created["enabled"], created["version"]) == (False, rule_version(record_value(parse(HIGH), False)))


def test_the_cli_reads_what_the_api_wrote_and_the_api_what_the_cli_wrote(rules_dashboard, kafka, sink, rule_id,
                                                                          capsys):
    written = call(rules_dashboard, "POST", "/api/rules", {"id": rule_id, "text": HIGH, "enabled": False},
                   expect=201)
    assert main(["rules", "list", "--kafka", kafka, "--json"]) == 0
    listed = {item["id"]: item for item in map(json.loads, capsys.readouterr().out.splitlines())}
    assert listed[rule_id] == {"id": rule_id, "rule": to_json(parse(HIGH)), "enabled": False,
                               "version": written["version"]}

    assert main(["rules", "enable", "--kafka", kafka, rule_id]) == 0
    entry = call(rules_dashboard, "GET", f"/api/rules/{rule_id}")
    assert (entry["enabled"], entry["version"]) == (True, rule_version(record_value(parse(HIGH))))
    other = f"{rule_id}-cli"
    assert main(["rules", "add", "--kafka", kafka, "--id", other, "--text", 'IF price("EUR/USD") > 2 THEN FX']) == 0
    assert call(rules_dashboard, "GET", f"/api/rules/{other}")["text"].startswith('IF price("EUR/USD") > 2')
    assert main(["rules", "rm", "--kafka", kafka, other]) == 0
    call(rules_dashboard, "GET", f"/api/rules/{other}", expect=404)


def test_in_force_turns_true_when_the_job_reports_the_version_written(rules_dashboard, sink, rule_id):
    entry = call(rules_dashboard, "POST", "/api/rules", {"id": rule_id, "text": HIGH}, expect=201)
    counters = {"evaluations": 4, "matches": 1, "errors": 0, "timeouts": 0, "time_ns": 900, "last_error": None}
    sink.write_rule_stats({rule_id: {**counters, "version": "0123456789abcdef"}})  # an older version in force
    entry = call(rules_dashboard, "GET", f"/api/rules/{rule_id}")
    assert (entry["in_force"], entry["in_force_version"]) == (False, "0123456789abcdef")
    sink.write_rule_stats({rule_id: {**counters, "version": entry["version"]}})  # as the job's RuleHost reports
    entry = call(rules_dashboard, "GET", f"/api/rules/{rule_id}")
    assert (entry["in_force"], entry["in_force_version"]) == (True, entry["version"])
    assert entry["stats"] == {**counters, "version": entry["version"]}

    disabled = call(rules_dashboard, "PUT", f"/api/rules/{rule_id}", {"enabled": False})  # the rule stays as it is
    assert (disabled["enabled"], disabled["text"], disabled["in_force"]) == (False, entry["text"], False)
    sink.write_rule_stats({})  # the job stopped running it
    disabled = call(rules_dashboard, "GET", f"/api/rules/{rule_id}")
    assert (disabled["in_force"], disabled["in_force_version"], disabled["stats"]) == (True, None, None)
    enabled = call(rules_dashboard, "PUT", f"/api/rules/{rule_id}", {"enabled": True})
    assert (enabled["enabled"], enabled["version"], enabled["in_force"]) == (True, entry["version"], False)


@pytest.mark.parametrize(("body", "message"), [
    ({"id": "x", "text": HIGH, "rule": {}}, "body field '(whole)': Value error, give exactly one of 'text' and 'rule'"),
    ({"id": "x"}, "body field '(whole)': Value error, give exactly one of 'text' and 'rule'"),
    ({"id": "a b", "text": HIGH}, "body field 'id': String should match pattern"),
    ({"id": "check", "text": HIGH}, "body field 'id': 'check' is a path of its own under /api/rules/"),
    ({"id": "x", "text": 'IF price("BTC/USDT") >\n THEN X'}, "bad rule: line 2, column 2: expected a number"),
    ({"id": "x", "rule": {"then": "X"}}, "bad rule: $: a rule has exactly one of 'if'"),
])
def test_a_bad_write_is_400_saying_what_is_wrong(rules_dashboard, body, message):
    assert call(rules_dashboard, "POST", "/api/rules", body, expect=400)["error"].startswith(message)


def test_a_body_that_is_not_json_is_400_saying_where_the_decoder_stopped(rules_dashboard):
    response = EDITOR.post(f"{rules_dashboard}/api/rules", data=b'{"id": "x",\n "text": ', timeout=30,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not JSON: ") and "line 2" in response.json()["error"]


def test_check_gives_line_and_column_of_a_typo(rules_dashboard):
    check = lambda text: call(rules_dashboard, "POST", "/api/rules/check", {"text": text})  # noqa: E731
    assert check(HIGH) == {"ok": True, "errors": []}
    assert check('IF price("BTC/USDT") > 100\nTHEN HIGH') == {"ok": True, "errors": []}
    typo = check('IF price("BTC/USDT") > 100\nTHNE HIGH')
    assert typo["ok"] is False and [(e["line"], e["column"]) for e in typo["errors"]] == [(2, 1)]
    unknown = check('IF prise("BTC/USDT") > 100 THEN HIGH')  # the checker's, at the name
    assert [(e["line"], e["column"]) for e in unknown["errors"]] == [(1, 4)]
    assert "prise" in unknown["errors"][0]["message"]
    json_form = check('{"then": "X"}')  # a problem of the JSON form has no line
    assert json_form["errors"] == [{"message": "$: a rule has exactly one of 'if' (a condition) or 'pattern' "
                                               "(a sequence)", "line": None, "column": None}]


def test_the_templates_are_listed_with_their_parameters_and_text(rules_dashboard):
    listed = {t["name"]: t for t in call(rules_dashboard, "GET", "/api/rules/templates")["templates"]}
    assert list(listed) == list(TEMPLATES)
    spike = listed["price_spike"]
    assert spike["partitioned"] is True and spike["text"] == TEMPLATES["price_spike"]()
    assert spike["params"] == [{"name": "covers", "default": []}, {"name": "pct", "default": 1.0},
                               {"name": "window", "default": "10s"}]
    assert listed["arbitrage"]["partitioned"] is True and listed["arbitrage"]["doc"].startswith("One venue's bid")
    assert listed["stat_arb"]["partitioned"] is False
    for template in listed.values():
        assert call(rules_dashboard, "POST", "/api/rules/check", {"text": template["text"]})["ok"], template["name"]


def test_a_backtest_over_the_lake_gives_the_signals_the_job_would_have(rules_dashboard, sink, rule_id):
    span = {"from": FX_T0, "to": FX_T0 + 60_000}
    result = call(rules_dashboard, "POST", f"/api/rules/{rule_id}/backtest", {"text": SPREAD, **span})
    assert [(s["status"], s["event_time"] - FX_T0) for s in result["signals"]] == [("open", 5), ("closed", 5),
                                                                                  ("open", 20)]
    assert result["signals"][0]["event_time_iso"] == "2023-11-14T22:13:20.005Z"
    assert {s["rule_id"] for s in result["signals"]} == {rule_id}
    assert (result["ticks"], result["late"], result["timed_out"], result["partitions"]) == (len(FX_TICKS), 1, 0, 1)
    assert (result["from"], result["to"], result["from_iso"]) == (FX_T0, FX_T0 + 60_000, "2023-11-14T22:13:20.000Z")

    call(rules_dashboard, "POST", f"/api/rules/{rule_id}/backtest", span, expect=404)  # no such rule on the topic
    call(rules_dashboard, "POST", "/api/rules", {"id": rule_id, "text": SPREAD}, expect=201)
    assert call(rules_dashboard, "POST", f"/api/rules/{rule_id}/backtest", span)["signals"] == result["signals"]
    recent = call(rules_dashboard, "POST", f"/api/rules/{rule_id}/backtest", {"minutes": 5})  # the last 5 minutes
    assert (recent["ticks"], recent["signals"], recent["to"] - recent["from"]) == (0, [], 300_000)


@pytest.mark.parametrize(("body", "message"), [
    ({"text": SPREAD, "from": FX_T0, "to": FX_T0}, "empty range: 'to' 2023-11-14T22:13:20.000Z is not after"),
    ({"text": SPREAD, "minutes": 24 * 60 + 1}, "the range is 1,441.0 minutes: a backtest here reads at most "
                                               "rules.trial_max_minutes = 1,440"),
    ({"text": "IF x THEN"}, "bad rule: line 1, column 10"),
    ({"minutes": 0}, "body field 'minutes': Input should be greater than or equal to 1"),
])
def test_a_bad_backtest_is_400_saying_what_is_wrong(rules_dashboard, body, message):
    assert call(rules_dashboard, "POST", "/api/rules/any/backtest", body, expect=400)["error"].startswith(message)


def test_without_a_lake_a_backtest_and_quotes_are_404_naming_it(dashboard, sink):
    error = call(dashboard, "POST", "/api/rules/any/backtest", {"text": SPREAD}, expect=404)["error"]
    assert error.startswith("no lake at ") and "nothing was written there" in error
    signal = cross_exchange_signal(("kraken", 100.0), ("binance", 100.1), 9.0, QUOTES_T0)
    sink.write_signals([signal])
    assert call(dashboard, "GET", f"/api/signals/{signal['id']}/quotes", expect=404)["error"].startswith("no lake at ")


def test_kafka_away_is_503_naming_it(dashboard, rule_id):
    """The plain dashboard has no broker address at all."""
    error = call(dashboard, "GET", "/api/rules", expect=503)["error"]
    assert error.startswith("kafka unavailable: no kafka address")
    assert call(dashboard, "PUT", f"/api/rules/{rule_id}", {"text": HIGH}, expect=503)["error"] == error


def test_kafka_not_answering_is_503_naming_the_broker(dashboard_redis, service_logs, accounts):
    dead = f"127.0.0.1:{free_port()}"
    with serve_dashboard(dashboard_redis, service_logs, {"ASCEP_KAFKA": dead,
                                                         "ASCEP_STATE_DIR": str(accounts.state_dir)}) as base:
        error = call(base, "GET", "/api/rules", expect=503, timeout=60)["error"]
    assert error.startswith(f"kafka unavailable: Kafka at {dead}")


def test_a_signal_history_is_every_state_the_job_wrote_oldest_first(rules_dashboard, sink):
    opened = cross_exchange_signal(("kraken", 100.0), ("binance", 100.03), 3.0, QUOTES_T0)
    peak = cross_exchange_signal(("kraken", 100.0), ("binance", 100.05), 5.0, QUOTES_T0, closed_after_ms=0)
    peak["updated_at"], peak["status"], peak["closed_at"] = QUOTES_T0 + 800, "open", None
    closed = cross_exchange_signal(("kraken", 100.0), ("binance", 100.05), 5.0, QUOTES_T0, closed_after_ms=1_500)
    other = cross_exchange_signal(("binance", 100.0), ("kraken", 100.2), 20.0, QUOTES_T0 + 10)
    for state in (opened, other, peak, closed):
        sink.write_signals([state])
    history = call(rules_dashboard, "GET", f"/api/signals/{opened['id']}/history")
    assert history["states"] == [served(s) for s in (opened, peak, closed)]
    assert history["signal"] == served(closed)
    assert call(rules_dashboard, "GET", f"/api/signals/{other['id']}/history")["states"] == [served(other)]
    assert call(rules_dashboard, "GET", "/api/signals/nope/history", expect=404)["error"] == "no signal with id 'nope'"


def test_quotes_are_the_legs_ticks_from_30_s_before_to_30_s_after(rules_dashboard, sink):
    signal = cross_exchange_signal(("kraken", 100.0), ("binance", 100.1), 9.0, QUOTES_T0, closed_after_ms=1_000)
    sink.write_signals([signal])
    quotes = call(rules_dashboard, "GET", f"/api/signals/{signal['id']}/quotes")
    expected = sorted((t for t in QUOTE_TICKS if t.venue in ("binance", "kraken") and t.symbol == "BTC/USDT"
                       and QUOTES_T0 - 30_000 <= t.ts <= QUOTES_T0 + 31_000), key=lambda t: (t.ts, t.venue))
    assert quotes["ticks"] == [{**t.to_json_dict(), "ts_iso": iso_ms(t.ts)} for t in expected]
    assert [t["ts"] - QUOTES_T0 for t in quotes["ticks"]] == [-20_000, 0, 500, 1_000, 2_000, 2_500, 31_000]
    assert (quotes["markets"], quotes["from"], quotes["to"], quotes["truncated"]) == (
        ["binance:BTC/USDT", "kraken:BTC/USDT"], QUOTES_T0 - 30_000, QUOTES_T0 + 31_001, False)
