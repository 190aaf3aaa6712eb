"""`ascep rules` against the real broker, through the CLI entry point."""
from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from ascep.cli import main
from core.cep.rules import parse, to_json
from core.cep.templates import trend_reversal
from core.contracts.tick import Tick
from core.contracts.times import iso_ms

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
    assert signal["event_time_iso"] == iso_ms(T0 + 5)  # beside the epoch ms, for people
    assert "ticks.jsonl:3: skipped" in captured.err and "1 bad lines" in captured.err


def test_rules_test_stops_at_its_time_budget_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASCEP_RULES__TRIAL_TIME_BUDGET_MS", "300")
    rule_file = tmp_path / "heavy.rule"  # a partial match per tick, each waiting for a price twice its own
    rule_file.write_text('DEFINE up AS price("A/B") > 0\nDEFINE double AS price("A/B") > up.price * 2\n'
                         "PATTERN up FOLLOWED BY ANY double THEN NEVER")
    events = tmp_path / "ticks.jsonl"
    events.write_text("".join(json.dumps(Tick("fx", "A/B", 1.0, 1.1, None, None, T0 + i).to_json_dict()) + "\n"
                              for i in range(50_000)))
    assert main(["rules", "test", str(rule_file), str(events)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ascep rules test: stopped: the trial ran out of time "
                                   "(rules.trial_time_budget_ms = 300) after ")
    assert "ASCEP_RULES__TRIAL_TIME_BUDGET_MS" in captured.err


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
    (["stat_arb", "--covers", "*/USDT"], "not partitioned"),
    (["price_spike", "--covers", "btc"], "bad cover 'btc'"),
    (["no_such"], "no template 'no_such'"),
])
def test_template_mistakes_are_named(argv, words, capsys):
    assert main(["rules", "template", *argv]) == 1
    assert words in capsys.readouterr().err


def test_template_prints_rule_text(capsys):
    assert main(["rules", "template", "stat_arb", "--set", "entry=2.5"]) == 0
    assert "IF abs(z) > 2.5 UNTIL abs(z) < 0.5 THEN STAT_ARB" in capsys.readouterr().out
    assert main(["rules", "template", "arbitrage", "--covers", "BTC/USDT", "--set", "buy_venue=coinbase"]) == 0
    assert capsys.readouterr().out == ('PARTITION BY symbol FOR "BTC/USDT"\n'
                                       'IF (bid("@binance") - ask("@coinbase")) / ask("@coinbase") * 10000 > 10.0 '
                                       'THEN ARBITRAGE\n')


def write_lake(uri, ticks: list[Tick], s3_endpoint: str | None = None) -> str:
    """A lake holding `ticks` on partition 0 of one topic incarnation, at offsets 0, 1, ..."""
    from lake.storage import open_lake
    from lake.writer import LakeWriter

    writer = LakeWriter(open_lake(str(uri), s3_endpoint), topic_id="01a23131-4080-75e1-9f0a-df66b0ae3303")
    for offset, tick in enumerate(ticks):
        writer.add_ticks(0, offset, (tick,))
    writer.close()
    return str(uri)


SPREAD = 'IF price("EUR/USD") - price("USD/EUR") > 0.001 THEN WIDE'
# two signals: open at T0 + 5, closed at T0 + 9; open at T0 + 20. The tick at T0 + 3 comes after the one at T0 + 9,
# behind the T0 + 5 the engine took already: late.
LAKE_TICKS = [Tick("fx", "EUR/USD", 1.1, 1.1, None, None, T0), Tick("fx", "USD/EUR", 1.09, 1.09, None, None, T0 + 5),
              Tick("fx", "USD/EUR", 1.0995, 1.0995, None, None, T0 + 9),
              Tick("fx", "USD/EUR", 1.09, 1.09, None, None, T0 + 3),
              Tick("fx", "USD/EUR", 1.09, 1.09, None, None, T0 + 20), Tick("fx", "BTC/USD", 9, 9, None, None, T0 + 30)]
