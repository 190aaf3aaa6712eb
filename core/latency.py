"""Latency of each stage of the pipeline over the last minute: cheap to record, and mergeable across writers.

Each writer (a producer, the job's tick reader and its sink, the dashboard's live relay) keeps a LatencyWindow
per stage it sees and writes the window's histogram to Redis about once a second (LATENCY keys,
core/contracts/redis_keys.py); /api/latency merges the histograms of every writer of a stage and takes p50 and
p99 of the merge. Percentiles of several writers do not merge; histograms do.

A histogram has logarithmic bins GROWTH apart, so a percentile is within about 2% of the latency it names, and a
window holds one sparse histogram per second: memory is bounded by WINDOW_S seconds times the bins a second
fills (a few dozen), however many samples come. Negative latencies (a clock ahead of the one it is compared
with) keep their sign, so a skew shows instead of reading as zero. docs/observability.md says what each
stage measures.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any, NamedTuple

import orjson


class Stage(NamedTuple):
    name: str
    start: str  # where the latency starts...
    end: str  # ...and where it ends
    measures: str


STAGES = (
    Stage("exchange_ingest", "exchange", "ingest",
          "a connector's receive time minus the tick's exchange time (ts): the venue and the network"),
    Stage("ingest_kafka", "ingest", "Kafka",
          "produce() to the broker's acknowledgement, as librdkafka measures it (linger and batching included)"),
    Stage("kafka_job", "Kafka", "job",
          "the job's poll of a record minus the record's Kafka timestamp (CreateTime: the producer's produce() "
          "time, so ingest_kafka is inside it)"),
    Stage("job", "job", "job",
          "the tick reader's poll to the sink taking the batch: validation and detection, and the hops between"),
    Stage("job_redis", "job", "Redis",
          "the sink taking a batch to its writes done: prices, signals and their PUBLISH in Redis (and a batch's "
          "signals acknowledged on the signals topic)"),
    Stage("redis_websocket", "Redis", "WebSocket",
          "the sink's PUBLISH on ascep:live to the dashboard relaying it to its sockets (price coalescing included)"),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)
WINDOW_S = 60
REPORT_EVERY_MS = 1_000
GROWTH = 1.04
SMALLEST_MS = 0.01  # a latency nearer zero than this counts as zero: bin 0
_SCALE = 1 / math.log(GROWTH)
_LOG_SMALLEST = math.log(SMALLEST_MS)

Histogram = dict[int, int]  # bin -> count


def bin_of(ms: float) -> int:
    """The bin of a latency: 0 near zero, k > 0 for [SMALLEST_MS * GROWTH**(k-1), SMALLEST_MS * GROWTH**k), -k
    for the same magnitudes below zero; ordered as the latencies are."""
    if ms >= SMALLEST_MS:
        return 1 + int((math.log(ms) - _LOG_SMALLEST) * _SCALE)
    if ms <= -SMALLEST_MS:
        return -1 - int((math.log(-ms) - _LOG_SMALLEST) * _SCALE)
    return 0


def bin_value(index: int) -> float:
    """The latency a bin stands for: the geometric middle of its range."""
    if index == 0:
        return 0.0
    magnitude = SMALLEST_MS * GROWTH ** (abs(index) - 0.5)
    return magnitude if index > 0 else -magnitude


class LatencyWindow:
    """One stage's latencies over the last `span_s` seconds, as one sparse histogram per second."""

    __slots__ = ("span_s", "seconds", "_second", "_bins")

    def __init__(self, span_s: int = WINDOW_S) -> None:
        self.span_s = span_s
        self.seconds: deque[tuple[int, Histogram]] = deque()
        self._second = -1  # the newest second, and its bins: what nearly every add() touches
        self._bins: Histogram = {}

    def add(self, ms: float, now_s: float, count: int = 1) -> None:
        """`count` samples of latency `ms` (a sample standing for `count` records), seen at `now_s` (epoch s).
        A clock that stepped back adds to the newest second rather than reorder the window."""
        if int(now_s) > self._second:
            self._roll(int(now_s))
        index = 1 + int((math.log(ms) - _LOG_SMALLEST) * _SCALE) if ms >= SMALLEST_MS else bin_of(ms)
        bins = self._bins
        bins[index] = bins.get(index, 0) + count

    def _roll(self, second: int) -> None:
        self._second, self._bins = second, {}
        self.seconds.append((second, self._bins))
        self._drop_before(second - self.span_s)

    def _drop_before(self, horizon: int) -> None:
        while self.seconds and self.seconds[0][0] <= horizon:
            self.seconds.popleft()
        if not self.seconds:
            self._second = -1  # its bins are gone with it

    def histogram(self, now_s: float) -> Histogram:
        """The samples of the `span_s` seconds up to `now_s`, merged; older seconds are dropped for good."""
        self._drop_before(int(now_s) - self.span_s)
        return merge(bins for _, bins in self.seconds)


