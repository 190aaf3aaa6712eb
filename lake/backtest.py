"""The lake's side of `ascep rules backtest`: a time range's ticks back in the order the job read them, and the
signal states a backtest finds written to Parquet.

Ticks come back per topic incarnation and partition, in Kafka offset order; core/cep/backtest.py orders them from
there as the job does. A partition's objects are split by hour and venue, so its offsets are spread over several
objects at once: they are merged by offset, an object's rows read only once the merge reaches its first offset (its
Parquet statistics say which), one row group at a time. What is held is about a row group per venue, however long
the range. Trades come back alike, for a rule that reads them, each with the ticks its job read beside it: the
trades' topic has an incarnation of its own, and its range manifests name the ticks' (`read_with`).
"""
from __future__ import annotations

from collections.abc import Collection, Iterator
from functools import partial
from itertools import repeat
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.cep.backtest import Backtest, Chunk, Found
from core.cep.engine import reads_trades
from core.cep.rules import Rule
from core.contracts.tick import Tick
from core.contracts.trade import Trade
from core.settings import RuleSettings
from lake.layout import (
    SIGNAL_SCHEMA,
    TICKS,
    TRADE_SCHEMA,
    TRADES,
    manifest_path,
    redundant_objects,
    rows_table,
    signal_row,
)
from lake.objects import Listed, list_objects
from lake.storage import Lake, get_object, retrying

TRADE_FIELDS = [name for name in TRADE_SCHEMA.names if not name.startswith("kafka_")]  # Trade's, in its order
COLUMNS = {TICKS: [*Tick._fields, "kafka_offset"], TRADES: [*TRADE_FIELDS, "kafka_offset"]}
CHUNK_ROWS = 16_384  # ticks made Python objects at a time: a merge step may take a whole range's row groups


def tick_objects(lake: Lake, start_ms: int, end_ms: int, kind: str = TICKS) -> list[Listed]:
    """The tick (or trade) objects of the hour directories [start_ms, end_ms) reaches, but those a compacted object
    covers."""
    found = list_objects(lake, kind, start_ms, end_ms)
    redundant = redundant_objects(o.path for o in found)
    return [o for o in found if o.path not in redundant]


def tick_streams(lake: Lake, start_ms: int, end_ms: int, symbols: Collection[str] | None = None
                 ) -> list[tuple[str, dict[int, Iterator[Chunk]]]]:
    """Per topic incarnation (the one with the oldest hour first), per partition: its ticks in [start_ms, end_ms)
    of `symbols` (None: all), in offset order, read as they are iterated."""
    if lake.filesystem.get_file_info(lake.root).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no lake at {lake.uri}: nothing was written there (check --lake / ASCEP_LAKE)")
    grouped: dict[str, dict[int, list[Listed]]] = {}
    for found in tick_objects(lake, start_ms, end_ms):
        grouped.setdefault(found.incarnation, {}).setdefault(found.partition, []).append(found)
    oldest = {incarnation: min(o.hour for objects in partitions.values() for o in objects)
              for incarnation, partitions in grouped.items()}
    return [(incarnation, {partition: partition_chunks(lake, partition, objects, start_ms, end_ms, symbols)
                           for partition, objects in sorted(grouped[incarnation].items())})
            for incarnation in sorted(grouped, key=lambda incarnation: (oldest[incarnation], incarnation))]


def trade_streams(lake: Lake, start_ms: int, end_ms: int, symbols: Collection[str] | None = None
                  ) -> dict[str, dict[int, Iterator[Chunk]]]:
    """Per incarnation of the ticks they were read with, per partition: the trades in [start_ms, end_ms) of
    `symbols` (None: all), in offset order, read as they are iterated."""
    grouped: dict[str, dict[int, list[Listed]]] = {}
    for found in tick_objects(lake, start_ms, end_ms, TRADES):
        grouped.setdefault(found.incarnation, {}).setdefault(found.partition, []).append(found)
    out: dict[str, dict[int, Iterator[Chunk]]] = {}
    for incarnation, partitions in grouped.items():
        some = next(iter(partitions.values()))[0]
        raw = get_object(lake, manifest_path(lake, TRADES, incarnation, some.partition, some.first))
        read_with = None if raw is None else orjson.loads(raw).get("read_with")
        if read_with is None:
            raise RuntimeError(f"lake: trades {some.path} have no range manifest naming the ticks they were read "
                               f"with (_ranges/{TRADES}/{incarnation}): the lake was changed by hand")
        out.setdefault(read_with, {}).update(
            (partition, partition_chunks(lake, partition, objects, start_ms, end_ms, symbols, TRADES))
            for partition, objects in sorted(partitions.items()))
    return out


