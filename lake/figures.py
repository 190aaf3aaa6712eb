"""Figures over the lake: Arrow tables in, plain dicts out, no I/O, so the CLI and the dashboard agree.

The lake keeps every state of a signal (open, peaks, close); the figures count each opportunity
once, by its final state: latest updated_at, then closed over open, then the higher profit (the
same order the Redis sink applies), with the earliest detected_at.
Percentiles interpolate linearly between ranks (DuckDB quantile_cont, numpy's default).
"""
from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from core.contracts.times import with_iso

TICK_COLUMNS = ["venue", "ts"]  # all the figures need from the tick rows
PERCENTILES = (0.5, 0.9, 0.99)
PROFIT_EDGES_BPS = (1, 2, 5, 10, 20, 50, 100)  # histogram bucket bounds: [.., 1), [1, 2), ..., [100, ..)

FINAL_SIGNALS = """
SELECT * EXCLUDE (rank, first_detected) REPLACE (first_detected AS detected_at) FROM (
  SELECT *, min(detected_at) OVER (PARTITION BY id) AS first_detected,
         row_number() OVER (PARTITION BY id ORDER BY updated_at DESC, status = 'closed' DESC,
                                                     profit_bps DESC, kafka_offset DESC) AS rank
  FROM signal_states)
WHERE rank = 1
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _percentiles(con: duckdb.DuckDBPyConnection, expression: str, table: str, where: str) -> dict[str, Any]:
    quantiles = ", ".join(f"quantile_cont({expression}, {q}) AS p{round(q * 100)}" for q in PERCENTILES)
    row = _rows(con, f"SELECT count({expression}) AS count, {quantiles}, max({expression}) AS max, "
                     f"avg({expression}) AS mean FROM {table} WHERE {where}")[0]
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


def _hour(column: str) -> str:
    return f"strftime(make_timestamp({column} * 1000), '%Y-%m-%dT%H:00Z')"


def _connect(ticks: pa.Table, signal_states: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.register("ticks", ticks)
    con.register("signal_states", signal_states)
    con.execute(f"CREATE TEMP VIEW signals AS {FINAL_SIGNALS}")
    return con


def signals_by_hour(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Opportunities opened per hour, by type, by venue (one per venue in its legs) and by symbol."""
    return _rows(con, f"""
        WITH opened AS (SELECT {_hour('event_time')} AS hour, * FROM signals),
        venues AS (SELECT DISTINCT id, hour, unnest(legs).venue AS venue FROM opened)
        SELECT hour, 'type' AS dimension, type AS value, count(*) AS signals FROM opened GROUP BY ALL
        UNION ALL SELECT hour, 'venue', venue, count(*) FROM venues GROUP BY ALL
        UNION ALL SELECT hour, 'symbol', symbol, count(*) FROM opened GROUP BY ALL
        ORDER BY hour, dimension, value""")


def profit_distribution(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Net profit (bps, at each opportunity's peak): percentiles and a histogram."""
    summary = _percentiles(con, "profit_bps", "signals", "true")
    summary["min"] = _rows(con, "SELECT min(profit_bps) AS v FROM signals")[0]["v"]
    labels = [f"<{PROFIT_EDGES_BPS[0]}"] + [f"{lo}-{hi}" for lo, hi in zip(PROFIT_EDGES_BPS, PROFIT_EDGES_BPS[1:])] \
        + [f">={PROFIT_EDGES_BPS[-1]}"]
    bucket = "CASE " + " ".join(f"WHEN profit_bps < {edge} THEN {i}" for i, edge in enumerate(PROFIT_EDGES_BPS)) \
        + f" ELSE {len(PROFIT_EDGES_BPS)} END"
    counts = {row["bucket"]: row["n"] for row in _rows(con, f"SELECT {bucket} AS bucket, count(*) AS n "
                                                            f"FROM signals GROUP BY ALL")}
    summary["histogram"] = [{"bucket": label, "signals": counts.get(i, 0)} for i, label in enumerate(labels)]
    return summary


def durations(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How long closed opportunities lasted (closed_at - event_time, ms); open ones are counted apart."""
    summary = _percentiles(con, "closed_at - event_time", "signals", "status = 'closed'")
    summary["still_open"] = _rows(con, "SELECT count(*) AS n FROM signals WHERE status <> 'closed'")[0]["n"]
    return summary


def detection_latency(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Wall-clock detection minus exchange event time (ms): feed delay plus pipeline delay."""
    return _percentiles(con, "detected_at - event_time", "signals", "detected_at IS NOT NULL")


def tick_activity(con: duckdb.DuckDBPyConnection, gap_ms: int) -> list[dict[str, Any]]:
    """Ticks per venue and its silences: a gap is more than `gap_ms` between consecutive ticks of the venue."""
    return [with_iso(row, ("first_ts", "last_ts")) for row in _rows(con, """
        WITH spaced AS (SELECT venue, ts, ts - lag(ts) OVER (PARTITION BY venue ORDER BY ts) AS since FROM ticks)
        SELECT venue, count(*) AS ticks, min(ts) AS first_ts, max(ts) AS last_ts,
               count(*) FILTER (WHERE since > $1) AS gaps,
               coalesce(max(since) FILTER (WHERE since > $1), 0) AS longest_gap_ms,
               coalesce(sum(since) FILTER (WHERE since > $1), 0) AS gap_time_ms
        FROM spaced GROUP BY venue ORDER BY venue""", gap_ms)]


def ticks_by_hour(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _rows(con, f"SELECT {_hour('ts')} AS hour, venue, count(*) AS ticks FROM ticks GROUP BY ALL "
                      "ORDER BY hour, venue")


def report(ticks: pa.Table, signal_states: pa.Table, gap_ms: int = 10_000) -> dict[str, Any]:
    """Every figure of `ascep analytics`, from the lake's tick rows (TICK_COLUMNS suffice) and signal state rows."""
    con = _connect(ticks, signal_states)
    try:
        counts = _rows(con, "SELECT (SELECT count(*) FROM signal_states) AS signal_states, "
                            "(SELECT count(*) FROM signals) AS signals, (SELECT count(*) FROM ticks) AS ticks")[0]
        return {
            "totals": counts,
            "gap_ms": gap_ms,
            "signals_by_hour": signals_by_hour(con),
            "profit_bps": profit_distribution(con),
            "duration_ms": durations(con),
            "detection_latency_ms": detection_latency(con),
            "ticks_by_venue": tick_activity(con, gap_ms),
            "ticks_by_hour": ticks_by_hour(con),
        }
    finally:
        con.close()
