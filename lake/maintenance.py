"""What the maintenance Lambda (infrastructure/lambda/maintenance) does to the lake: it compacts closed hours, and
finds the newest signal state for the freshness metric.

**Compaction.** The writer leaves one object per aligned offset range, partition and directory: with the default
131,072 offsets a busy partition writes dozens an hour into each venue's directory. Compaction merges, in each
directory of a closed hour, the objects of consecutive *settled* ranges of one incarnation's partition into one
object, named by object_name() over the union of their ranges. The name keeps its meaning, the rows of offsets
[first, last] of that partition that belong in that directory, and:

* the merged object holds every row the objects it covers will ever hold. A range is settled when its manifest says
  complete and its objects were written before that manifest: the writer moved past it, and the rows of those
  offsets never change (a replay reads the same Kafka records again);
* readers skip an object that a larger one covers (lake.layout.redundant_objects): sources left behind by a crash
  before they were deleted, and objects a replaying job writes again, are never read twice;
* a writer resuming a merged range reads its rows from the covering object (LakeWriter._resume).

The steps of one merge: read the sources; list them again and give up if one changed (a replaying job rewrote it
meanwhile); write the merged object (in one PUT: whole or not at all); delete the sources. A crash after any step
leaves the sources, the merged object or both, and readers see each row once. Each run also deletes the redundant
objects of the hours it looks at. Whether an hour is closed (older than a grace period) only keeps compaction off
the directories the job still writes to: correctness rests on the ranges being settled, not on the clock.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.log import event
from lake.layout import HOUR_MS, KINDS, SIGNALS, conform, manifest_path, object_name, redundant_objects
from lake.objects import Listed, list_objects
from lake.storage import Lake, delete_file, get_object, list_files, parquet_bytes, put_object, retrying

log = logging.getLogger(__name__)

RangeKey = tuple[str, int, int]  # incarnation, partition, first offset


@dataclass(frozen=True)
class RangeState:
    """What the writer's manifest of a range says, and when it was written."""

    last: int
    complete: bool
    mtime_s: int


@dataclass(frozen=True)
class Merge:
    target: str  # path of the merged object
    sources: tuple[Listed, ...]  # in offset order, consecutive


def mergeable_groups(live: Iterable[Listed]) -> list[list[Listed]]:
    """Objects by directory, incarnation and partition, in offset order: the groups of two or more."""
    groups: dict[tuple[str, str, int], list[Listed]] = {}
    for found in live:
        groups.setdefault((found.directory, found.incarnation, found.partition), []).append(found)
    return [sorted(group, key=lambda o: o.first) for group in groups.values() if len(group) > 1]


def settled(found: Listed, ranges: Mapping[RangeKey, RangeState]) -> bool:
    """Its rows will never change: the writer's object of a completed range, or one merged from such objects."""
    state = ranges.get((found.incarnation, found.partition, found.first))
    if state is None:
        return False  # written before its range's first manifest: the writer is still at it, or crashed
    if found.last == state.last:
        return state.complete and found.mtime_s <= state.mtime_s
    return found.last > state.last  # merged from several ranges (a range of another size is never merged)


def plan_merges(groups: Iterable[list[Listed]], ranges: Mapping[RangeKey, RangeState], max_bytes: int) -> list[Merge]:
    """Runs of settled objects with consecutive offsets, up to `max_bytes` of sources each; a run of one stays."""
    merges = []
    for group in groups:
        runs: list[list[Listed]] = [[]]
        for found in group:
            run = runs[-1]
            if not settled(found, ranges):
                runs.append([])
            elif run and (found.first != run[-1].last + 1 or sum(o.size for o in run) + found.size > max_bytes):
                runs.append([found])
            else:
                run.append(found)
        for run in runs:
            if len(run) > 1:
                directory = run[0].path.rpartition("/")[0]
                name = object_name(run[0].incarnation, run[0].partition, run[0].first, run[-1].last)
                merges.append(Merge(f"{directory}/{name}", tuple(run)))
    return merges


