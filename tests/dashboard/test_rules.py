"""Rules through the API: trying a rule on posted ticks, the job's per-rule counters, rule signals,
and the connectors' ingest metrics in the health check."""
from __future__ import annotations

import json
import os
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
from dashboard_testing import served, start_open_dashboard

from core.cep.trial import run_rule
from core.contracts.redis_keys import RULE_STATS, ingest_key
from core.contracts.signal import signal_id
from core.contracts.tick import Tick
from core.contracts.times import iso_ms, signal_document

pytestmark = pytest.mark.integration

T0 = 1_763_700_000_000
WIDE = 'IF spread_bps("BTC/USDT") > 20 THEN WIDE'
# Spreads 50, 1, 300, 1 bps: WIDE opens at T0, closes at T0+1000, opens again at T0+2000, closes at T0+3000.
ASKS = (100.5, 100.01, 103.0, 100.01)
TICKS = [Tick("binance", "BTC/USDT", 100.0, ask, 1.0, 1.0, T0 + i * 1000).to_json_dict() for i, ask in enumerate(ASKS)]


def post(dashboard: str, rule_id: str, body, expect: int = 200, timeout: float = 10) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = requests.post(f"{dashboard}/api/rules/{rule_id}/test", data=raw, timeout=timeout,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == expect, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_a_rule_is_tried_on_posted_ticks(dashboard):
    result = post(dashboard, "wide", {"rule": WIDE, "ticks": TICKS})
    opened_at = [s["event_time"] for s in result["signals"] if s["status"] == "open"]
    closed_at = [s["closed_at"] for s in result["signals"] if s["status"] == "closed"]
    assert (opened_at, closed_at) == ([T0, T0 + 2000], [T0 + 1000, T0 + 3000])
    assert {(s["type"], s["rule_id"], s["name"]) for s in result["signals"]} == {("rule", "wide", "WIDE")}
    assert result["stats"]["evaluations"] == 4 and result["stats"]["matches"] == 2
    assert result["ticks"] == 4 and result["late"] == [] and result["timed_out"] == []
    # The same answer as the function `ascep rules test` calls, but for the run time, with ISO times beside.
    expected = run_rule(WIDE, TICKS, rule_id="wide")
    assert result["signals"] == [signal_document(s) for s in expected["signals"]]
    assert result["signals"][0]["event_time_iso"] == iso_ms(T0)


def test_the_json_form_and_jsonl_ticks_give_the_same_signals(dashboard):
    from core.cep.rules import parse, to_json

    jsonl = "\n".join(json.dumps(t) for t in TICKS) + "\n\n"
    from_text = post(dashboard, "wide", {"rule": WIDE, "ticks": TICKS})["signals"]
    assert post(dashboard, "wide", {"rule": to_json(parse(WIDE)), "ticks_jsonl": jsonl})["signals"] == from_text


def test_a_pattern_match_carries_its_events(dashboard):
    rule = ('DEFINE wide AS spread_bps("BTC/USDT") > 20\nDEFINE wider AS spread("BTC/USDT") > wide.spread\n'
            "PATTERN wide NEXT wider THEN WIDENING")
    widening = [Tick("okx", "BTC/USDT", 100.0, ask, 1.0, 1.0, T0 + i).to_json_dict()
                for i, ask in enumerate((100.5, 101.0))]
    result = post(dashboard, "widening", {"rule": rule, "ticks": widening})
    [match] = result["signals"]
    assert (match["name"], match["status"], match["event_time"], match["closed_at"]) == \
        ("WIDENING", "closed", T0, T0 + 1)
    assert match["legs"] == [] and match["profit_bps"] == 0.0
    assert match["events"] == {"wide": [{**widening[0], "ts_iso": iso_ms(T0)}],
                               "wider": [{**widening[1], "ts_iso": iso_ms(T0 + 1)}]}


def test_a_bad_rule_is_400_with_line_and_column(dashboard):
    error = post(dashboard, "wide", {"rule": 'IF spread_bps("BTC/USDT") >\n THEN WIDE', "ticks": TICKS}, expect=400)
    assert (error["line"], error["column"]) == (2, 2)
    assert error["error"].startswith("bad rule: line 2, column 2: expected a number")


def test_a_bad_rule_json_names_its_path(dashboard):
    error = post(dashboard, "wide", {"rule": {"version": 1, "then": "X", "if": {"op": ">"}}, "ticks": TICKS},
                 expect=400)
    assert error["error"].startswith("bad rule: $.if")
    assert error["where"].startswith("$.if")


def test_bad_ticks_are_400_naming_each_index_and_reason(dashboard):
    ticks = [TICKS[0], {**TICKS[1], "bid": -1.0}, TICKS[2], {k: v for k, v in TICKS[3].items() if k != "ts"}]
    error = post(dashboard, "wide", {"rule": WIDE, "ticks": ticks}, expect=400)
    assert [bad["index"] for bad in error["bad_ticks"]] == [1, 3]
    assert "bid" in error["bad_ticks"][0]["error"] and "ts" in error["bad_ticks"][1]["error"]
    assert error["error"].startswith("2 bad tick(s); first at index 1: ")


def test_bad_jsonl_lines_are_named_by_line_number(dashboard):
    jsonl = f"{json.dumps(TICKS[0])}\n{{not json\n{json.dumps(TICKS[1])}\n"
    error = post(dashboard, "wide", {"rule": WIDE, "ticks_jsonl": jsonl}, expect=400)
    assert [bad["line"] for bad in error["bad_ticks"]] == [2]


@pytest.mark.parametrize("body, message", [
    (b"{", "the body is not JSON: "),
    ({"ticks": []}, 'the body must be a JSON object {"rule": ...'),
    ({"rule": 3, "ticks": []}, "'rule' must be the rule text or its JSON form, got int"),
    ({"rule": WIDE}, "give exactly one of 'ticks'"),
    ({"rule": WIDE, "ticks": [], "ticks_jsonl": ""}, "give exactly one of 'ticks'"),
    ({"rule": WIDE, "ticks": {}}, "'ticks' must be a list of tick objects, got dict"),
    ({"rule": WIDE, "ticks": [], "out_of_orderness_ms": -5}, "'out_of_orderness_ms' must be a whole number >= 0"),
])
def test_a_malformed_body_is_400_saying_what_is_wrong(dashboard, body, message):
    assert post(dashboard, "wide", body, expect=400)["error"].startswith(message)


def test_only_post_is_allowed(dashboard):
    assert requests.get(f"{dashboard}/api/rules/wide/test", timeout=10).status_code == 405


def test_rule_counters_are_listed_by_rule_id(api, sink):
    counters = {"wide": {"evaluations": 40, "matches": 3, "errors": 0, "timeouts": 0, "time_ns": 91_000,
                         "last_error": None, "version": "a1b2c3d4e5f60718"},
                "calm": {"evaluations": 7, "matches": 0, "errors": 1, "timeouts": 0, "time_ns": 800,
                         "last_error": "division by zero", "version": "0f0f0f0f0f0f0f0f"}}
    sink.write_rule_stats(counters)
    assert api("/api/rules/stats") == {"rules": [{"rule_id": "calm", **counters["calm"]},
                                           {"rule_id": "wide", **counters["wide"]}]}

    sink.client.hset(RULE_STATS, "torn", b'{"evalua')  # one bad entry must not hide the others
    assert [r["rule_id"] for r in api("/api/rules/stats")["rules"]] == ["calm", "wide"]


def test_no_rule_counters_is_an_empty_list(api, sink):
    assert api("/api/rules/stats") == {"rules": []}


def test_rule_signals_are_served_unchanged(api, sink):
    signals = run_rule(WIDE, TICKS, rule_id="wide")["signals"]
    sink.write_signals(signals)
    reopened = signals[2]
    assert reopened["id"] == signal_id("rule", ("wide", "WIDE"), T0 + 2000)
    assert api(f"/api/signals/{reopened['id']}") == served(signals[3])  # its latest state: closed
    listed = api("/api/signals")["signals"]
    assert listed == [served(signals[3]), served(signals[1])]


def test_health_lists_the_connectors_ingest_metrics(api, sink):
    sink.client.hset(ingest_key("kraken"), mapping={"venue": "kraken", "connected": 1, "ticks": 30,
                                                     "ticks_per_s": 2.5, "lag_ms": 41.2, "last_frame_ms": T0})
    sink.client.hset(ingest_key("binance"), mapping={"venue": "binance", "connected": 0, "ticks": 0})
    assert api("/api/health")["ingest"] == [
        {"venue": "binance", "connected": 0, "ticks": 0},
        {"venue": "kraken", "connected": 1, "ticks": 30, "ticks_per_s": 2.5, "lag_ms": 41.2, "last_frame_ms": T0,
         "last_frame_ms_iso": iso_ms(T0)},
    ]


def test_an_oversized_body_is_413_saying_the_limit(dashboard):
    too_big = b" " * (32 * 1024 * 1024 + 1)
    error = post(dashboard, "wide", too_big, expect=413)["error"]
    assert error == "the body is over 33,554,432 bytes: send fewer ticks per request"


# A partial match per tick, each waiting for a price twice its own: at the cap, 10,000 conditions a tick.
HEAVY = ('DEFINE up AS price("BTC/USDT") > 0\nDEFINE double AS price("BTC/USDT") > up.price * 2\n'
         "PATTERN up FOLLOWED BY ANY double THEN NEVER")
MANY = [Tick("binance", "BTC/USDT", 100.0, 100.5 + i % 3, 1.0, 1.0, T0 + i).to_json_dict() for i in range(50_000)]


@pytest.fixture(scope="module")
def limited(dashboard_redis, service_logs):
    """A dashboard of its own with tight trial limits, so reaching them is quick; its process, to watch."""
    server = start_open_dashboard(dashboard_redis, service_logs, env={"ASCEP_RULES__TRIAL_TIME_BUDGET_MS": "3000",
                                                                 "ASCEP_RULES__TRIAL_MAX_SIGNALS": "1000"})
    yield server
    server.stop()
    assert server.log_path.read_text() == "", "the dashboard logged an error"


def test_a_trial_past_its_time_budget_is_422_naming_the_limit(limited):
    started = time.monotonic()
    error = post(limited.address, "heavy", {"rule": HEAVY, "ticks": MANY}, expect=422, timeout=60)
    assert time.monotonic() - started < 30
    assert (error["limit"], error["value"]) == ("trial_time_budget_ms", 3000)
    assert error["error"].startswith("the trial ran out of time (rules.trial_time_budget_ms = 3,000) after ")


def test_a_trial_past_its_signals_is_422_naming_the_limit(limited):
    flapping = [TICKS[i % 2] | {"ts": T0 + i} for i in range(5_000)]  # WIDE opens and closes at every tick
    error = post(limited.address, "wide", {"rule": WIDE, "ticks": flapping}, expect=422)
    assert (error["limit"], error["value"]) == ("trial_max_signals", 1000)
    assert error["error"] == "the trial made too many signals (rules.trial_max_signals = 1,000) after 1,001 ticks"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_trial_stops_when_its_client_goes_away(limited):
    body = json.dumps({"rule": HEAVY, "ticks": MANY}).encode()
    address = urlsplit(limited.address)
    with socket.create_connection((address.hostname, address.port)) as client:
        client.sendall(b"POST /api/rules/heavy/test HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(1.0)  # the body read and the trial under way; it would run to its 3 s budget
    time.sleep(0.5)
    before = cpu_seconds(limited.proc.pid)
    time.sleep(1.5)
    assert cpu_seconds(limited.proc.pid) - before < 0.3, "the trial kept working after its client had gone"
    assert post(limited.address, "wide", {"rule": WIDE, "ticks": TICKS})["stats"]["matches"] == 2
