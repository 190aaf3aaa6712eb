"""What is where in the lake: the schemas, the Hive directories, and the object and manifest names.

Object names are a pure function of the topic's incarnation, the Kafka partition and an aligned offset
range, which is what makes a rewrite after a crash an overwrite, and a recreated topic (an embedded
broker restarted: offsets from 0 again) write beside the old objects (docs/lake.md, "Exactly once").
"""
from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import pyarrow as pa

from core.contracts.tick import Tick
from core.contracts.trade import Trade
from lake.storage import Lake

LINEAGE = [pa.field("kafka_partition", pa.int32(), nullable=False),
           pa.field("kafka_offset", pa.int64(), nullable=False)]

LEVELS_TYPE = pa.list_(pa.list_(pa.float64(), 2))  # [[price, size], ...]

TICK_SCHEMA = pa.schema([
    pa.field("venue", pa.string(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("bid", pa.float64(), nullable=False),
    pa.field("ask", pa.float64(), nullable=False),
    pa.field("bid_size", pa.float64()),
    pa.field("ask_size", pa.float64()),
    pa.field("ts", pa.int64(), nullable=False),  # exchange time, epoch ms
    pa.field("bids", LEVELS_TYPE),  # the book's top levels, best first, when the venue sends a book (docs/ticks.md)
    pa.field("asks", LEVELS_TYPE),
    *LINEAGE,
])

TRADE_SCHEMA = pa.schema([
    pa.field("venue", pa.string(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("price", pa.float64(), nullable=False),
    pa.field("size", pa.float64(), nullable=False),
    pa.field("side", pa.string()),  # the taker's, "buy" or "sell", when the venue says
    pa.field("ts", pa.int64(), nullable=False),  # exchange time, epoch ms
    pa.field("trade_id", pa.string()),
    *LINEAGE,
])

LEG_TYPE = pa.struct([
    pa.field("venue", pa.string()), pa.field("symbol", pa.string()),
    pa.field("side", pa.string()), pa.field("price", pa.float64()),
    pa.field("vwap", pa.float64()),  # at the size, when a book was walked (docs/signals.md); older objects lack it
])

SIGNAL_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("type", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("symbol", pa.string()),  # first leg's symbol
    pa.field("buy_venue", pa.string()),  # first buy leg's venue
    pa.field("sell_venue", pa.string()),  # first sell leg's venue
    pa.field("profit_bps", pa.float64(), nullable=False),
    pa.field("size", pa.float64()),
    pa.field("event_time", pa.int64(), nullable=False),
    pa.field("updated_at", pa.int64(), nullable=False),
    pa.field("detected_at", pa.int64()),
    pa.field("closed_at", pa.int64()),
    pa.field("duration_ms", pa.int64()),  # closed_at - event_time, once closed
    pa.field("rule_id", pa.string()),
    pa.field("legs", pa.list_(LEG_TYPE), nullable=False),
    *LINEAGE,
])

TICKS = "ticks"
TRADES = "trades"
SIGNALS = "signals"
MANIFESTS = "_ranges"  # leading underscore: Parquet readers skip it


HOUR_MS = 3_600_000


@lru_cache(maxsize=1024)
def _hour_directory(hour: int) -> str:
    moment = datetime.fromtimestamp(hour * 3600, tz=UTC)
    return f"dt={moment:%Y-%m-%d}/hour={moment:%H}"


def hour_partition(epoch_ms: int) -> str:
    return _hour_directory(epoch_ms // HOUR_MS)


@lru_cache(maxsize=4096)
def _venue_directory(kind: str, hour: int, venue: str) -> str:
    """Cached: formatting dates and quoting per tick would cost more than the rest of the sink."""
    return f"{kind}/{_hour_directory(hour)}/venue={quote(venue, safe='')}"


def tick_row(partition: int, offset: int, tick: Tick) -> tuple[str, tuple, int]:
    """(Hive directory, row, event time)."""
    return _venue_directory(TICKS, tick.ts // HOUR_MS, tick.venue), (*tick, partition, offset), tick.ts


def trade_row(partition: int, offset: int, trade: Trade) -> tuple[str, tuple, int]:
    """(Hive directory, row, event time): laid out as ticks are, by hour and venue."""
    return (_venue_directory(TRADES, trade.ts // HOUR_MS, trade.venue),
            (trade.venue, trade.symbol, trade.price, trade.size, trade.side, trade.ts, trade.trade_id, partition,
             offset), trade.ts)


def signal_row(partition: int, offset: int, signal: Mapping[str, Any]) -> tuple[str, tuple, int]:
    """(Hive directory, row, event time); flattened columns for queries that do not unnest legs."""
    try:
        legs = [{"venue": leg["venue"], "symbol": leg["symbol"], "side": leg["side"], "price": float(leg["price"]),
                 "vwap": None if leg.get("vwap") is None else float(leg["vwap"])} for leg in signal["legs"]]
        event_time = int(signal["event_time"])
        closed_at = signal.get("closed_at")
        row = (
            signal["id"], signal["type"], signal["status"],
            legs[0]["symbol"] if legs else None,
            next((leg["venue"] for leg in legs if leg["side"] == "buy"), None),
            next((leg["venue"] for leg in legs if leg["side"] == "sell"), None),
            float(signal["profit_bps"]), signal.get("size"), event_time, int(signal["updated_at"]),
            signal.get("detected_at"), closed_at, None if closed_at is None else int(closed_at) - event_time,
            signal.get("rule_id"), legs, partition, offset,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"signal {signal.get('id', '?')!r} at partition {partition} offset {offset} "
                         f"cannot be written to the lake: bad or missing field {exc}") from None
    return f"{SIGNALS}/{hour_partition(event_time)}", row, event_time


Item = TypeVar("Item")


@dataclass(frozen=True)
class Kind(Generic[Item]):
    """Generic in what a row is made of (a Tick, a signal), so each row function keeps its own argument type."""

    schema: pa.Schema
    row_of: Callable[[int, int, Item], tuple[str, tuple, int]]


KINDS: dict[str, Kind[Any]] = {TICKS: Kind(TICK_SCHEMA, tick_row), TRADES: Kind(TRADE_SCHEMA, trade_row),
                               SIGNALS: Kind(SIGNAL_SCHEMA, signal_row)}


def incarnation(topic_id: str) -> str:
    """The topic id (a UUID the broker gives a topic when it creates it) in 26 characters of lowercase base32:
    all 128 bits, since Tansu's ids are UUIDv7 whose leading bits are only the creation millisecond, and
    no letter case, so names cannot collide on a case-insensitive filesystem either."""
    try:
        raw = uuid.UUID(topic_id).bytes
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"lake: topic id {topic_id!r} is not a UUID (expected the id the broker gave the topic, "
                         f"e.g. 01a23131-4080-75e1-9f0a-df66b0ae3303)") from None
    return base64.b32encode(raw).decode().rstrip("=").lower()


def object_name(incarnation: str, partition: int, first: int, last: int) -> str:
    return f"part-{incarnation}-p{partition:03d}-o{first:012d}-{last:012d}.parquet"


OBJECT_NAME = re.compile(r"part-([a-z2-7]{26})-p(\d{3,})-o(\d{12,})-(\d{12,})\.parquet")


def parse_object_name(name: str) -> tuple[str, int, int, int] | None:
    """object_name() read back: (incarnation, partition, first, last), or None for a name it did not make."""
    found = OBJECT_NAME.fullmatch(name)
    if found is None:
        return None
    return found[1], int(found[2]), int(found[3]), int(found[4])


def redundant_objects(paths: Iterable[str]) -> set[str]:
    """The objects of `paths` that another object of the same directory, incarnation and partition covers (its
    offset range holds theirs). Only compaction makes such a cover (lake/maintenance.py), from ranges the writer
    had completed, so it holds every row of what it covers: what it left behind, or a replaying job wrote again, is
    redundant, and readers skip it so that each row is read once. Names object_name() did not make are never
    redundant."""
    spans: dict[tuple[str, str, int], list[tuple[int, int, str]]] = {}
    for path in paths:
        directory, _, name = path.rpartition("/")
        named = parse_object_name(name)
        if named is not None:
            spans.setdefault((directory, named[0], named[1]), []).append((named[2], -named[3], path))
    out = set()
    for group in spans.values():
        reach = -1  # the furthest last offset of the objects starting at or before this one
        for _first, negative_last, path in sorted(group):
            if -negative_last <= reach:
                out.add(path)
            reach = max(reach, -negative_last)
    return out


def covering_name(names: Iterable[str], incarnation: str, partition: int, first: int, last: int) -> str | None:
    """Among the object names of one directory, the one that holds offsets [first, last] of that incarnation's
    partition, if any: where a range's rows are once compaction has merged its own object into a larger one."""
    for name in names:
        named = parse_object_name(name)
        if named is not None and named[:2] == (incarnation, partition) and named[2] <= first and last <= named[3]:
            return name
    return None


HOUR_DIRECTORY = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})(?:/|$)")


def directory_hour(directory: str) -> int | None:
    """hour_partition() read back: the hour (since the epoch) of a directory holding dt=.../hour=..., else None."""
    found = HOUR_DIRECTORY.search(directory)
    if found is None:
        return None
    moment = datetime.strptime(f"{found[1]} {found[2]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    return int(moment.timestamp()) // 3600


def hour_directories(start_ms: int, end_ms: int) -> dict[str, int]:
    """The hour directories (dt=.../hour=...) that event times in [start_ms, end_ms) fall in, with their hours."""
    return {_hour_directory(hour): hour for hour in range(start_ms // HOUR_MS, (end_ms - 1) // HOUR_MS + 1)}


def rows_table(schema: pa.Schema, rows: list[tuple]) -> pa.Table:
    """Rows as row_of() makes them (in the schema's column order; at least one) -> a table of `schema`."""
    columns = zip(*rows)
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A table read from an object written under an older schema, in `schema` (its fields, in its order):
    columns added since (the ticks' book levels) and fields added since to a list of structs (a leg's vwap)
    come in as nulls. Arrow's own promotion (concat_tables, datasets) adds columns, but no field inside a
    nested struct."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.chunked_array([pa.nulls(len(table), field.type)]))
            continue
        column = table.column(field.name)
        if column.type != field.type and pa.types.is_list(field.type) and pa.types.is_struct(field.type.value_type):
            column = pa.chunked_array([_struct_list(chunk, field.type) for chunk in column.chunks], field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def nested_as(written: pa.Schema, schema: pa.Schema) -> bool:
    """Whether an object's schema has every nested column it shares with `schema` as `schema` has it, so a
    dataset can read it in `schema` (a column missing altogether it fills with nulls itself)."""
    return all(written.field(f.name).type == f.type for f in schema
               if pa.types.is_nested(f.type) and f.name in written.names)


def _struct_list(lists: pa.ListArray, kind: pa.ListType) -> pa.ListArray:
    """A list of structs with the fields of `kind`, those it lacks null."""
    values = lists.values
    have = dict(zip((f.name for f in values.type), values.flatten()))
    struct = kind.value_type
    fields = [have[f.name].cast(f.type) if f.name in have else pa.nulls(len(values), f.type) for f in struct]
    rebuilt = pa.StructArray.from_arrays(fields, fields=list(struct), mask=values.is_null())
    return pa.ListArray.from_arrays(lists.offsets, rebuilt, type=kind, mask=lists.is_null())


def manifest_path(lake: Lake, kind: str, incarnation: str, partition: int, first: int) -> str:
    return lake.path(MANIFESTS, kind, incarnation, f"p{partition:03d}", f"o{first:012d}.json")
