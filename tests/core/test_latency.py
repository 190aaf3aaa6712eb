"""The one-minute latency windows: bins, the rolling window, percentiles of merged writers, the stored form."""
from __future__ import annotations

import math
import random

import orjson
import pytest

from core.latency import (
    GROWTH,
    STAGE_NAMES,
    WINDOW_S,
    LatencyWindow,
    StageLatencies,
    bin_of,
    bin_value,
    merge,
    percentile,
    read_summary,
    stage_report,
    summary_doc,
)

T0 = 1_763_700_000.0  # epoch seconds


@pytest.mark.parametrize("ms", [0.013, 0.5, 1.0, 3.7, 42.0, 999.9, 12_345.0, 3.6e6, -0.02, -4.0, -1500.0])
def test_a_bin_stands_for_its_latency_within_two_percent(ms):
    assert bin_value(bin_of(ms)) == pytest.approx(ms, rel=(GROWTH - 1) / 2 + 1e-9)


def test_bins_are_ordered_as_latencies_and_zero_is_its_own():
    values = [-5000.0, -3.0, -0.5, -0.011, 0.0, 0.004, -0.004, 0.011, 0.5, 3.0, 5000.0]
    assert bin_of(0.0) == bin_of(0.004) == bin_of(-0.004) == 0 and bin_value(0) == 0.0
    assert [bin_of(v) for v in values] == sorted(bin_of(v) for v in values)


def test_percentiles_are_nearest_rank_within_the_bin_width():
    rng = random.Random(7)
    samples = [rng.lognormvariate(2.0, 1.0) for _ in range(20_000)]
    window = LatencyWindow()
    for i, ms in enumerate(samples):
        window.add(ms, T0 + i / 1000)
    histogram = window.histogram(T0 + 20)
    ordered = sorted(samples)
    for q in (0.5, 0.9, 0.99, 1.0):
        exact = ordered[max(1, math.ceil(len(ordered) * q)) - 1]
        assert percentile(histogram, q) == pytest.approx(exact, rel=0.021)
    assert percentile({}, 0.5) is None


def test_a_sample_may_stand_for_several_records():
    window = LatencyWindow()
    window.add(10.0, T0, count=99)
    window.add(500.0, T0)
    histogram = window.histogram(T0)
    assert sum(histogram.values()) == 100
    assert percentile(histogram, 0.99) == pytest.approx(10.0, rel=0.02)
    assert percentile(histogram, 1.0) == pytest.approx(500.0, rel=0.02)


def test_the_window_keeps_the_last_minute_only():
    window = LatencyWindow()
    window.add(1000.0, T0)  # a slow second...
    for second in range(1, WINDOW_S):
        window.add(1.0, T0 + second)
    assert percentile(window.histogram(T0 + WINDOW_S - 1), 1.0) == pytest.approx(1000.0, rel=0.02)
    # ...ages out a minute later, whether or not anything was added meanwhile
    assert percentile(window.histogram(T0 + WINDOW_S), 1.0) == pytest.approx(1.0, rel=0.02)
    assert window.histogram(T0 + 2 * WINDOW_S) == {} and len(window.seconds) == 0


def test_memory_is_bounded_by_seconds_and_bins_not_by_samples():
    window = LatencyWindow()
    for i in range(200_000):
        window.add(5.0 + (i % 7), T0 + i / 1000)  # 200 s of samples at 1,000 a second
    assert len(window.seconds) == WINDOW_S
    assert max(len(bins) for _, bins in window.seconds) <= 7


def test_a_clock_that_steps_back_adds_to_the_newest_second():
    window = LatencyWindow()
    window.add(1.0, T0 + 10)
    window.add(2.0, T0 + 3)
    assert [second for second, _ in window.seconds] == [int(T0) + 10]
    assert sum(window.histogram(T0 + 10).values()) == 2


def test_merged_writers_give_the_percentiles_of_all_their_samples():
    fast, slow = LatencyWindow(), LatencyWindow()
    for i in range(990):
        fast.add(2.0, T0 + i / 100)
    for i in range(10):
        slow.add(800.0, T0 + i)
    merged = merge([fast.histogram(T0 + 10), slow.histogram(T0 + 10)])
    assert percentile(merged, 0.5) == pytest.approx(2.0, rel=0.02)
    assert percentile(merged, 0.99) == pytest.approx(2.0, rel=0.02)  # rank 990 of 1,000
    assert percentile(merged, 0.995) == pytest.approx(800.0, rel=0.02)


def test_stage_latencies_report_about_once_a_second_and_only_stages_with_samples():
    latencies = StageLatencies(("job", "job_redis"))
    now_ms = T0 * 1000
    assert latencies.due(now_ms)
    latencies.add("job", 12.0, T0)
    docs = latencies.report(now_ms)
    assert set(docs) == {"job"}
    at, histogram = read_summary("job", docs["job"])
    assert at == int(now_ms) and histogram == {bin_of(12.0): 1}
    assert not latencies.due(now_ms + 999) and latencies.due(now_ms + 1000)


def test_an_unknown_stage_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown latency stage\(s\) \['jbo'\]; the stages are exchange_ingest, "):
        StageLatencies(("jbo",))


@pytest.mark.parametrize("doc", [b"{not json", b'{"at": 1}', b'{"at": "x", "bins": []}', b'{"at": 1, "bins": [[1]]}',
                                 b'{"at": 1, "bins": [[1, -2]]}', b"[]"])
def test_a_bad_summary_is_refused_naming_where_it_was(doc):
    with pytest.raises(ValueError, match=r"^latency summary ascep:latency:w field job"):
        read_summary("ascep:latency:w field job", doc)


def test_the_report_merges_fresh_writers_stage_by_stage_and_leaves_out_stale_ones():
    now_ms = int(T0 * 1000)
    fresh = read_summary("a", summary_doc({bin_of(3.0): 10}, now_ms - 500))
    other = read_summary("b", summary_doc({bin_of(30.0): 10}, now_ms - 59_000))
    stale = read_summary("c", summary_doc({bin_of(9000.0): 10}, now_ms - 61_000))
    report = stage_report({"job:read:0": {"kafka_job": fresh}, "job:read:1": {"kafka_job": other},
                           "job:read:2": {"kafka_job": stale}, "job:sink:0": {"job": fresh}}, now_ms)
    assert [row["stage"] for row in report] == list(STAGE_NAMES)
    rows = {row["stage"]: row for row in report}
    kafka_job = rows["kafka_job"]
    assert kafka_job["writers"] == ["job:read:0", "job:read:1"] and kafka_job["count"] == 20
    assert kafka_job["p50_ms"] == pytest.approx(3.0, rel=0.02) and kafka_job["p99_ms"] == pytest.approx(30.0, rel=0.02)
    assert rows["job"]["count"] == 10 and rows["job"]["writers"] == ["job:sink:0"]
    assert rows["exchange_ingest"] == {**rows["exchange_ingest"], "count": 0, "p50_ms": None, "p99_ms": None,
                                       "max_ms": None, "writers": []}


def test_the_stored_form_is_small_json():
    doc = summary_doc({bin_of(1.0): 3, bin_of(-2.0): 1}, 1_763_700_000_000)
    assert orjson.loads(doc) == {"at": 1_763_700_000_000, "count": 4,
                                 "bins": [[bin_of(-2.0), 1], [bin_of(1.0), 3]]}
