"""`ascep analytics outcomes` over the planted lake (tests/lake/planted.py): what it prints and writes, and the
errors for bad input."""
from __future__ import annotations

import csv
import io
import json

import pytest

from ascep.cli import main
from core.contracts.times import iso_ms
from tests.lake import planted
from tests.lake.planted import END, T0

RANGE = ["--from", str(T0), "--to", iso_ms(END)]


@pytest.fixture(scope="module")
def lake_uri(tmp_path_factory) -> str:
    uri = str(tmp_path_factory.mktemp("planted") / "lake")
    planted.write(uri)
    return uri


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["analytics", "outcomes", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_jsonl_on_stdout_and_the_files_in_out(lake_uri, capsys, tmp_path):
    code, out, _ = run(capsys, "--lake", lake_uri, *RANGE, "--format", "jsonl", "--out", str(tmp_path / "out"))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert {r["id"]: r["survival_ms"] for r in records} == {"cross": 700, "book": 2_500, "triangle": 300,
                                                             "lasting": None}
    assert (tmp_path / "out" / "outcomes.jsonl").read_text().splitlines() == out.splitlines()
    with open(tmp_path / "out" / "outcomes_summary.csv") as f:
        rows = list(csv.DictReader(f))
    everything = [(r["delay_ms"], r["priced"], r["still_profitable"]) for r in rows if r["dimension"] == "all"]
    assert everything == [("50", "4", "4"), ("250", "4", "4"), ("1000", "4", "2"), ("5000", "4", "1")]
    assert (tmp_path / "out" / "outcomes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_delays_are_configurable_and_csv_goes_to_stdout(lake_uri, capsys):
    code, out, _ = run(capsys, "--lake", lake_uri, *RANGE, "--delays", "800,0", "--format", "csv")
    assert code == 0
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["dimension"] == "symbol" and r["value"] == "BTC/USDT"]
    # BTC/USDT: cross (fell at 700 ms) and triangle (at 300 ms), both alive at 0 ms
    assert [(r["delay_ms"], r["still_profitable"]) for r in rows] == [("0", "2"), ("800", "0")]


def test_the_table(lake_uri, capsys):
    code, out, _ = run(capsys, "--lake", lake_uri, *RANGE)
    assert code == 0
    assert "signals 6 from 2025-11-21T04:40:00.000Z to 2025-11-21T05:30:00.000Z: 4 followed, 2 skipped" in out
    assert "skipped 1: rule signal: no route to price" in out
    assert "share still profitable" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "2025-11-20", "--to", "2025-11-21"], "holds no signals from 2025-11-20T00:00:00.000Z"),
    (["--from", str(END), "--to", str(T0)], "empty range: --to 2025-11-21T04:40:00.000Z is not after"),
    ([*RANGE, "--horizon-ms", "1000"], "--horizon-ms 1000 is shorter than the longest delay 5000 ms"),
])
def test_bad_input_is_a_clear_error(lake_uri, capsys, argv, message):
    code, out, err = run(capsys, "--lake", lake_uri, *argv)
    assert (code, out) == (1, "")
    assert message in err


def test_a_missing_lake_and_bad_delays(capsys, tmp_path):
    code, _, err = run(capsys, "--lake", str(tmp_path / "missing"), *RANGE)
    assert code == 1 and f"no lake at {tmp_path / 'missing'}" in err
    with pytest.raises(SystemExit) as exit_:
        main(["analytics", "outcomes", "--lake", str(tmp_path), *RANGE, "--delays", "50,-1"])
    assert exit_.value.code == 2
    assert "delay '-1' is not a whole number of milliseconds" in capsys.readouterr().err
