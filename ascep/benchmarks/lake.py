"""Ticks/s into the Parquet lake, and what flushing every batch costs (the exactly-once contract).

Simulated ticks (3 venues, 4 symbols, 10 ms apart) go through LakeWriter.add_ticks one offset at
a time, as the job does, into a fresh local directory or an S3 lake; the job flushes after each
batch of --batch offsets (0: only when a range completes). Then `ascep analytics` figures are
computed over what was written.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import uuid

from core.clock import now_ms
from core.contracts.tick import Tick

VENUES = ("binance", "coinbase", "kraken")
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT")


def add_arguments(parser) -> None:
    parser.add_argument("--ticks", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5_000, help="offsets between flushes (0: none)")
    parser.add_argument("--tick-range", type=int, default=131_072, help="offsets per object")
    parser.add_argument("--lake", help="directory or s3://bucket/prefix (default: a temporary directory)")
    parser.add_argument("--s3-endpoint", help="for an S3 lake on MinIO/moto")


def run(args) -> dict:
    from lake.reader import lake_report
    from lake.storage import open_lake
    from lake.writer import LakeWriter

    scratch = None if args.lake else tempfile.mkdtemp(prefix="ascep-lake-bench-")
    lake = open_lake(args.lake or scratch, args.s3_endpoint)
    try:
        writer = LakeWriter(lake, topic_id=str(uuid.uuid4()), tick_range=args.tick_range, roll_seconds=1e9,
                            roll_event_span_ms=10**12)
        start_ms = now_ms() - args.ticks * 10
        ticks = [Tick(VENUES[i % 3], SYMBOLS[i % 4], 100.0 + i % 7, 100.02 + i % 7, 1.0, 2.0, start_ms + i * 10)
                 for i in range(args.ticks)]
        began = time.perf_counter()
        for offset, tick in enumerate(ticks):
            writer.add_ticks(0, offset, (tick,))
            if args.batch and offset % args.batch == args.batch - 1:
                writer.flush(0, offset)
        writer.flush(0, args.ticks - 1)
        write_s = time.perf_counter() - began
        began = time.perf_counter()
        figures = lake_report(lake)
        analytics_s = time.perf_counter() - began
        if figures["totals"]["ticks"] != args.ticks:
            raise RuntimeError(f"the lake holds {figures['totals']['ticks']} ticks, expected {args.ticks}")
        return {"ticks": args.ticks, "ticks_per_s": args.ticks / write_s, "objects_written": writer.objects_written,
                "write_s": write_s, "analytics_s": analytics_s}
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