@dataclass
class Report:
    merged: int = 0  # objects written by merges
    sources_deleted: int = 0
    redundant_deleted: int = 0
    given_up: int = 0  # merges left for the next run: a source changed or went away meanwhile
    out_of_time: bool = False


def compact(lake: Lake, now_ms: int, grace_ms: int, lookback_ms: int, max_bytes: int, row_group_rows: int,
            deadline: float | None = None) -> Report:
    """Compacts the hours that ended `grace_ms` or more before `now_ms`, back to `lookback_ms` before it. Starts no
    merge after `deadline` (time.monotonic()); whatever it stops at, the lake is whole."""
    report = Report()
    closed_before = now_ms - grace_ms
    for kind in KINDS:
        found = [o for o in list_objects(lake, kind, now_ms - lookback_ms, closed_before)
                 if (o.hour + 1) * HOUR_MS <= closed_before]
        redundant = redundant_objects(o.path for o in found)
        for path in sorted(redundant):
            delete_file(lake, path)
        report.redundant_deleted += len(redundant)
        groups = mergeable_groups(o for o in found if o.path not in redundant)
        keys = {(o.incarnation, o.partition, o.first) for group in groups for o in group}
        ranges = {key: state for key in keys if (state := range_state(lake, kind, key)) is not None}
        for merge in plan_merges(groups, ranges, max_bytes):
            if deadline is not None and time.monotonic() > deadline:
                report.out_of_time = True
                return report
            if merge_objects(lake, kind, merge, row_group_rows):
                report.merged += 1
                report.sources_deleted += len(merge.sources)
            else:
                report.given_up += 1
    return report


def range_state(lake: Lake, kind: str, key: RangeKey) -> RangeState | None:
    """Its time is taken before its content, so a manifest written in between looks older than it is: the safe
    side, since an object newer than its manifest is not settled."""
    path = manifest_path(lake, kind, *key)
    info = retrying(f"stat {path}", lambda: lake.filesystem.get_file_info(path))
    raw = get_object(lake, path) if info.type == pafs.FileType.File else None
    if raw is None:
        return None
    manifest = json.loads(raw)
    return RangeState(manifest["last"], manifest["complete"], int(info.mtime.timestamp()))


def merge_objects(lake: Lake, kind: str, merge: Merge, row_group_rows: int) -> bool:
    """False, with nothing written, when a source changed or went away since it was listed."""
    tables = []
    for source in merge.sources:
        data = get_object(lake, source.path)
        if data is None:
            return False
        tables.append(conform(pq.read_table(pa.BufferReader(data)), KINDS[kind].schema))
    now = {info.path: info for info in list_files(lake, merge.target.rpartition("/")[0])}
    for source in merge.sources:
        info = now.get(source.path)
        if info is None or info.size != source.size or int(info.mtime.timestamp()) != source.mtime_s:
            event(log, "lake object changed while compacting: merge left for the next run", logging.WARNING,
                  path=source.path)
            return False
    table = pa.concat_tables(tables)  # each conformed: objects from before a column or leg field came merge with nulls
    put_object(lake, merge.target, parquet_bytes(table, row_group_rows))  # whole or not at all
    for source in merge.sources:
        delete_file(lake, source.path)
    event(log, "lake objects compacted", target=merge.target, sources=len(merge.sources), rows=table.num_rows)
    return True


def newest_signal_ms(lake: Lake, now_ms: int, lookback_ms: int) -> int | None:
    """The latest `updated_at` (exchange time) of the signal states of opportunities opened in the last
    `lookback_ms`; None when there is none."""
    newest = []
    for found in list_objects(lake, SIGNALS, now_ms - lookback_ms, now_ms + HOUR_MS):
        data = get_object(lake, found.path)  # whole, in one GET: the writer may replace it meanwhile
        if data is not None:
            newest.append(pc.max(pq.read_table(pa.BufferReader(data), columns=["updated_at"]).column(0)).as_py())
    return max((ms for ms in newest if ms is not None), default=None)
