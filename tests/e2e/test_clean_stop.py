"""A clean stop loses nothing: Ctrl-C right after the job has read a replay, and the lake holds every tick once.

Without the drain, the archivers' last flush_every_s of ticks (here: the whole replay) would go with the job.
"""
from __future__ import annotations

import itertools
import signal

import orjson
import pytest

from ingestion.sim.market import SimulatedMarket
from lake.reader import read_kind
from lake.storage import open_lake

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TICKS = 3_000


def test_a_stop_right_after_the_ticks_are_read_leaves_every_tick_in_the_lake_once(start_stack, tmp_path):
    market = SimulatedMarket(seed=3, rate=1_000.0)
    ticks = list(itertools.islice(market.ticks(1_700_000_000_000), TICKS))
    replayed = tmp_path / "market.jsonl"
    replayed.write_bytes(b"\n".join(orjson.dumps(t.to_json_dict()) for t in ticks) + b"\n")

    stack = start_stack("--source", f"replay:{replayed}")
    stack.wait_counter("ticks", TICKS)
    stack.proc.send_signal(signal.SIGINT)
    code = stack.proc.wait(120)
    out = stack.output()
    assert code == 0, out
    assert "drained   in" in out, out

    lake = read_kind(open_lake(stack.info["lake"]), "ticks")
    assert lake.num_rows == TICKS, out
    offsets = lake.column("kafka_offset").to_pylist()
    # each tick once; the replay's producer may put a watermark record between ticks when it pauses 100 ms
    # (ingestion/producer.py), which takes an offset of its own and is no tick
    assert len(set(offsets)) == TICKS and max(offsets) < TICKS + 10, out
    fields = ("venue", "symbol", "bid", "ask", "ts")
    archived = sorted(zip(*(lake.column(name).to_pylist() for name in fields)))
    assert archived == sorted((t.venue, t.symbol, t.bid, t.ask, t.ts) for t in ticks)
