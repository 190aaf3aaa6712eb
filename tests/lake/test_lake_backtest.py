"""The lake read back for a backtest: each partition's ticks of a time range in offset order, however they are split
over hours, venues, offset ranges and row groups, a row group at a time; locally and on S3; trades with the ticks
they were read with. The signals to Parquet."""
from __future__ import annotations

import dataclasses

import pyarrow.parquet as pq
import pytest

from core.cep.backtest import Backtest, Chunk, Found
from core.contracts.trade import Trade
from lake.backtest import RangeBacktest, SignalFile, tick_streams, trade_streams
from lake.layout import HOUR_MS, SIGNAL_SCHEMA, incarnation
from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake import synthetic
from tests.lake.synthetic import START_MS, STEP_MS, TOPIC_ID

pytestmark = pytest.mark.integration

OTHER_TOPIC_ID = "01a23131-4080-75e1-9f0a-df66b0ae3304"  # the topic created again: offsets from 0 again
ROW_GROUP = 64
LATE_MS = 600_000


def logs(count: int = 2_400) -> dict[int, list[tuple[int, object]]]:
    """(offset, tick) per partition; every 97th tick is ten minutes late, so offset order is not event-time order
    and some late ticks land in the hour before their neighbours'."""
    out: dict[int, list[tuple[int, object]]] = {}
    for record in synthetic.records(count):
        for tick in record.ticks:
            if record.offset % 97 == 0:
                tick = tick._replace(ts=tick.ts - LATE_MS)
            out.setdefault(record.partition, []).append((record.offset, tick))
    return out


def write(lake, topic_id: str, written: dict[int, list[tuple[int, object]]]) -> None:
    writer = LakeWriter(lake, topic_id=topic_id, tick_range=500, row_group_rows=ROW_GROUP, roll_seconds=1e9,
                        roll_event_span_ms=10**12)
    for partition, rows in written.items():
        for offset, tick in rows:
            writer.add_ticks(partition, offset, (tick,))
        writer.flush(partition, rows[-1][0])


def read_back(lake, start_ms: int, end_ms: int, symbols=None):
    return [(incarnation, {p: list(chunks) for p, chunks in streams.items()})
            for incarnation, streams in tick_streams(lake, start_ms, end_ms, symbols)]


def flat(chunks) -> list[tuple[int, object]]:
    return [row for chunk in chunks for row in zip(chunk.offsets, chunk.ticks)]


@pytest.fixture(scope="module")
def written() -> dict[int, list[tuple[int, object]]]:
    return logs()


@pytest.fixture(scope="module")
def local_lake(written, tmp_path_factory):
    lake = open_lake(str(tmp_path_factory.mktemp("lake")))
    write(lake, TOPIC_ID, written)
    return lake