class StageLatencies:
    """A writer's windows, one per stage, and when it reports them: about every `every_ms`."""

    def __init__(self, stages: tuple[str, ...], every_ms: int = REPORT_EVERY_MS, span_s: int = WINDOW_S) -> None:
        unknown = set(stages) - set(STAGE_NAMES)
        if unknown:
            raise ValueError(f"unknown latency stage(s) {sorted(unknown)}; the stages are {', '.join(STAGE_NAMES)}")
        self.windows = {stage: LatencyWindow(span_s) for stage in stages}
        self.every_ms = every_ms
        self.reported_at: float | None = None

    def add(self, stage: str, ms: float, now_s: float, count: int = 1) -> None:
        self.windows[stage].add(ms, now_s, count)

    def due(self, now_ms: float) -> bool:
        return self.reported_at is None or now_ms - self.reported_at >= self.every_ms

    def report(self, now_ms: float) -> dict[str, bytes]:
        """stage -> summary_doc() of each stage with samples in its window; the clock starts again."""
        self.reported_at = now_ms
        docs = {}
        for stage, window in self.windows.items():
            histogram = window.histogram(now_ms / 1000)
            if histogram:
                docs[stage] = summary_doc(histogram, int(now_ms))
        return docs


def merge(histograms) -> Histogram:
    out: Histogram = {}
    for histogram in histograms:
        for index, count in histogram.items():
            out[index] = out.get(index, 0) + count
    return out


def percentile(histogram: Histogram, q: float) -> float | None:
    """The latency at rank ceil(q * n) of the samples (nearest rank), or None without samples."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bin_value(index)
    raise AssertionError("unreachable: the ranks add up to the total")


def summary_doc(histogram: Histogram, at_ms: int) -> bytes:
    """What a writer stores for one stage: its window's histogram as of `at_ms`."""
    return orjson.dumps({"at": at_ms, "count": sum(histogram.values()), "bins": sorted(histogram.items())})


def read_summary(where: str, doc: bytes | str) -> tuple[int, Histogram]:
    """summary_doc() read back: (at_ms, histogram); ValueError names `where` and what is wrong."""
    try:
        values = orjson.loads(doc)
        at, bins = values["at"], values["bins"]
        histogram = {int(index): int(count) for index, count in bins}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"latency summary {where} is not JSON with at and bins [[bin, count], ...]: "
                         f"{str(doc)[:80]!r}") from exc
    if type(at) is not int or any(count < 0 for count in histogram.values()):
        raise ValueError(f"latency summary {where}: `at` must be epoch ms and counts >= 0, got {str(doc)[:80]!r}")
    return at, histogram


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def figures(histogram: Histogram) -> dict[str, Any]:
    """count, p50, p99 and max of one stage, in ms."""
    return {"count": sum(histogram.values()), "p50_ms": _ms(percentile(histogram, 0.50)),
            "p99_ms": _ms(percentile(histogram, 0.99)), "max_ms": _ms(percentile(histogram, 1.0))}


def stage_report(summaries: dict[str, dict[str, tuple[int, Histogram]]], now_ms: int,
                 span_s: int = WINDOW_S) -> list[dict[str, Any]]:
    """Every stage in pipeline order with its figures over the writers' summaries (writer -> stage -> (at,
    histogram)); a summary older than the window is left out (its writer has stopped reporting), and each stage
    names the writers it merged."""
    horizon = now_ms - span_s * 1000
    out = []
    for stage in STAGES:
        merged: Histogram = {}
        writers = []
        for writer, stages in sorted(summaries.items()):
            found = stages.get(stage.name)
            if found is not None and found[0] >= horizon:
                merged = merge((merged, found[1]))
                writers.append(writer)
        out.append({"stage": stage.name, "start": stage.start, "end": stage.end, "measures": stage.measures,
                    **figures(merged), "writers": writers})
    return out
