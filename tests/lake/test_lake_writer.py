"""The Parquet lake: layout, deterministic names, exactly-once replays, rolls, and S3 outages."""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lake.layout import SIGNAL_SCHEMA, SIGNALS, TICK_SCHEMA, TICKS, hour_partition, incarnation, object_name
from lake.reader import read_kind
from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake import synthetic
from tests.lake.synthetic import TOPIC_ID

pytestmark = pytest.mark.integration

NAME = re.compile(rf"part-{incarnation(TOPIC_ID)}-p(\d{{3}})-o(\d{{12}})-(\d{{12}})\.parquet")
NO_TIME_ROLL = {"roll_seconds": 1e9, "roll_event_span_ms": 10**12}


def feed(writer: LakeWriter, records, start: int = 0, stop: int | None = None, flush_every: int | None = None) -> None:
    for record in records:
        if record.offset < start or (stop is not None and record.offset >= stop):
            continue
        writer.add_ticks(record.partition, record.offset, record.ticks)
        if record.signals:
            writer.add_signals(record.partition, record.offset, record.signals)
        if flush_every and record.offset % flush_every == flush_every - 1:
            writer.flush(record.partition, record.offset)


def flush_all(writer: LakeWriter, records) -> None:
    for partition in {r.partition for r in records}:
        writer.flush(partition, max(r.offset for r in records if r.partition == partition))


def local_objects(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def records():
    return synthetic.records(2_400)


@pytest.fixture(scope="module")
def reference(records, tmp_path_factory) -> dict[str, bytes]:
    """The lake written in one clean pass, flushed only at the end."""
    root = tmp_path_factory.mktemp("reference")
    writer = LakeWriter(open_lake(str(root)), topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(writer, records)
    flush_all(writer, records)
    return local_objects(root)


def test_layout_names_schemas_and_compression(reference, records, tmp_path):
    parquet = {k: v for k, v in reference.items() if k.endswith(".parquet")}
    assert parquet and all(not Path(k).name.startswith(".") for k in reference), "no temp files left behind"
    tick_rows = signal_rows = 0
    for key, data in parquet.items():
        path = tmp_path / "one.parquet"
        path.write_bytes(data)
        meta = pq.ParquetFile(path).metadata
        table = pq.read_table(path)
        partition, first, last = map(int, NAME.fullmatch(Path(key).name).groups())
        kind, *hive = Path(key).parent.parts
        size = 500 if kind == TICKS else 1_000
        assert first % size == 0 and last == first + size - 1, key
        assert set(table.column("kafka_partition").to_pylist()) == {partition}
        assert all(first <= o <= last for o in table.column("kafka_offset").to_pylist()), key
        assert all(meta.row_group(i).column(c).compression == "ZSTD"
                   for i in range(meta.num_row_groups) for c in range(meta.num_columns))
        if kind == TICKS:
            assert table.schema.equals(TICK_SCHEMA), key
            assert {f"{hour_partition(ts)}/venue={v}" for ts, v in zip(table.column("ts").to_pylist(),
                                                                      table.column("venue").to_pylist())} \
                == {"/".join(hive)}
            tick_rows += table.num_rows
        else:
            assert kind == SIGNALS and table.schema.equals(SIGNAL_SCHEMA), key
            assert {hour_partition(t) for t in table.column("event_time").to_pylist()} == {"/".join(hive)}
            signal_rows += table.num_rows
    assert tick_rows == sum(len(r.ticks) for r in records)
    assert signal_rows == sum(len(r.signals) for r in records), "every state of every signal is kept"
    hours = {k.split("/")[1:3][1] for k in parquet if k.startswith("ticks/")}
    assert hours == {"hour=04", "hour=05", "hour=06"}


def test_row_groups_are_bounded(records, tmp_path):
    writer = LakeWriter(open_lake(str(tmp_path)), topic_id=TOPIC_ID, tick_range=1_000, row_group_rows=100,
                        **NO_TIME_ROLL)
    feed(writer, records, stop=1_000)
    flush_all(writer, [r for r in records if r.offset < 1_000])
    files = list((tmp_path / TICKS).rglob("*.parquet"))
    assert any(pq.ParquetFile(f).metadata.num_row_groups > 1 for f in files)
    assert all(pq.ParquetFile(f).metadata.row_group(i).num_rows <= 100
               for f in files for i in range(pq.ParquetFile(f).metadata.num_row_groups))


def test_signal_rows_keep_legs_and_flattened_columns(reference, tmp_path):
    root = tmp_path / "lake"
    for key, data in reference.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    rows = read_kind(open_lake(str(root)), SIGNALS).to_pylist()
    states = [r for r in rows if r["id"] == "s1-100"]
    assert [(s["status"], s["profit_bps"]) for s in sorted(states, key=lambda s: s["kafka_offset"])] == \
        [("open", 1.0 + 26 * 1.5), ("open", 1.0 + 26 * 1.5 + 3), ("closed", 1.0 + 26 * 1.5 + 3)]
    closed = next(s for s in states if s["status"] == "closed")
    assert closed["legs"] == [{**leg, "vwap": None} for leg in synthetic.opening(1, 100)["legs"]]  # no book walked
    assert (closed["symbol"], closed["buy_venue"], closed["sell_venue"]) == ("BTC/USDT", "coinbase", "kraken")
    assert closed["duration_ms"] == closed["closed_at"] - closed["event_time"] == 30 * synthetic.STEP_MS
    assert closed["kafka_offset"] == 130 and closed["kafka_partition"] == 1


def test_crash_and_replay_from_checkpoint_rewrites_the_same_objects(records, reference, tmp_path):
    """Flushed up to the checkpoint, then ran on (time rolls writing partial files), then died."""
    lake = open_lake(str(tmp_path))
    before = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, roll_seconds=1e9,
                        roll_event_span_ms=60_000)
    feed(before, records, stop=1_730)
    flush_all(before, [r for r in records if r.offset < 1_730])  # what the job does before checkpointing 1730
    feed(before, records, start=1_730, stop=2_100)  # processed after the checkpoint, then lost in the crash
    after = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(after, records, start=1_730)
    flush_all(after, records)
    assert local_objects(tmp_path) == reference


def test_replaying_everything_twice_and_rewinding_leave_the_same_objects(records, reference, tmp_path):
    lake = open_lake(str(tmp_path))
    writer = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, roll_seconds=1e9,
                        roll_event_span_ms=100 * synthetic.STEP_MS)
    feed(writer, records, stop=1_600)
    feed(writer, records, start=1_234)  # the job rewound without a restart
    flush_all(writer, records)
    again = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(again, records, flush_every=97)
    flush_all(again, records)
    assert local_objects(tmp_path) == reference