def test_each_partition_comes_back_in_offset_order_within_the_range(local_lake, written):
    # from inside the first hour to inside the last: hours, venues, three offset ranges, row groups of 64
    start, end = START_MS + 500 * STEP_MS, START_MS + 2_000 * STEP_MS
    [(_, streams)] = read_back(local_lake, start, end)
    assert sorted(streams) == [0, 1]
    for partition, chunks in streams.items():
        assert flat(chunks) == [(o, t) for o, t in written[partition] if start <= t.ts < end]
        assert all(c.partition == partition for c in chunks)
        assert max(len(c.ticks) for c in chunks) <= 3 * ROW_GROUP, "a step takes about a row group per venue"
    late = [t for o, t in written[0] if o % 97 == 0 and start <= t.ts < end]
    assert any(t.ts // HOUR_MS != (t.ts + LATE_MS) // HOUR_MS for t in late), "a late tick in the hour before"


def test_only_the_symbols_asked_for_are_read(local_lake, written):
    [(_, streams)] = read_back(local_lake, START_MS - HOUR_MS, START_MS + 10 * HOUR_MS, {"ETH/USDT"})
    for partition, chunks in streams.items():
        assert flat(chunks) == [(o, t) for o, t in written[partition] if t.symbol == "ETH/USDT"]


def test_a_range_with_no_tick_object_is_empty(local_lake):
    assert read_back(local_lake, START_MS - 10 * HOUR_MS, START_MS - 2 * HOUR_MS) == []


def test_no_lake_there_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lake at"):
        tick_streams(open_lake(str(tmp_path / "none")), START_MS, START_MS + 1)


def test_each_incarnation_of_the_topic_comes_back_on_its_own_the_oldest_first(tmp_path):
    lake = open_lake(str(tmp_path / "lake"))
    later = {0: [(offset, tick._replace(ts=tick.ts + 3 * HOUR_MS)) for offset, tick in logs(300)[0]]}
    write(lake, OTHER_TOPIC_ID, later)
    write(lake, TOPIC_ID, {0: logs(300)[0]})
    found = read_back(lake, START_MS - HOUR_MS, START_MS + 6 * HOUR_MS)
    assert [flat(streams[0]) for _, streams in found] == [logs(300)[0], later[0]]


def test_an_s3_lake_reads_back_as_the_local_one(s3, local_lake, written):
    lake = open_lake(f"s3://{s3.new_bucket()}/lake", s3.endpoint)
    write(lake, TOPIC_ID, written)
    start, end = START_MS - HOUR_MS, START_MS + 10 * HOUR_MS
    assert read_back(lake, start, end) == read_back(local_lake, start, end)


def test_signal_states_are_written_in_the_lakes_signal_schema(tmp_path):
    path = tmp_path / "signals.parquet"
    out = SignalFile(str(path), row_group_rows=2)
    states = [synthetic.opening(0, offset) for offset in range(0, 250, 50)]
    for offset, state in enumerate(states):
        out.add(Found(state, 1, offset))
    out.close()
    table = pq.read_table(path)
    assert table.schema.equals(SIGNAL_SCHEMA) and pq.ParquetFile(path).metadata.num_row_groups == 3
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [s["id"] for s in states]
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in rows] == [(1, o) for o in range(len(states))]



TRADES_TOPIC_ID = "01a23131-4080-75e1-9f0a-df66b0ae3305"
SURGING = 'PARTITION BY symbol IF volume(10s) > 3 * volume(1m) / 6 THEN SURGE'


def trade_logs(ticks: dict[int, list[tuple[int, object]]]) -> dict[int, list[tuple[int, Trade]]]:
    """A trade beside every third tick of each partition, at its time and symbol; the sizes surge now and then;
    some venues give no side or trade id."""
    return {partition: [(n, Trade(tick.venue, tick.symbol, tick.bid, 40.0 if n % 50 < 3 else 1.0,
                              None if n % 7 == 0 else "buy", tick.ts, None if n % 5 == 0 else f"t{partition}-{n}"))
                        for n, (_, tick) in enumerate(rows[::3])]
            for partition, rows in ticks.items()}


def write_trades(lake, trades: dict[int, list[tuple[int, Trade]]], read_with: str = TOPIC_ID) -> None:
    writer = LakeWriter(lake, topic_id=TRADES_TOPIC_ID, tick_range=500, row_group_rows=ROW_GROUP, roll_seconds=1e9,
                        roll_event_span_ms=10**12, read_with=read_with)
    for partition, rows in trades.items():
        for offset, trade in rows:
            writer.add_trades(partition, offset, (trade,))
        writer.flush(partition, rows[-1][0])


def in_memory(rule: str, ticks, trades) -> tuple[list[tuple], Backtest]:
    """The same rule over the same ticks and trades, fed to the engine from memory in one chunk a partition."""
    run = Backtest("r", rule, [*ticks, *trades])
    found = run.run({p: [Chunk(p, [t for _, t in rows], [o for o, _ in rows])] for p, rows in ticks.items()},
                    {p: [Chunk(p, [t for _, t in rows], [o for o, _ in rows], trades=True)]
                     for p, rows in trades.items()})
    return [(f.signal["id"], f.signal["status"], f.partition, f.offset) for step in found for f in step], run


