"""Compaction of a lake the product's LakeWriter wrote with small ranges over two hours, on a real (moto) S3 server:
the same figures and backtest order with fewer objects, and each row once after a crash at any step and after a
replay of the compacted ranges. On a local lake (the same code; faster): a writer resuming inside a compacted range,
ranges not finished yet, and an object rewritten while it is merged."""
from __future__ import annotations

import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake import maintenance as lake_maintenance
from lake.backtest import tick_streams
from lake.layout import (
    HOUR_MS,
    SIGNAL_SCHEMA,
    SIGNALS,
    TICK_SCHEMA,
    TICKS,
    covering_name,
    hour_partition,
    incarnation,
    object_name,
    parse_object_name,
)
from lake.maintenance import compact
from lake.reader import lake_report, read_kind
from lake.storage import get_object, list_files, open_lake, parquet_bytes, put_object
from lake.writer import LakeWriter
from tests.lake import synthetic
from tests.lake.synthetic import START_MS, TOPIC_ID

pytestmark = pytest.mark.integration

RANGE = 60  # offsets per tick object: small, so that each hour has many
RANGES = {"tick_range": RANGE, "signal_range": 2 * RANGE}
NO_TIME_ROLL = {"roll_seconds": 1e9, "roll_event_span_ms": 10**12}
COUNT = 600  # offsets of one partition: 30 minutes of synthetic market, over two hour directories
MIDWAY = 330  # an offset inside the range [300, 359], all of it in the first hour
MIDWAY_RANGE = (MIDWAY - MIDWAY % RANGE, MIDWAY - MIDWAY % RANGE + RANGE - 1)
NOW_MS = START_MS + 4 * HOUR_MS  # every hour of the lake ended more than the grace ago
GRACE_MS = HOUR_MS
LOOKBACK_MS = 24 * HOUR_MS


class Crash(Exception):
    """The Lambda killed mid-run (a timeout, a lost instance)."""


@pytest.fixture(scope="module")
def records():
    return synthetic.records(COUNT, partitions=(0,))


def feed(writer: LakeWriter, records, start: int = 0, stop: int = COUNT) -> None:
    for record in records:
        if start <= record.offset < stop:
            writer.add_ticks(record.partition, record.offset, record.ticks)
            if record.signals:
                writer.add_signals(record.partition, record.offset, record.signals)
    writer.flush(0, stop - 1)


def new_lake(s3, records, stop: int = COUNT, local=None):
    lake = open_lake(str(local)) if local else open_lake(f"s3://{s3.new_bucket()}/lake", s3.endpoint)
    feed(LakeWriter(lake, topic_id=TOPIC_ID, **RANGES, **NO_TIME_ROLL), records, stop=stop)
    return lake


def run(lake, max_bytes: int = 2**26):
    return compact(lake, NOW_MS, GRACE_MS, LOOKBACK_MS, max_bytes, row_group_rows=131_072)


def parquet_keys(lake) -> set[str]:
    """The data objects' paths below the lake's root."""
    return {info.path[len(lake.root) + 1:] for info in list_files(lake, lake.root) if info.path.endswith(".parquet")}


def backtest(lake) -> list:
    return [(inc, {p: [row for chunk in chunks for row in zip(chunk.offsets, chunk.ticks)]
                   for p, chunks in streams.items()})
            for inc, streams in tick_streams(lake, START_MS - HOUR_MS, NOW_MS)]


def assert_each_row_once(lake, records, upto: int = COUNT) -> None:
    for kind, expected in ((TICKS, sum(len(r.ticks) for r in records if r.offset < upto)),
                           (SIGNALS, sum(len(r.signals) for r in records if r.offset < upto))):
        rows = read_kind(lake, kind, ["kafka_partition", "kafka_offset"])
        pairs = list(zip(rows.column(0).to_pylist(), rows.column(1).to_pylist()))
        assert len(pairs) == expected, f"{kind}: {len(pairs)} rows, expected {expected}"
        if kind == TICKS:
            assert len(set(pairs)) == expected, "one tick per offset"


@pytest.fixture(scope="module")
def reference(s3, records):
    """Figures, backtest and objects of the lake as written, and its objects once compacted without a hitch."""
    lake = new_lake(s3, records)
    before = (lake_report(lake), backtest(lake), parquet_keys(lake))
    report = run(lake)
    return before, report, parquet_keys(lake), lake