def test_roll_by_offsets_then_partial_flush_grows_the_same_object(records, tmp_path):
    writer = LakeWriter(open_lake(str(tmp_path)), topic_id=TOPIC_ID, tick_range=100, **NO_TIME_ROLL)
    only_p0 = [r for r in records if r.partition == 0]
    feed(writer, only_p0, stop=251)

    def offsets_by_name():
        found: dict[str, list[int]] = {}
        for f in (tmp_path / TICKS).rglob("*.parquet"):
            found.setdefault(f.name, []).extend(pq.read_table(f).column("kafka_offset").to_pylist())
        return {name: sorted(offsets) for name, offsets in found.items()}

    def name(first: int) -> str:
        return object_name(incarnation(TOPIC_ID), 0, first, first + 99)

    assert offsets_by_name() == {name(0): list(range(100)), name(100): list(range(100, 200))}
    writer.flush(0, 250)
    assert offsets_by_name()[name(200)] == list(range(200, 251))
    feed(writer, only_p0, start=251, stop=301)
    assert offsets_by_name()[name(200)] == list(range(200, 300))
    assert len(offsets_by_name()) == 3


def test_a_topic_created_again_writes_beside_the_earlier_objects(records, reference, tmp_path):
    """An embedded broker restarted: the topic has another id and its offsets start at 0 again, with a
    crash midway so the second incarnation also resumes a range from its own manifest."""
    lake = open_lake(str(tmp_path))
    first = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(first, records)
    flush_all(first, records)
    again = "01a2313e-9c00-7b2a-8d41-0c5e7f3a9b12"
    before = LakeWriter(lake, topic_id=again, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(before, records, stop=1_730)
    flush_all(before, [r for r in records if r.offset < 1_730])
    after = LakeWriter(lake, topic_id=again, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(after, records, start=1_730)
    flush_all(after, records)
    objects = local_objects(tmp_path)
    assert {k: v for k, v in objects.items() if incarnation(TOPIC_ID) in k} == reference, "the first run is intact"
    assert {k.replace(incarnation(again), incarnation(TOPIC_ID)) for k in objects if incarnation(again) in k} \
        == set(reference), "the second run has objects of its own"
    assert read_kind(lake, TICKS).num_rows == 2 * sum(len(r.ticks) for r in records)
    assert read_kind(lake, SIGNALS).num_rows == 2 * sum(len(r.signals) for r in records)


def test_a_topic_id_that_is_not_a_uuid_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lake: topic id 'ticks' is not a UUID"):
        LakeWriter(open_lake(str(tmp_path)), topic_id="ticks")


def test_roll_by_wall_time_and_by_event_time_span(records, tmp_path):
    only_p0 = [r for r in records if r.partition == 0]
    by_wall = LakeWriter(open_lake(str(tmp_path / "wall")), topic_id=TOPIC_ID, tick_range=1_000, roll_seconds=0.3,
                         roll_event_span_ms=10**12)
    feed(by_wall, only_p0, stop=10)
    assert not (tmp_path / "wall" / TICKS).exists()
    time.sleep(0.35)
    feed(by_wall, only_p0, start=10, stop=11)
    assert read_kind(open_lake(str(tmp_path / "wall")), TICKS).num_rows == 11

    by_span = LakeWriter(open_lake(str(tmp_path / "span")), topic_id=TOPIC_ID, tick_range=1_000, roll_seconds=1e9,
                         roll_event_span_ms=10 * synthetic.STEP_MS)
    feed(by_span, only_p0, stop=10)
    assert not (tmp_path / "span" / TICKS).exists()
    feed(by_span, only_p0, start=10, stop=11)  # 10 steps between the oldest and newest unwritten tick
    assert read_kind(open_lake(str(tmp_path / "span")), TICKS).num_rows == 11


def test_s3_lake_matches_local_and_replays_without_duplicates(s3, records, reference):
    bucket = s3.new_bucket()
    lake = open_lake(f"s3://{bucket}/lake", s3.endpoint)
    subset = [r for r in records if r.offset < 1_200]
    for run in range(2):
        writer = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
        feed(writer, subset, start=0 if run == 0 else 730)
        flush_all(writer, subset)
        objects = s3.keys(bucket)
        if run == 0:
            first = objects
    assert objects == first
    assert all(k.startswith("lake/") for k in objects)
    complete = {k[len("lake/"):]: v for k, v in objects.items()
                if k.endswith(".parquet") and "-o000000000000-000000000499" in k}
    assert complete and all(reference[k] == v for k, v in complete.items()), "same bytes as the local lake"
    ticks = read_kind(lake, TICKS)
    pairs = list(zip(ticks.column("kafka_partition").to_pylist(), ticks.column("kafka_offset").to_pylist()))
    assert len(pairs) == len(set(pairs)) == sum(len(r.ticks) for r in subset)


def test_s3_down_blocks_the_writer_until_it_is_back(s3, records, caplog):
    bucket = s3.new_bucket()
    lake = open_lake(f"s3://{bucket}/lake", s3.endpoint)
    writer = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=500, signal_range=1_000, **NO_TIME_ROLL)
    feed(writer, records, stop=400)
    flush_all(writer, [r for r in records if r.offset < 400])
    s3.stop()
    done = threading.Event()

    def rest():
        feed(writer, records, start=400, stop=1_100)
        flush_all(writer, [r for r in records if r.offset < 1_100])
        done.set()

    with caplog.at_level(logging.WARNING, logger="lake"):
        thread = threading.Thread(target=rest, daemon=True)
        thread.start()
        try:
            assert not done.wait(1.5), "the writer must block while S3 is down"
        finally:
            s3.start()
        assert done.wait(30), "the writer must finish once S3 is back"
    warnings = [r for r in caplog.records if r.getMessage() == "lake unavailable, retrying"]
    assert warnings and all("error" in r.fields and "retry_in_s" in r.fields for r in warnings)
    ticks = read_kind(lake, TICKS)
    pairs = sorted(zip(ticks.column("kafka_partition").to_pylist(), ticks.column("kafka_offset").to_pylist()))
    assert pairs == sorted((r.partition, r.offset) for r in records if r.offset < 1_100 and r.ticks)
    assert read_kind(lake, SIGNALS).num_rows == sum(len(r.signals) for r in records if r.offset < 1_100)


def test_a_malformed_signal_is_refused_with_its_id_and_offset(tmp_path):
    writer = LakeWriter(open_lake(str(tmp_path)), topic_id=TOPIC_ID)
    broken = {k: v for k, v in synthetic.opening(0, 50).items() if k != "event_time"}
    with pytest.raises(ValueError, match=r"signal 's0-50' at partition 0 offset 50 .*'event_time'"):
        writer.add_signals(0, 50, [broken])


def test_a_lake_uri_that_is_neither_a_directory_nor_s3_is_refused():
    with pytest.raises(ValueError, match="expected a local directory or s3://bucket/prefix"):
        open_lake("gs://bucket/lake")
    with pytest.raises(ValueError, match="names no bucket"):
        open_lake("s3:///lake")
