"""Writes ticks, trades and signal states to a Parquet lake (local directory or S3), exactly once by construction.

PyFlink gives Python no checkpoint hooks, so the sink cannot commit files with a checkpoint.
Instead every object's name is a pure function of the topic's incarnation (its topic id), the Kafka
partition and an aligned offset range (like Kafka Connect's S3 sink): the rows of offsets
[k*N, (k+1)*N-1] of partition p of one incarnation that fall in one Hive partition always go to the
same object. A time roll writes the range so far; later writes of the same range replace that
object with more rows under the same name. A replay after a crash therefore overwrites objects
with identical content and never adds a second copy. A topic created again (the embedded broker
keeps topics in memory) restarts at offset 0 under another id, so its objects sit beside the
earlier ones instead of replacing them.

After a restart the job resumes mid-range; the rows of that range written before the crash are
read back (via a small per-range manifest) so the next write of the range still holds them all.
That is complete as long as the job calls `flush(partition, offset)` before it checkpoints a
source offset past `offset` (docs/lake.md, "Exactly once").

While the store is unreachable, writes retry with backoff and block: the job backs up, nothing drops.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.log import event
from lake.layout import (
    KINDS,
    SIGNALS,
    TICKS,
    TRADES,
    conform,
    covering_name,
    incarnation,
    manifest_path,
    object_name,
    rows_table,
)
from lake.storage import Lake, get_object, list_files, parquet_bytes, put_object

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingSpan:
    """When the pending rows began and the event times they span: what a time roll is judged by.

    One Optional on OpenRange rather than three, so the three are always set and cleared together.
    """

    since: float  # wall time of the oldest pending row
    event_min: int
    event_max: int


@dataclass
class OpenRange:
    """Every row of one aligned offset range of one partition, by Hive directory, until the range is complete.

    Rows already written are kept as Arrow tables, so each rewrite converts only the new rows.
    """

    first: int
    last: int
    schema: pa.Schema
    tables: dict[str, pa.Table] = field(default_factory=dict)  # rows written at least once
    pending: dict[str, list[tuple]] = field(default_factory=dict)  # rows since the last write
    objects: set[str] = field(default_factory=set)  # directories written so far (for the manifest)
    last_offset: int = -1
    pending_span: PendingSpan | None = None  # set by the first row added after a write

    def add(self, directory: str, row: tuple, event_time: int, offset: int) -> None:
        self.pending.setdefault(directory, []).append(row)
        self.last_offset = max(self.last_offset, offset)
        span = self.pending_span
        if span is None:
            self.pending_span = PendingSpan(time.monotonic(), event_time, event_time)
        else:
            span.event_min = min(span.event_min, event_time)
            span.event_max = max(span.event_max, event_time)

    def keep(self, directory: str, table: pa.Table) -> None:
        self.tables[directory] = conform(table, self.schema)  # written by an older job, perhaps
        self.objects.add(directory)
        if table.num_rows:
            self.last_offset = max(self.last_offset, pc.max(table.column("kafka_offset")).as_py())

    def forget_from(self, offset: int) -> None:
        """Rows at or past `offset` will be sent again; those before it (written or not) stay."""
        self.tables = {d: t.filter(pc.field("kafka_offset") < offset) for d, t in self.tables.items()}
        self.pending = {d: kept for d, rows in self.pending.items() if (kept := [r for r in rows if r[-1] < offset])}
        self.last_offset = max([-1, *(pc.max(t.column("kafka_offset")).as_py() or -1 for t in self.tables.values()),
                                *(rows[-1][-1] for rows in self.pending.values())])

    def take(self, directory: str) -> pa.Table:
        """All rows of `directory`, the pending ones moved into its table."""
        new = rows_table(self.schema, self.pending.pop(directory))
        old = self.tables.get(directory)
        table = new if old is None else pa.concat_tables([old, new]).combine_chunks()
        self.tables[directory] = table
        self.objects.add(directory)
        return table


class LakeWriter:
    """Driven by the job: add rows with their Kafka offsets, flush when offsets are about to be checkpointed.

    Offsets must not decrease per partition and kind, except on a rewind (restart), which drops the
    unwritten rows at or after the new offset: the job will send them again. `topic_id` is that of the
    topic the offsets are of: it names the objects, so offsets of a recreated topic never meet old ones.
    """

    def __init__(self, lake: Lake, *, topic_id: str, tick_range: int = 131_072, signal_range: int = 1_048_576,
                 roll_seconds: float = 60.0, roll_event_span_ms: int = 600_000, row_group_rows: int = 131_072,
                 read_with: str | None = None) -> None:
        """`read_with`: the id of the topic the job read this one's records beside (the ticks', for trades): the
        manifests name its incarnation, so a backtest pairs what one job read together."""
        if tick_range < 1 or signal_range < 1:
            raise ValueError("tick_range and signal_range must be >= 1 offset")
        self.lake = lake
        self.topic_id = topic_id
        self.incarnation = incarnation(topic_id)
        self.read_with = None if read_with is None else incarnation(read_with)
        self.range_size = {TICKS: tick_range, TRADES: tick_range, SIGNALS: signal_range}
        self.roll_seconds = roll_seconds
        self.roll_event_span_ms = roll_event_span_ms
        self.row_group_rows = row_group_rows
        self.open: dict[tuple[str, int], OpenRange] = {}
        self.objects_written = 0

    # the job's API

    def add_ticks(self, partition: int, offset: int, ticks: Iterable[Tick]) -> None:
        self._add(TICKS, partition, offset, ticks)

    def add_trades(self, partition: int, offset: int, trades: Iterable[Trade]) -> None:
        self._add(TRADES, partition, offset, trades)

    def add_signals(self, partition: int, offset: int, signals: Iterable[dict]) -> None:
        """Every state of a signal is kept (open, peaks, close); the job passes where it read them in `signals`."""
        self._add(SIGNALS, partition, offset, signals)

    def flush(self, partition: int, upto_offset: int) -> None:
        """Everything of `partition` up to `upto_offset` is durable when this returns."""
        for kind in KINDS:
            current = self.open.get((kind, partition))
            if current is None:
                continue
            if upto_offset >= current.last:
                self._write(kind, partition, current, complete=True)
                del self.open[(kind, partition)]
            elif current.pending:
                self._write(kind, partition, current, complete=False)

    def close(self) -> None:
        for kind, partition in list(self.open):
            current = self.open[(kind, partition)]
            if current.pending:
                self._write(kind, partition, current, complete=False)
        self.open.clear()

    # internals

    def _add(self, kind: str, partition: int, offset: int, items: Iterable) -> None:
        spec = KINDS[kind]
        current = self._range_for(kind, partition, offset)
        for item in items:
            directory, row, event_time = spec.row_of(partition, offset, item)
            current.add(directory, row, event_time, offset)
        self._roll_if_due(kind, partition, current)

    def _range_for(self, kind: str, partition: int, offset: int) -> OpenRange:
        size = self.range_size[kind]
        current = self.open.get((kind, partition))
        if current is not None and offset < current.last_offset:
            event(log, "offsets went back: rewinding the lake writer", logging.WARNING, kind=kind,
                  partition=partition, offset=offset, seen=current.last_offset)
            if offset < current.first:
                current = None  # the job replays this range too; rebuild the earlier one from storage
            else:
                current.forget_from(offset)
        elif current is not None and offset > current.last:
            self._write(kind, partition, current, complete=True)
            current = None
        if current is None:
            first = offset - offset % size
            current = self._resume(kind, partition, first, first + size - 1, offset)
            self.open[(kind, partition)] = current
        return current

    def _resume(self, kind: str, partition: int, first: int, last: int, offset: int) -> OpenRange:
        """Rows of the range below `offset` were written before a restart: read them back."""
        current = OpenRange(first, last, KINDS[kind].schema)
        if offset == first:
            return current
        raw = get_object(self.lake, manifest_path(self.lake, kind, self.incarnation, partition, first))
        if raw is None:
            return current
        name = object_name(self.incarnation, partition, first, last)
        offsets = pc.field("kafka_offset")
        for directory in json.loads(raw)["objects"]:
            data = get_object(self.lake, self.lake.path(directory, name))
            if data is None:  # compacted since: its rows are in an object named by a larger span
                data = self._compacted(directory, partition, first, last)
            if data is None:
                raise RuntimeError(f"lake manifest for {kind} partition {partition} offsets {first}-{last} lists "
                                   f"{directory}, which is missing: the lake was changed by hand")
            rows = pq.read_table(pa.BufferReader(data)).filter((offsets >= first) & (offsets < offset))
            current.keep(directory, rows)
        event(log, "lake writer resumed a range", kind=kind, partition=partition, first=first, offset=offset,
              rows=sum(t.num_rows for t in current.tables.values()))
        return current

    def _compacted(self, directory: str, partition: int, first: int, last: int) -> bytes | None:
        """The object compaction merged the range into, listed again if a later compaction replaced it meanwhile."""
        while True:
            names = [info.path.rpartition("/")[2] for info in list_files(self.lake, self.lake.path(directory))]
            found = covering_name(names, self.incarnation, partition, first, last)
            if found is None:
                return None
            data = get_object(self.lake, self.lake.path(directory, found))
            if data is not None:
                return data

    def _roll_if_due(self, kind: str, partition: int, current: OpenRange) -> None:
        span = current.pending_span
        if span is None:
            return
        if (time.monotonic() - span.since >= self.roll_seconds
                or span.event_max - span.event_min >= self.roll_event_span_ms):
            self._write(kind, partition, current, complete=False)

    def _write(self, kind: str, partition: int, current: OpenRange, complete: bool) -> None:
        name = object_name(self.incarnation, partition, current.first, current.last)
        for directory in sorted(current.pending):
            table = current.take(directory)
            put_object(self.lake, self.lake.path(directory, name), parquet_bytes(table, self.row_group_rows))
            self.objects_written += 1
        manifest = {"kind": kind, "topic_id": self.topic_id, "partition": partition, "first": current.first,
                    "last": current.last, "upto": current.last_offset, "complete": complete,
                    "objects": sorted(current.objects), **({"read_with": self.read_with} if self.read_with else {})}
        put_object(self.lake, manifest_path(self.lake, kind, self.incarnation, partition, current.first),
                   json.dumps(manifest, indent=1).encode())
        current.pending_span = None