def test_compaction_keeps_every_figure_and_the_backtest_order_with_fewer_objects(s3, records, reference):
    (figures, order, keys), report, compacted, lake = reference
    assert lake_report(lake) == figures
    assert backtest(lake) == order
    assert_each_row_once(lake, records)
    assert report.merged and report.sources_deleted > report.merged and not report.given_up
    directories = {k.rpartition("/")[0] for k in keys}
    assert len(compacted) == len(directories) < len(keys) / 4, "one object per directory (of the one partition)"
    assert run(lake).merged == 0, "a second run finds nothing more to merge"


def test_a_crash_at_any_step_leaves_each_row_once(s3, records, reference, monkeypatch):
    """Runs that die after 0, 1, 5 and 20 more deletions, each taking up where the last stopped."""
    (figures, order, _keys), _report, compacted, _lake = reference
    lake = new_lake(s3, records)
    delete_file = lake_maintenance.delete_file
    for crash_at in (0, 1, 5, 20):
        deletes = []

        def dies_at_a_delete(lake_, path, crash_at=crash_at, deletes=deletes):
            if len(deletes) == crash_at:
                raise Crash(path)
            deletes.append(path)
            delete_file(lake_, path)

        monkeypatch.setattr(lake_maintenance, "delete_file", dies_at_a_delete)
        with pytest.raises(Crash):
            run(lake)
        monkeypatch.undo()
        assert lake_report(lake) == figures, f"after a crash at deletion {crash_at}"
        assert_each_row_once(lake, records)
    assert backtest(lake) == order
    run(lake)  # the next scheduled run, uninterrupted
    assert parquet_keys(lake) == compacted
    assert lake_report(lake) == figures


def test_a_replay_of_compacted_ranges_adds_no_row(s3, records, reference):
    """A job restored from an old snapshot reads every offset again and writes the writer's own objects anew."""
    (figures, order, _keys), _report, compacted, _lake = reference
    lake = new_lake(s3, records)
    run(lake)
    feed(LakeWriter(lake, topic_id=TOPIC_ID, **RANGES, **NO_TIME_ROLL), records)
    assert len(parquet_keys(lake)) > len(compacted), "the replay wrote the original objects again"
    assert lake_report(lake) == figures
    assert backtest(lake) == order
    assert_each_row_once(lake, records)
    report = run(lake)
    assert report.redundant_deleted and parquet_keys(lake) == compacted


def test_a_writer_resuming_inside_a_compacted_range_reads_its_rows_from_the_merged_object(records, reference,
                                                                                          tmp_path):
    """A job restored from a checkpoint older than the compaction resumes the range around MIDWAY."""
    (figures, _order, _keys), _report, compacted, _lake = reference
    lake = new_lake(None, records, local=tmp_path)
    run(lake)
    feed(LakeWriter(lake, topic_id=TOPIC_ID, **RANGES, **NO_TIME_ROLL), records, start=MIDWAY)
    assert lake_report(lake) == figures
    assert_each_row_once(lake, records)
    rewritten = [k for k in parquet_keys(lake) - compacted
                 if k.startswith("ticks/") and k.endswith(object_name(incarnation(TOPIC_ID), 0, *MIDWAY_RANGE))]
    offsets = sorted(o for key in rewritten for o in offsets_in(lake, key))
    first, last = MIDWAY_RANGE
    assert offsets == [r.offset for r in records if first <= r.offset <= last and r.ticks], \
        "the range written again holds its offsets before MIDWAY too, read from the merged objects"


def offsets_in(lake, key: str) -> list[int]:
    return pq.read_table(pa.BufferReader(get_object(lake, lake.path(key)))).column("kafka_offset").to_pylist()


def test_ranges_the_writer_has_not_finished_are_left_alone(records, reference, tmp_path):
    (figures, _order, _keys), _report, compacted, _lake = reference
    lake = open_lake(str(tmp_path))
    writer = LakeWriter(lake, topic_id=TOPIC_ID, **RANGES, **NO_TIME_ROLL)
    feed(writer, records, stop=MIDWAY)  # the range around MIDWAY is written in part, in a closed hour
    run(lake)
    unfinished = object_name(incarnation(TOPIC_ID), 0, *MIDWAY_RANGE)
    assert any(k.endswith(unfinished) for k in parquet_keys(lake)), "the writer's part of a range is still its own"
    feed(writer, records, start=MIDWAY)  # the job goes on: more rows of that range, in an hour compacted already
    assert lake_report(lake) == figures
    assert_each_row_once(lake, records)
    run(lake)
    assert parquet_keys(lake) == compacted


