"""`ascep analytics` over a lake written from the synthetic input, checked against figures computed from that input."""
from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime

import pytest
from float_noise import noisy_floats

from ascep.cli import main
from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake import synthetic
from tests.lake.synthetic import TOPIC_ID

pytestmark = pytest.mark.integration

COUNT = 2_980  # the last opportunity (offset 2950) is still open at the end
GAP_SECONDS = 10


def write_lake(uri: str, endpoint: str | None = None) -> None:
    writer = LakeWriter(open_lake(uri, endpoint), topic_id=TOPIC_ID, tick_range=1_000, signal_range=2_000,
                        roll_event_span_ms=10**12)
    for record in synthetic.records(COUNT):
        writer.add_ticks(record.partition, record.offset, record.ticks)
        writer.add_signals(record.partition, record.offset, record.signals)
    for partition in (0, 1):
        writer.flush(partition, COUNT - 1)


def linear_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def hour_of(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:00Z")


def iso_of(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def expected_figures() -> dict:
    finals = synthetic.final_states(COUNT)
    records = synthetic.records(COUNT)
    by_hour = Counter()
    for s in finals:
        hour = hour_of(s["event_time"])
        by_hour[(hour, "type", s["type"])] += 1
        by_hour[(hour, "symbol", s["legs"][0]["symbol"])] += 1
        for venue in {leg["venue"] for leg in s["legs"]}:
            by_hour[(hour, "venue", venue)] += 1
    ticks_by_venue = {}
    for venue in synthetic.VENUES:
        stamps = sorted(t.ts for r in records for t in r.ticks if t.venue == venue)
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b - a > GAP_SECONDS * 1000]
        ticks_by_venue[venue] = {"venue": venue, "ticks": len(stamps), "first_ts": stamps[0],
                                 "first_ts_iso": iso_of(stamps[0]), "last_ts": stamps[-1],
                                 "last_ts_iso": iso_of(stamps[-1]), "gaps": len(gaps),
                                 "longest_gap_ms": max(gaps, default=0), "gap_time_ms": sum(gaps)}
    closed = [s for s in finals if s["status"] == "closed"]
    return {
        "finals": finals,
        "totals": {"ticks": sum(len(r.ticks) for r in records), "signals": len(finals),
                   "signal_states": sum(len(r.signals) for r in records)},
        "signals_by_hour": by_hour,
        "profit": [s["profit_bps"] for s in finals],
        "duration": [s["closed_at"] - s["event_time"] for s in closed],
        "still_open": len(finals) - len(closed),
        "latency": [s["detected_at"] - s["event_time"] for s in finals],
        "ticks_by_venue": ticks_by_venue,
    }


def check_percentiles(figures: dict, values: list[float]) -> None:
    assert figures["count"] == len(values)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        assert figures[key] == pytest.approx(linear_percentile(values, q), abs=1e-3), key
    assert figures["max"] == max(values)
    assert figures["mean"] == pytest.approx(sum(values) / len(values), abs=1e-3)


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("lake"))
    write_lake(root)
    return root


def run_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(["analytics", *argv, "--json", "--gap-seconds", str(GAP_SECONDS)]) == 0
    return json.loads(capsys.readouterr().out)


def test_figures_match_the_input(local_lake, capsys, tmp_path):
    figures = run_json(capsys, "--lake", local_lake, "--out", str(tmp_path / "out"))
    expected = expected_figures()
    assert figures["totals"] == expected["totals"]
    assert {(r["hour"], r["dimension"], r["value"]): r["signals"] for r in figures["signals_by_hour"]} \
        == dict(expected["signals_by_hour"])
    check_percentiles(figures["profit_bps"], expected["profit"])
    assert figures["profit_bps"]["min"] == min(expected["profit"])
    edges = [-math.inf, 1, 2, 5, 10, 20, 50, 100, math.inf]
    assert [b["signals"] for b in figures["profit_bps"]["histogram"]] == \
        [sum(lo <= p < hi for p in expected["profit"]) for lo, hi in zip(edges, edges[1:])]
    check_percentiles(figures["duration_ms"], expected["duration"])
    assert figures["duration_ms"]["still_open"] == expected["still_open"] > 0
    check_percentiles(figures["detection_latency_ms"], expected["latency"])
    assert {v["venue"]: v for v in figures["ticks_by_venue"]} == expected["ticks_by_venue"]
    assert expected["ticks_by_venue"]["kraken"]["gaps"] >= 1 and expected["ticks_by_venue"]["binance"]["gaps"] == 0

    assert noisy_floats(figures) == []

    out = tmp_path / "out"
    assert json.loads((out / "report.json").read_text()) == figures
    assert (out / "analytics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    venue_csv = (out / "ticks_by_venue.csv").read_text().splitlines()
    assert venue_csv[0].startswith("venue,ticks,") and len(venue_csv) == 1 + len(synthetic.VENUES)
    assert (out / "signals_by_hour.csv").exists() and (out / "profit_histogram.csv").exists()


def test_tables_are_printed(local_lake, capsys):
    assert main(["analytics", "--lake", local_lake]) == 0
    out = capsys.readouterr().out
    totals = expected_figures()["totals"]
    assert f"ticks {totals['ticks']:,}  signals {totals['signals']:,}" in out
    for title in ("signals opened per hour", "net profit (bps)", "opportunity duration (ms)",
                  "detection latency", "ticks per venue"):
        assert title in out
    venues = expected_figures()["ticks_by_venue"].values()
    header = next(line.split() for line in out.splitlines() if line.strip().startswith("venue"))
    assert header[:4] == ["venue", "ticks", "first_ts_iso", "last_ts_iso"]  # times as a person reads them
    for row in venues:
        assert row["first_ts_iso"] in out and row["last_ts_iso"] in out and str(row["first_ts"]) not in out


def test_s3_lake_gives_the_same_figures(s3, local_lake, capsys, monkeypatch):
    bucket = s3.new_bucket()
    write_lake(f"s3://{bucket}/lake", s3.endpoint)
    monkeypatch.setenv("ASCEP_S3_ENDPOINT", s3.endpoint)
    assert run_json(capsys, "--lake", f"s3://{bucket}/lake") == run_json(capsys, "--lake", local_lake)


def test_lake_from_settings_and_a_clear_error_without_one(local_lake, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEP_LAKE", local_lake)
    assert run_json(capsys) == run_json(capsys, "--lake", local_lake)
    monkeypatch.delenv("ASCEP_LAKE")
    monkeypatch.setenv("ASCEP_STATE_DIR", str(tmp_path))
    assert main(["analytics"]) == 1
    assert "no lake address" in capsys.readouterr().err


def test_a_lake_that_does_not_exist_is_an_error_not_zeros(capsys, tmp_path):
    assert main(["analytics", "--lake", str(tmp_path / "missing")]) == 1
    assert f"no lake at {tmp_path / 'missing'}" in capsys.readouterr().err
