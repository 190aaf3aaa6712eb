"""Ticks/s into the Parquet lake, and what flushing every batch costs (the exactly-once contract).

Simulated ticks (3 venues, 4 symbols, 10 ms apart) go through LakeWriter.add_ticks one offset at
a time, as the job does, into a fresh local directory or an S3 lake; the job flushes after each
batch of --batch offsets (0: only when a range completes). Then `ascep analytics` figures are
computed over what was written, and `ascep analytics outcomes` over a cross-exchange signal every
--signal-every ticks (kraken quoted a point above the others, so every one stays profitable through its
horizon: the most a tick can cost, as none settles early).
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
    parser.add_argument("--signal-every", type=int, default=20, help="ticks between the signals followed")


def run(args) -> dict:
    from core.settings import ArbitrageSettings
    from lake.outcomes import outcomes_report
    from lake.reader import lake_report
    from lake.storage import open_lake
    from lake.writer import LakeWriter

    scratch = None if args.lake else tempfile.mkdtemp(prefix="ascep-lake-bench-")
    lake = open_lake(args.lake or scratch, args.s3_endpoint)
    try:
        writer = LakeWriter(lake, topic_id=str(uuid.uuid4()), tick_range=args.tick_range, roll_seconds=1e9,
                            roll_event_span_ms=10**12)
        start_ms = now_ms() - args.ticks * 10
        mids = [100.0 + i % 7 * 0.01 + (VENUES[i % 3] == "kraken") for i in range(args.ticks)]
        ticks = [Tick(VENUES[i % 3], SYMBOLS[i % 4], mid, mid + 0.02, 1.0, 2.0, start_ms + i * 10)
                 for i, mid in enumerate(mids)]
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
        signals = [{"id": f"b{i}", "type": "cross_exchange", "status": "open", "profit_bps": 1.0, "size": None,
                    "legs": [{"venue": "binance", "symbol": ticks[i].symbol, "side": "buy", "price": 1.0},
                             {"venue": "kraken", "symbol": ticks[i].symbol, "side": "sell", "price": 1.0}],
                    "event_time": ticks[i].ts, "updated_at": ticks[i].ts}
                   for i in range(args.ticks // 2, args.ticks, args.signal_every)]  # all legs quoted by then
        for offset, signal in enumerate(signals):
            writer.add_signals(0, offset, [signal])
        writer.flush(0, args.ticks - 1)
        began = time.perf_counter()
        report = outcomes_report(lake, ArbitrageSettings(), start_ms, start_ms + args.ticks * 10,
                                 (50, 250, 1_000, 5_000), 60_000)
        outcomes_s = time.perf_counter() - began
        return {"ticks": args.ticks, "ticks_per_s": args.ticks / write_s, "objects_written": writer.objects_written,
                "write_s": write_s, "analytics_s": analytics_s, "outcome_signals": report["followed"],
                "outcomes_s": outcomes_s,
                "outcomes_surviving_horizon": sum(o["survived_horizon"] for o in report["outcomes"])}
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