class RangeBacktest:
    """One rule over the lake's ticks of [start_ms, end_ms): a Backtest per topic incarnation, one after another,
    as `ascep rules backtest` and the dashboard's POST /api/rules/<id>/backtest run it. `bound_ms` and `limits`
    are the job's (job.out_of_orderness_ms, settings.rules). The counts grow as run() is iterated."""

    def __init__(self, lake: Lake, rule_id: str, rule: Rule, start_ms: int, end_ms: int,
                 symbols: Collection[str] | None = None, bound_ms: int = 0, limits: RuleSettings | None = None) -> None:
        self.lake, self.rule_id, self.rule = lake, rule_id, rule
        self.start_ms, self.end_ms, self.symbols = start_ms, end_ms, symbols
        self.bound_ms, self.limits = bound_ms, limits
        self.ticks = self.trades = self.partitions = self.late = 0
        self.stats: list[dict[str, Any]] = []  # each incarnation's engine counters for the rule
        self._current: Backtest | None = None
        self.reads_trades = reads_trades(rule)  # as Backtest judges it, before there is a partition to give it

    def run(self) -> Iterator[list[Found]]:
        """What each step found; FileNotFoundError when nothing was ever written to the lake. For a rule that reads
        trades, an incarnation whose ticks the range (or `symbols`) does not reach still has its trades read, after
        the others: a venue may send trades of a symbol it sends no quotes for, and the job evaluated those."""
        ticked = tick_streams(self.lake, self.start_ms, self.end_ms, self.symbols)
        trades = (trade_streams(self.lake, self.start_ms, self.end_ms, self.symbols) if self.reads_trades else {})
        with_ticks = {incarnation for incarnation, _ in ticked}
        ticked += [(incarnation, {}) for incarnation in sorted(trades) if incarnation not in with_ticks]
        for incarnation, streams in ticked:
            traded = trades.get(incarnation, {})
            self._current = backtest = Backtest(self.rule_id, self.rule, [*streams, *traded], self.bound_ms,
                                                self.limits)
            yield from backtest.run(streams, traded)
            self._current = None
            self.ticks += backtest.ticks
            self.trades += backtest.trades
            self.partitions += len({*streams, *traded})
            self.late += backtest.engine.late_count
            self.stats.append(backtest.engine.stats()[self.rule_id])

    @property
    def ticks_read(self) -> int:
        """Ticks read so far, those of the incarnation under way included."""
        return self.ticks + (self._current.ticks if self._current else 0)

    @property
    def done(self) -> float:
        """How far through the range the read is, from 0 to 1."""
        position = max(self._current.position, self.start_ms) if self._current else self.start_ms
        return (position - self.start_ms) / (self.end_ms - self.start_ms)

    @property
    def timeouts(self) -> int:
        return sum(s["timeouts"] for s in self.stats)


def partition_chunks(lake: Lake, partition: int, objects: list[Listed], start_ms: int, end_ms: int,
                     symbols: Collection[str] | None, kind: str = TICKS) -> Iterator[Chunk]:
    """One partition's ticks (or trades) in offset order, a span of offsets at a time. Objects whose offsets
    overlap (those of one range, in several directories, and a compacted one beside them in another) are merged
    in one span; spans are disjoint, so they go one after another."""
    spans: list[list[Listed]] = []
    reach = -1  # the last offset of the span so far
    for found in sorted(objects, key=lambda o: o.first):
        if found.first > reach:
            spans.append([])
        spans[-1].append(found)
        reach = max(reach, found.last)
    for span in spans:
        yield from _merge(partition, [_Cursor(lake, o.path, o.first, COLUMNS[kind]) for o in span], start_ms,
                          end_ms, symbols, kind)