def test_trades_come_back_with_the_ticks_they_were_read_with_and_a_rule_of_trades_sees_them(tmp_path, written):
    lake = open_lake(str(tmp_path / "lake"))
    write(lake, TOPIC_ID, written)
    trades = trade_logs(written)
    write_trades(lake, trades)
    start, end = START_MS - HOUR_MS, START_MS + 10 * HOUR_MS
    [(_, streams)] = read_back(lake, start, end)
    back = trade_streams(lake, start, end)
    assert list(back) == [incarnation(TOPIC_ID)], "paired with the ticks' incarnation, named in the manifests"
    for partition, chunks in back[incarnation(TOPIC_ID)].items():
        chunks = list(chunks)
        assert all(c.trades and c.partition == partition for c in chunks)
        assert flat(chunks) == trades[partition]

    expected, direct = in_memory(SURGING, written, trades)
    assert direct.trades == sum(map(len, trades.values())) and expected, "the rule fires on the surges"
    run = RangeBacktest(lake, "r", SURGING, start, end)
    got = [(f.signal["id"], f.signal["status"], f.partition, f.offset) for step in run.run() for f in step]
    assert got == expected and run.trades == direct.trades and run.ticks == direct.ticks
    quotes = RangeBacktest(lake, "r", 'PARTITION BY symbol IF change_pct(1m) > 5 THEN MOVE', start, end)
    list(quotes.run())
    assert quotes.trades == 0, "a rule of quotes alone reads no trade, as the job merges none for it"


def test_trades_of_symbols_or_hours_without_ticks_are_backtested_too(tmp_path, written):
    """A venue may send trades of a symbol it quotes nowhere (a Kraken recording: trades alone): the job evaluates
    them, so a backtest of a rule of trades does too, whether the range has ticks of other symbols or none at all."""
    lake = open_lake(str(tmp_path / "lake"))
    trades = trade_logs(written)
    write_trades(lake, trades)  # read with TOPIC_ID's ticks, none of which is in the lake
    start, end = START_MS - HOUR_MS, START_MS + 10 * HOUR_MS
    assert read_back(lake, start, end) == []
    expected, direct = in_memory(SURGING, {}, trades)
    assert expected, "the rule fires on the surges of trades alone"
    run = RangeBacktest(lake, "r", SURGING, start, end)
    got = [(f.signal["id"], f.signal["status"], f.partition, f.offset) for step in run.run() for f in step]
    assert got == expected and run.ticks == 0 and run.trades == direct.trades and run.partitions == len(trades)
    assert run.reads_trades and not RangeBacktest(lake, "r", 'IF price("A/B") > 1 THEN X', start, end).reads_trades

    lake = open_lake(str(tmp_path / "quoted"))  # ticks of other symbols in the range: --symbols picks the trades'
    write(lake, TOPIC_ID, written)
    unquoted = {p: [(o, dataclasses.replace(t, symbol="ZZ/USD")) for o, t in rows] for p, rows in trades.items()}
    write_trades(lake, unquoted)
    expected, _ = in_memory(SURGING, {}, unquoted)
    filtered = RangeBacktest(lake, "r", SURGING, start, end, {"ZZ/USD"})
    got = [(f.signal["id"], f.signal["status"], f.partition, f.offset) for step in filtered.run() for f in step]
    assert got == expected and filtered.ticks == 0 and filtered.trades == direct.trades


def test_trades_without_a_manifest_naming_their_ticks_are_refused(tmp_path, written):
    lake = open_lake(str(tmp_path / "lake"))
    write_trades(lake, {0: trade_logs(written)[0][:10]})
    for manifest in (tmp_path / "lake" / "_ranges" / "trades").rglob("*.json"):
        manifest.write_text(manifest.read_text().replace('"read_with"', '"other"'))
    with pytest.raises(RuntimeError, match="naming the ticks they were read with"):
        trade_streams(lake, START_MS - HOUR_MS, START_MS + 10 * HOUR_MS)