RANGE = ["--from", "2023-11-14T22:13:20Z", "--to", str(T0 + 60_000)]


def test_rules_backtest_prints_the_signals_over_the_lake_with_their_counts(tmp_path, capsys):
    from core.contracts.signal import signal_id

    lake = write_lake(tmp_path / "lake", LAKE_TICKS)
    assert main(["rules", "backtest", SPREAD, "--id", "spread", "--lake", lake, *RANGE]) == 0
    captured = capsys.readouterr()
    states = [json.loads(line) for line in captured.out.splitlines()]
    first, second = (signal_id("rule", ("spread", "WIDE"), T0 + dt) for dt in (5, 20))
    assert [(s["id"], s["status"]) for s in states] == [(first, "open"), (first, "closed"), (second, "open")]
    err = " ".join(captured.err.split())
    assert "6 ticks from 1 partition(s)" in err and "2 signals (3 states), 1 ticks late" in err
    assert "by name: WIDE 2" in err and "ticks/s" in err


def test_rules_backtest_writes_jsonl_or_parquet_and_takes_the_rule_id_from_the_file(tmp_path, capsys):
    import pyarrow.parquet as pq

    lake = write_lake(tmp_path / "lake", LAKE_TICKS)
    rule_file = tmp_path / "wide.rule"
    rule_file.write_text(SPREAD)
    for out in (tmp_path / "signals.jsonl", tmp_path / "signals.parquet"):
        assert main(["rules", "backtest", str(rule_file), "--lake", lake, *RANGE, "--out", str(out)]) == 0
        assert capsys.readouterr().out == ""
    rows = pq.read_table(tmp_path / "signals.parquet").to_pylist()
    lines = [json.loads(line) for line in (tmp_path / "signals.jsonl").read_text().splitlines()]
    assert [(r["id"], r["status"], r["rule_id"]) for r in rows] == [(s["id"], s["status"], "wide") for s in lines]
    assert [r["kafka_offset"] for r in rows] == [1, 2, 4]  # the ticks that gave the states
    assert main(["rules", "backtest", str(rule_file), "--lake", lake, *RANGE, "--out", str(tmp_path / "x.csv")]) == 1
    assert "name a .jsonl or a .parquet file" in capsys.readouterr().err


def test_rules_backtest_of_a_rule_of_trades_reads_trades_of_symbols_with_no_ticks(tmp_path, capsys):
    """A replayed Kraken recording gives trades alone: their symbol has no tick in the lake, yet the job evaluated
    them."""
    from core.contracts.trade import Trade
    from lake.storage import open_lake
    from lake.writer import LakeWriter

    lake = write_lake(tmp_path / "lake", LAKE_TICKS)
    writer = LakeWriter(open_lake(lake), topic_id="01a23131-4080-75e1-9f0a-df66b0ae3304",
                        read_with="01a23131-4080-75e1-9f0a-df66b0ae3303")
    for offset in range(3):
        writer.add_trades(0, offset, (Trade("kraken", "SC/EUR", 0.02, 5_000.0, "buy", T0 + 10 * offset, None),))
    writer.close()
    volume = 'PARTITION BY symbol IF volume(1m) > 9000 THEN BIG'
    assert main(["rules", "backtest", volume, "--lake", lake, *RANGE, "--symbols", "SC/EUR"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["key"] for line in captured.out.splitlines()] == ["SC/EUR"]
    assert "0 ticks and 3 trades from 1 partition(s)" in " ".join(captured.err.split())
    assert main(["rules", "backtest", volume, "--lake", lake, *RANGE, "--symbols", "XRP/USD"]) == 1
    assert "holds no ticks or trades from" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "says"), [
    (['IF price("EUR/USD") >> 1 THEN X', *RANGE], "RULE: line 1, column 22: expected a number"),
    ([SPREAD, "--from", "2023-11-31", "--to", "2023-12-01"], "argument --from: '2023-11-31' is not a time"),
    ([SPREAD, "--from", "1700000000", "--to", "2023-12-01"], "'1700000000' is not epoch milliseconds"),
    ([SPREAD, "--from", "2023-11-15", "--to", "2023-11-14T23:00:00+01:00"], "empty range: --to 2023-11-14T22:00"),
    ([SPREAD, "--from", "2023-11-16", "--to", "2023-11-17"], "holds no ticks from 2023-11-16T00:00:00.000Z to"),
    ([SPREAD, *RANGE, "--symbols", "XRP/USD"], "holds no ticks from 2023-11-14T22:13:20.000Z to"),
    (["wide.rul", *RANGE], "'wide.rul' is no file, and the rules in force cannot be read: no kafka address"),
])
def test_rules_backtest_says_what_is_wrong_with_its_input(tmp_path, capsys, monkeypatch, argv, says):
    lake = write_lake(tmp_path / "lake", LAKE_TICKS)
    monkeypatch.setenv("ASCEP_STATE_DIR", str(tmp_path / "no-stack"))  # no running `ascep up` to find Kafka by
    monkeypatch.delenv("ASCEP_KAFKA", raising=False)
    try:
        code = main(["rules", "backtest", "--lake", lake, *argv])
    except SystemExit as exit_:  # argparse refuses a bad --from / --to
        code = exit_.code
    assert code in (1, 2) and says in " ".join(capsys.readouterr().err.split())