class _Cursor:
    """One object read a row group at a time: the loaded row group's rows that pass the filter, from `at` on."""

    def __init__(self, lake: Lake, path: str, range_first: int, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.file = retrying(f"read {path}", lambda: pq.ParquetFile(lake.filesystem.open_input_file(path)))
        meta = self.file.metadata
        leaves = [meta.schema.column(i).path for i in range(meta.num_columns)]  # a book level column is one leaf
        stats = meta.row_group(0).column(leaves.index("kafka_offset")).statistics if meta.num_row_groups else None
        self.first = stats.min if stats is not None and stats.has_min_max else range_first
        self.group = 0
        self.table = pa.schema([]).empty_table()
        self.offsets = np.empty(0, np.int64)
        self.at = 0
        self.last = -1  # the last offset of the loaded row group, filtered out or not

    def load(self, start_ms: int, end_ms: int, symbols: Collection[str] | None) -> bool:
        """The next row group; False, and the file closed, when there is none."""
        if self.group >= self.file.metadata.num_row_groups:
            self.file.close()
            return False
        table = retrying(f"read {self.path}", lambda: self.file.read_row_group(self.group, columns=self.columns))
        self.group += 1
        self.last = table.column("kafka_offset")[-1].as_py()
        keep = pc.and_(pc.greater_equal(table.column("ts"), start_ms), pc.less(table.column("ts"), end_ms))
        if symbols is not None:
            keep = pc.and_(keep, pc.is_in(table.column("symbol"), value_set=pa.array(list(symbols), pa.string())))
        self.table = table.filter(keep)
        self.offsets = self.table.column("kafka_offset").to_numpy()
        self.at = 0
        return True

    def take(self, limit: int) -> pa.Table | None:
        """Its rows at offsets up to `limit` not taken yet, if any."""
        upto = int(np.searchsorted(self.offsets, limit, side="right"))
        if upto <= self.at:
            return None
        rows, self.at = self.table.slice(self.at, upto - self.at), upto
        return rows


def _merge(partition: int, pending: list[_Cursor], start_ms: int, end_ms: int,
           symbols: Collection[str] | None, kind: str) -> Iterator[Chunk]:
    """The objects' rows merged by offset. Each step takes every row up to the lowest last offset of the row groups
    loaded, once every object that may hold one is open: a row group's rows, of one object or several."""
    pending.sort(key=lambda cursor: cursor.first, reverse=True)
    active: list[_Cursor] = []

    def open_next() -> None:
        cursor = pending.pop()
        if cursor.load(start_ms, end_ms, symbols):
            active.append(cursor)

    while pending or active:
        if not active:
            open_next()
            continue
        limit = min(cursor.last for cursor in active)
        while pending and pending[-1].first <= limit:
            open_next()
            limit = min(cursor.last for cursor in active)
        runs = [rows for cursor in active if (rows := cursor.take(limit)) is not None]
        if runs:
            table = pa.concat_tables(runs)
            if len(runs) > 1:
                table = table.take(pc.sort_indices(table, [("kafka_offset", "ascending")]))
            for start in range(0, table.num_rows, CHUNK_ROWS):
                rows = table.slice(start, CHUNK_ROWS)
                offsets = _values(rows.column("kafka_offset"))
                yield (Chunk(partition, ticks_of(rows), offsets) if kind == TICKS
                       else Chunk(partition, trades_of(rows), offsets, trades=True))
        active[:] = [cursor for cursor in active
                     if cursor.last > limit or cursor.load(start_ms, end_ms, symbols)]


_tick = partial(tuple.__new__, Tick)  # Tick(*row) without the Python call of a NamedTuple's __new__


def ticks_of(table: pa.Table) -> list[Tick]:
    """Every field of Tick, None for a column the table lacks (the book levels of a lake written before them)."""
    return list(map(_tick, zip(*(_values(table.column(name)) if name in table.column_names
                                 else repeat(None, table.num_rows) for name in Tick._fields))))


def trades_of(table: pa.Table) -> list[Trade]:
    return list(map(Trade, *(_values(table.column(name)) for name in TRADE_FIELDS)))


def _values(column: pa.ChunkedArray) -> list:
    """A column as Python values, through numpy: pyarrow's to_pylist makes a scalar of every value, ten times slower.
    Strings go through a dictionary (a few venues and symbols), and a null float is None (ticks hold no NaN)."""
    array = column.combine_chunks()
    if pa.types.is_string(array.type):
        if array.null_count:  # a trade's side or id the venue did not give
            return array.to_pylist()
        encoded = pc.dictionary_encode(array)
        return list(map(encoded.dictionary.to_pylist().__getitem__, encoded.indices.to_numpy().tolist()))
    if pa.types.is_list(array.type):  # book levels: tuples of (price, size) tuples, as a Tick holds them
        return [None if levels is None else tuple(map(tuple, levels)) for levels in array.to_pylist()]
    values = array.to_numpy(zero_copy_only=False).tolist()
    return [None if value != value else value for value in values] if array.null_count else values


class SignalFile:
    """Signal states into a local Parquet file of the lake's signal schema, so what reads the lake's signals reads
    it too (lake.figures.FINAL_SIGNALS); its kafka_partition and kafka_offset are those of the tick that gave the
    state. Written a row group every `row_group_rows` states, never held whole."""

    def __init__(self, path: str, row_group_rows: int = 65_536) -> None:
        self.writer = pq.ParquetWriter(path, SIGNAL_SCHEMA, compression="zstd")
        self.row_group_rows = row_group_rows
        self.rows: list[tuple] = []

    def add(self, found: Found) -> None:
        self.rows.append(signal_row(found.partition, found.offset, found.signal)[1])
        if len(self.rows) >= self.row_group_rows:
            self._write()

    def close(self) -> None:
        if self.rows:
            self._write()
        self.writer.close()

    def _write(self) -> None:
        self.writer.write_table(rows_table(SIGNAL_SCHEMA, self.rows))
        self.rows = []