def test_an_object_rewritten_while_it_is_merged_is_left_for_the_next_run(records, monkeypatch, tmp_path):
    """A replaying job rewrites a source between the listing and the merge: nothing is merged from stale rows."""
    lake = new_lake(None, records, stop=4 * RANGE, local=tmp_path)
    read = lake_maintenance.get_object
    changed = []

    def rewritten_after_the_read(lake_, path):
        data = read(lake_, path)
        if not changed and path.endswith(".parquet"):
            put_object(lake_, path, parquet_bytes(pq.read_table(pa.BufferReader(data)).slice(0, 1), 64))
            changed.append(path)
        return data

    monkeypatch.setattr(lake_maintenance, "get_object", rewritten_after_the_read)
    report = run(lake)
    assert changed and report.given_up == 1 and report.merged
    directory, _, name = changed[0][len(lake.root) + 1:].rpartition("/")
    names = [k.rpartition("/")[2] for k in parquet_keys(lake) if k.rpartition("/")[0] == directory]
    inc, partition, first, last = parse_object_name(name)
    assert name in names and covering_name([n for n in names if n != name], inc, partition, first, last) is None, \
        "no merged object covers the rewritten one"


def test_hours_inside_the_grace_and_runs_out_of_time_are_left_alone(records, tmp_path):
    lake = new_lake(None, records, local=tmp_path)
    written = parquet_keys(lake)
    second_hour = hour_partition(START_MS + HOUR_MS)
    report = compact(lake, START_MS + 2 * HOUR_MS, GRACE_MS, LOOKBACK_MS, 2**26, row_group_rows=131_072)
    assert report.merged and all(k in written for k in parquet_keys(lake) if second_hour in k), \
        "the hour that ended less than the grace ago is as the writer left it"
    assert {k for k in written if second_hour in k} <= parquet_keys(lake)
    late = compact(lake, NOW_MS, GRACE_MS, LOOKBACK_MS, 2**26, row_group_rows=131_072, deadline=time.monotonic() - 1)
    assert late.out_of_time and late.merged == 0


def as_written_before_books(table: pa.Table) -> pa.Table:
    """A table as the job wrote it before ticks carried books and legs their VWAP."""
    if "bids" in table.column_names:
        return table.drop_columns(["bids", "asks"])
    old_leg = pa.struct([f for f in SIGNAL_SCHEMA.field("legs").type.value_type if f.name != "vwap"])
    legs = [[{k: v for k, v in leg.items() if k != "vwap"} for leg in row] for row in table.column("legs").to_pylist()]
    return table.set_column(table.schema.get_field_index("legs"), "legs", pa.array(legs, pa.list_(old_leg)))


def test_objects_written_before_books_read_compact_and_resume(records, reference, tmp_path):
    """Objects without the ticks' book columns and the legs' vwap field read, merge (with nulls) beside current
    ones and let a writer resume inside their ranges: Arrow's own promotion adds columns but no nested field."""
    (figures, _order, _keys), _report, compacted, _lake = reference
    lake = new_lake(None, records, stop=MIDWAY, local=tmp_path)
    for key in parquet_keys(lake):
        written = os.stat(lake.path(key))  # compaction merges only objects no newer than their range's manifest
        table = pq.read_table(pa.BufferReader(get_object(lake, lake.path(key))))
        put_object(lake, lake.path(key), parquet_bytes(as_written_before_books(table), 131_072))
        os.utime(lake.path(key), ns=(written.st_atime_ns, written.st_mtime_ns))  # as the older writer left it
    assert read_kind(lake, SIGNALS).column("legs").type == SIGNAL_SCHEMA.field("legs").type
    feed(LakeWriter(lake, topic_id=TOPIC_ID, **RANGES, **NO_TIME_ROLL), records, start=MIDWAY - 20)
    assert lake_report(lake) == figures
    assert run(lake).merged
    assert lake_report(lake) == figures
    assert_each_row_once(lake, records)
    legs = read_kind(lake, SIGNALS, ["legs"]).column(0).to_pylist()
    assert legs and all(leg["vwap"] is None for row in legs for leg in row)
    for key in parquet_keys(lake):
        schema = pq.read_schema(pa.BufferReader(get_object(lake, lake.path(key))))
        assert schema.equals(SIGNAL_SCHEMA if key.startswith(SIGNALS) else TICK_SCHEMA), key