@pytest.mark.integration
def test_rules_backtest_reads_an_s3_lake_at_the_configured_endpoint(s3, tmp_path, capsys, monkeypatch):
    local = write_lake(tmp_path / "lake", LAKE_TICKS)
    remote = write_lake(f"s3://{s3.new_bucket()}/lake", LAKE_TICKS, s3.endpoint)
    assert main(["rules", "backtest", SPREAD, "--lake", local, *RANGE]) == 0
    expected = capsys.readouterr().out
    monkeypatch.setenv("ASCEP_S3_ENDPOINT", s3.endpoint)
    assert main(["rules", "backtest", SPREAD, "--lake", remote, *RANGE]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.integration
def test_rules_backtest_runs_a_rule_in_force_by_its_id(kafka, topic_prefix, tmp_path, capsys):
    lake = write_lake(tmp_path / "lake", LAKE_TICKS)
    where = ["--kafka", kafka, "--topic", f"{topic_prefix}rules"]
    assert main(["rules", "add", *where, "--text", SPREAD, "--id", "spread"]) == 0
    capsys.readouterr()
    assert main(["rules", "backtest", "spread", *where, "--lake", lake, *RANGE]) == 0
    assert {json.loads(line)["rule_id"] for line in capsys.readouterr().out.splitlines()} == {"spread"}
    assert main(["rules", "backtest", "nope", *where, "--lake", lake, *RANGE]) == 1
    assert "'nope' is neither a file nor the id of a rule in force" in capsys.readouterr().err


@pytest.mark.integration
def test_a_disabled_rule_stays_listed_and_is_enabled_again(kafka, topic_prefix, capsys):
    where = ["--kafka", kafka, "--topic", f"{topic_prefix}rules"]
    assert main(["rules", "add", *where, "--text", ARBITRAGE, "--id", "arb"]) == 0
    assert main(["rules", "disable", *where, "arb"]) == 0
    capsys.readouterr()
    assert main(["rules", "list", *where]) == 0
    assert "# arb (disabled)\nIF " in capsys.readouterr().out
    assert main(["rules", "list", *where, "--json"]) == 0
    [listed] = map(json.loads, capsys.readouterr().out.splitlines())
    assert (listed["id"], listed["enabled"], listed["rule"]) == ("arb", False, to_json(parse(ARBITRAGE)))
    assert main(["rules", "enable", *where, "arb"]) == 0
    assert main(["rules", "enable", *where, "ghost"]) == 1
    assert "no rule 'ghost'" in capsys.readouterr().err
    assert main(["rules", "list", *where, "--json"]) == 0
    [listed] = map(json.loads, capsys.readouterr().out.splitlines())
    assert listed["enabled"] is True
