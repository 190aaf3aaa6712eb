"""`ascep rules` against the real broker, through the CLI entry point."""
from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from ascep.cli import main
from core.cep.rules import parse, to_json
from core.cep.templates import trend_reversal
from core.contracts.tick import Tick

T0 = 1_700_000_000_000
ARBITRAGE = 'IF price("EUR/USD") - price("USD/EUR") > 0.001 THEN ARBITRAGE_SIGNAL'


@pytest.mark.integration
def test_add_list_rm(kafka, topic_prefix, tmp_path, capsys):
    topic = f"{topic_prefix}rules"
    where = ["--kafka", kafka, "--topic", topic]
    rule_file = tmp_path / "reversal.rule"
    rule_file.write_text(trend_reversal("BTC/USDT"))
    assert main(["rules", "add", *where, "--text", ARBITRAGE, "--id", "arb"]) == 0
    assert main(["rules", "add", *where, str(rule_file)]) == 0
    assert main(["rules", "add", *where, "--text", 'IF price("EUR/USD") > 2 THEN HIGH', "--id", "arb"]) == 0
    capsys.readouterr()

    assert main(["rules", "list", *where, "--json"]) == 0
    listed = {item["id"]: item["rule"] for item in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(listed) == {"arb", "reversal"}
    assert listed["arb"]["then"] == "HIGH"  # the later value for a key wins
    assert listed["reversal"]["pattern"]["within_ms"] == 60_000

    assert main(["rules", "rm", *where, "arb"]) == 0
    assert main(["rules", "rm", *where, "arb"]) == 1  # already gone
    capsys.readouterr()
    assert main(["rules", "list", *where]) == 0
    out = capsys.readouterr().out
    assert "# reversal" in out and "PATTERN rise FOLLOWED BY fall" in out and "arb" not in out


@pytest.mark.integration
def test_a_bad_rule_is_refused_with_its_position(kafka, topic_prefix, capsys):
    assert main(["rules", "add", "--kafka", kafka, "--topic", f"{topic_prefix}rules", "--text",
                 'IF price("EUR/USD") >> 1 THEN X']) == 1
    assert "line 1, column 22" in capsys.readouterr().err


@pytest.mark.integration
def test_list_skips_the_records_the_job_rejects(kafka, topic_prefix, make_topics, capsys):
    topic = f"{topic_prefix}rules"
    make_topics({topic: 1}, compacted=(topic,))
    good = json.dumps(to_json(parse(ARBITRAGE))).encode()
    producer = Producer({"bootstrap.servers": kafka})
    for key, value in ((b"arb", good), (None, good), (b"\xff", good), (b"null", b"null"), (b"array", b"[]")):
        producer.produce(topic, key=key, value=value)
        # one batch each: Tansu 0.6.0 gives a batch of several records a high watermark of its first offset + 1
        assert producer.flush(15) == 0
    assert main(["rules", "list", "--kafka", kafka, "--topic", topic, "--json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["id"] for line in captured.out.splitlines()] == ["arb"]
    assert "rule 'null' at offset 3 is not valid and is skipped: JSON null is not a rule" in captured.err
    assert "rule 'array' at offset 4 is not valid and is skipped: $: a rule must be a JSON object" in captured.err


def test_a_rule_larger_than_the_job_takes_is_refused_before_it_is_published(capsys):
    defines = "".join(f'DEFINE d{i} AS price("EUR/USD") > {i}\n' for i in range(1_000))
    assert main(["rules", "add", "--kafka", "127.0.0.1:1", "--text", defines + "IF d0 THEN X"]) == 1
    assert "bytes: a rule's record is at most 65536 bytes" in capsys.readouterr().err


def test_rules_test_prints_the_matches(tmp_path, capsys):
    rule_file = tmp_path / "arb.rule"
    rule_file.write_text(ARBITRAGE)
    ticks = [Tick("fx", "EUR/USD", 1.1, 1.1, None, None, T0), Tick("fx", "USD/EUR", 1.09, 1.09, None, None, T0 + 5)]
    events = tmp_path / "ticks.jsonl"
    events.write_text("\n".join(json.dumps(t.to_json_dict()) for t in ticks) + "\n{broken\n")
    assert main(["rules", "test", str(rule_file), str(events)]) == 0
    captured = capsys.readouterr()
    [signal] = [json.loads(line) for line in captured.out.splitlines()]
    assert (signal["rule_id"], signal["name"], signal["event_time"]) == ("arb", "ARBITRAGE_SIGNAL", T0 + 5)
    assert "ticks.jsonl:3: skipped" in captured.err and "1 bad lines" in captured.err


@pytest.mark.integration
def test_a_template_switches_on_for_a_whole_market_in_one_line(kafka, topic_prefix, capsys):
    where = ["--kafka", kafka, "--topic", f"{topic_prefix}rules"]
    assert main(["rules", "add", *where, "--template", "price_spike", "--covers", "*/USDT", "--set", "pct=2",
                 "--id", "usdt-spikes"]) == 0
    capsys.readouterr()
    assert main(["rules", "list", *where, "--json"]) == 0
    (listed,) = map(json.loads, capsys.readouterr().out.splitlines())
    assert listed["id"] == "usdt-spikes"
    assert listed["rule"]["partition"] == {"by": ["symbol"], "covers": ["*/USDT"]}
    assert listed["rule"]["if"]["args"][1] == 2.0


@pytest.mark.parametrize("argv, words", [
    (["price_spike", "--set", "pct=x"], "pct is a number"),
    (["price_spike", "--set", "symbol=BTC/USDT"], "takes pct, window"),
    (["arbitrage", "--covers", "*/USDT"], "not partitioned"),
    (["price_spike", "--covers", "btc"], "bad cover 'btc'"),
    (["no_such"], "no template 'no_such'"),
])
def test_template_mistakes_are_named(argv, words, capsys):
    assert main(["rules", "template", *argv]) == 1
    assert words in capsys.readouterr().err


def test_template_prints_rule_text(capsys):
    assert main(["rules", "template", "stat_arb", "--set", "entry=2.5"]) == 0
    assert "IF abs(z) > 2.5 UNTIL abs(z) < 0.5 THEN STAT_ARB" in capsys.readouterr().out
