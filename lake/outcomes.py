"""The lake's side of `ascep analytics outcomes`: a time range's signals, and the ticks of their legs in event-time
order, an hour at a time, through core/outcomes.py.

The signals of the range are read whole (one row per state, a small fraction of the ticks); the ticks are read an
hour directory at a time, only the venue directories the signals' legs name, a row group at a time filtered to
their symbols, then sorted by event time. What is held is one hour of the legs' ticks and the signals not settled.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.contracts.tick import Tick
from core.contracts.times import iso_ms
from core.outcomes import follow, summarise
from core.settings import ArbitrageSettings
from lake.backtest import CHUNK_ROWS, ticks_of
from lake.figures import FINAL_SIGNALS
from lake.layout import SIGNAL_SCHEMA, SIGNALS, TICK_SCHEMA, TICKS, redundant_objects
from lake.objects import Listed, list_objects
from lake.storage import Lake, retrying

SIGNAL_COLUMNS = ["id", "type", "symbol", "profit_bps", "size", "event_time", "detected_at", "legs"]
TICK_COLUMNS = [*Tick._fields, "kafka_partition", "kafka_offset"]

Progress = Callable[[int, float], None]  # (ticks read so far, fraction of the hours done)


class NoSignals(LookupError):
    """The range holds no signal to follow; the message says which range of which lake."""


def _objects(lake: Lake, kind: str, start_ms: int, end_ms: int) -> list[Listed]:
    found = list_objects(lake, kind, start_ms, end_ms)
    redundant = redundant_objects(o.path for o in found)
    return [o for o in found if o.path not in redundant]


def _read(lake: Lake, path: str, schema: pa.Schema, columns: list[str]) -> Iterator[pa.Table]:
    """One object a row group at a time, a column an older object lacks (book levels) as nulls."""
    file = retrying(f"read {path}", lambda: pq.ParquetFile(lake.filesystem.open_input_file(path)))
    try:
        present = [name for name in columns if name in file.schema_arrow.names]
        for group in range(file.metadata.num_row_groups):
            table = retrying(f"read {path}", partial(file.read_row_group, group, columns=present))
            for name in columns:
                if name not in present:
                    table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
            yield table.select(columns)
    finally:
        file.close()


def range_signals(lake: Lake, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """The final state of each signal that opened in [start_ms, end_ms), by event time (a signal's states all sit in
    the hour directory of its event time)."""
    if lake.filesystem.get_file_info(lake.root).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no lake at {lake.uri}: nothing was written there (check --lake / ASCEP_LAKE)")
    tables = [table.filter(pc.and_(pc.greater_equal(table["event_time"], start_ms),
                                   pc.less(table["event_time"], end_ms)))
              for found in _objects(lake, SIGNALS, start_ms, end_ms)
              for table in _read(lake, found.path, SIGNAL_SCHEMA, SIGNAL_SCHEMA.names)]
    states = pa.concat_tables(tables) if tables else SIGNAL_SCHEMA.empty_table()
    con = duckdb.connect(":memory:")
    try:
        con.register("signal_states", states)
        columns = ", ".join(SIGNAL_COLUMNS)
        rows = con.execute(f"SELECT {columns} FROM ({FINAL_SIGNALS}) ORDER BY event_time, id").fetchall()
    finally:
        con.close()
    if not rows:
        raise NoSignals(f"the lake {lake.uri} holds no signals from {iso_ms(start_ms)} to {iso_ms(end_ms)}")
    return [dict(zip(SIGNAL_COLUMNS, row)) for row in rows]


def leg_ticks(lake: Lake, places: set[tuple[str, str]], start_ms: int, end_ms: int,
              progress: Progress | None = None) -> Iterator[Tick]:
    """The ticks of `places` (venue, symbol) in [start_ms, end_ms), in event-time order (then partition, offset),
    one hour directory at a time."""
    venues = {venue for venue, _ in places}
    symbols = pa.array(sorted({symbol for _, symbol in places}), pa.string())
    by_hour: dict[int, list[Listed]] = {}
    for found in _objects(lake, TICKS, start_ms, end_ms):
        if unquote(found.directory.rpartition("venue=")[2]) in venues:
            by_hour.setdefault(found.hour, []).append(found)
    read = 0
    for number, hour in enumerate(sorted(by_hour), 1):
        tables = []
        for found in by_hour[hour]:
            for table in _read(lake, found.path, TICK_SCHEMA, TICK_COLUMNS):
                ts = table["ts"]
                keep = pc.and_(pc.and_(pc.greater_equal(ts, start_ms), pc.less(ts, end_ms)),
                               pc.is_in(table["symbol"], value_set=symbols))
                tables.append(table.filter(keep))
        if not tables:
            continue
        hour_table = pa.concat_tables(tables)
        hour_table = hour_table.take(pc.sort_indices(hour_table, [("ts", "ascending"), ("kafka_partition", "ascending"),
                                                                  ("kafka_offset", "ascending")]))
        for start in range(0, hour_table.num_rows, CHUNK_ROWS):  # Python objects a chunk at a time
            for tick in ticks_of(hour_table.slice(start, CHUNK_ROWS)):
                if (tick.venue, tick.symbol) in places:
                    yield tick
        read += hour_table.num_rows
        if progress is not None:
            progress(read, number / len(by_hour))


def outcomes_report(lake: Lake, config: ArbitrageSettings, start_ms: int, end_ms: int, delays: Sequence[int],
                    horizon_ms: int, progress: Progress | None = None) -> dict[str, Any]:
    """What `ascep analytics outcomes` and the dashboard show of the signals that opened in [start_ms, end_ms):
    every outcome, the summary rows, and the reasons signals were skipped for, counted. Ticks are read from the
    detectors' quote age before the range (the quotes in force at a signal's event time) to the horizon after it."""
    signals = range_signals(lake, start_ms, end_ms)
    places = {(leg["venue"], leg["symbol"]) for signal in signals for leg in signal["legs"]}
    lookback = max(config.thresholds(kind).max_quote_age_ms for kind in ("cross_exchange", "direct", "triangular"))
    end = end_ms + horizon_ms + 1
    ticks = leg_ticks(lake, places, start_ms - lookback, end, progress)
    outcomes, skipped = follow(signals, ticks, config, delays, horizon_ms, end - 1)
    outcomes.sort(key=lambda o: (o.event_time, o.signal["id"]))  # settled in the order their routes fell
    return {"start": start_ms, "start_iso": iso_ms(start_ms), "end": end_ms, "end_iso": iso_ms(end_ms),
            "delays_ms": list(delays), "horizon_ms": horizon_ms, "signals": len(signals), "followed": len(outcomes),
            "skipped": skipped, "outcomes": [o.record() for o in outcomes], "summary": summarise(outcomes, delays)}
