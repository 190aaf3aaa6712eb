"""Reading the lake back: whole kinds as Arrow tables, and the figures over them."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from lake.figures import TICK_COLUMNS, report
from lake.layout import KINDS, SIGNALS, TICKS, conform, nested_as, redundant_objects
from lake.storage import Lake, retrying


def read_kind(lake: Lake, kind: str, columns: list[str] | None = None) -> pa.Table:
    """All rows of `kind` (only `columns`, if given); an empty table when nothing was written yet."""
    schema = KINDS[kind].schema

    def read():
        base = lake.path(kind)
        if lake.filesystem.get_file_info(base).type == pafs.FileType.NotFound:
            return schema.empty_table().select(columns or schema.names)
        files = ds.dataset(base, filesystem=lake.filesystem, format="parquet", schema=schema).files
        redundant = redundant_objects(files)  # left behind by compaction, or written again by a replay
        files = [path for path in files if path not in redundant]
        try:  # the common case, every object in today's schema: no footer is read before the scan
            return ds.dataset(files, filesystem=lake.filesystem, format="parquet", schema=schema).to_table(
                columns=columns)
        except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
            pass  # some object predates a field added inside a nested column: find those, conform them alone
        parquet = ds.ParquetFileFormat()
        older = {path for path in files if not nested_as(parquet.inspect(path, lake.filesystem), schema)}
        tables = [ds.dataset([path for path in files if path not in older], filesystem=lake.filesystem,
                             format="parquet", schema=schema).to_table(columns=columns)]
        wanted = pa.schema([schema.field(name) for name in columns or schema.names])
        for path in sorted(older):  # a field added inside a nested column since, which a dataset cannot promote
            tables.append(conform(ds.dataset(path, filesystem=lake.filesystem, format="parquet").to_table(), wanted))
        return pa.concat_tables(tables)
    return retrying(f"read {kind}", read)


def lake_report(lake: Lake, gap_ms: int = 10_000) -> dict[str, Any]:
    """Every `ascep analytics` figure over `lake`; the CLI and the dashboard both call this."""
    if lake.filesystem.get_file_info(lake.root).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no lake at {lake.uri}: nothing was written there (check --lake / ASCEP_LAKE)")
    return report(read_kind(lake, TICKS, TICK_COLUMNS), read_kind(lake, SIGNALS), gap_ms)
