"""The shared producer and `ascep replay` against a real broker: keys, partitions by symbol, dead letters, outages."""
from __future__ import annotations

import logging
import time
import zlib
from collections import Counter

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from ascep.cli import main
from ascep.services import start_broker
from clients.kafka import EMBEDDED, create_topics
from core.clock import now_ms
from core.contracts.tick import Tick, watermark_in
from core.contracts.topics import partition_for_symbol
from core.contracts.trade import Trade
from core.settings import JobSettings
from ingestion.producer import TickProducer, Topics
from ingestion.replay import Item, Pacer, replay_items, retimed
from ingestion.venues.base import Parsed

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "BNB/BTC", "XRP/USDT"]
TS = 1_700_000_000_000


def consume_all(bootstrap: str, topics: list[str], expected: int, timeout: float = 30.0,
                promises: bool = False) -> list:
    """Every record of `topics` from the start; assigned directly (no consumer group) so it starts at once.
    Producers' watermark records are left out unless `promises`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    metadata = consumer.list_topics(timeout=10).topics
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                     for topic in topics for p in metadata[topic].partitions])
    records, deadline = [], time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(consumer.consume(1000, 0.2))
        records.extend(consumer.consume(1000, 0.5))  # anything beyond `expected` would show up as a wrong count
    finally:
        consumer.close()
    assert all(r.error() is None for r in records), [r.error() for r in records if r.error()]
    return [r for r in records if promises or watermark_in(r.value()) is None]


def test_partition_for_symbol_is_crc32_mod_partitions_and_ignores_venue():
    assert partition_for_symbol("BTC/USDT", 4) == 2036819935 % 4  # CRC-32 of b"BTC/USDT"
    assert [partition_for_symbol(s, 8) for s in SYMBOLS] == [zlib.crc32(s.encode()) % 8 for s in SYMBOLS]


def test_ticks_trades_and_dead_letters_land_keyed_and_partitioned_by_symbol(kafka, topic_prefix):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    create_topics(kafka, EMBEDDED, {topics.ticks: 4, topics.trades: 4, topics.deadletter: 1})
    with TickProducer(kafka, EMBEDDED, topics=topics) as producer:
        for i, symbol in enumerate(SYMBOLS * 10):
            for venue in ("binance", "kraken"):
                producer.tick(Tick(venue, symbol, 100.0, 100.5 + i, 1.0, None, TS + i))
        producer.parsed("kraken", Parsed(trades=[Trade("kraken", "ETH/BTC", 0.05, 2.0, "buy", TS, "7")]), b"{}", TS)
        producer.parsed("kraken", Parsed(deadletter="crossed quote: bid 2.0 > ask 1.0"), b'{"bid":2}', TS + 1)
        producer.parsed("kraken", Parsed(ignored="heartbeat"), b'{"event":"heartbeat"}', TS + 2)
    assert (producer.counts.ticks, producer.counts.trades, producer.counts.deadletters) == (120, 1, 1)

    records = consume_all(kafka, [topics.ticks, topics.trades, topics.deadletter], 130, promises=True)
    promises = [r for r in records if watermark_in(r.value()) is not None]
    # closing promised every partition of ticks and of trades that nothing dated before the newest tick + 1 ms
    # is to come (a job whose rules read trades waits for both)
    assert sorted((r.topic(), r.partition(), watermark_in(r.value())) for r in promises) == sorted(
        (topic, p, TS + 60) for topic in (topics.ticks, topics.trades) for p in range(4))
    ticks = [r for r in records if r.topic() == topics.ticks and watermark_in(r.value()) is None]
    assert len(ticks) == 120 and len(records) == 130
    for record in ticks:
        value = orjson.loads(record.value())
        assert record.key().decode() == f"{value['venue']}:{value['symbol']}"
        assert record.partition() == partition_for_symbol(value["symbol"], 4)
    (trade,) = [r for r in records if r.topic() == topics.trades and watermark_in(r.value()) is None]
    assert orjson.loads(trade.value()) == {"venue": "kraken", "symbol": "ETH/BTC", "price": 0.05, "size": 2.0,
                                           "side": "buy", "ts": TS, "trade_id": "7"}
    (dead,) = [r for r in records if r.topic() == topics.deadletter]
    assert orjson.loads(dead.value()) == {"venue": "kraken", "reason": "crossed quote: bid 2.0 > ask 1.0",
                                          "frame": '{"bid":2}', "received_ms": TS + 1}


def test_dead_letter_frame_is_cut_to_64_kib(kafka, topic_prefix):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    create_topics(kafka, EMBEDDED, {topics.deadletter: 1})
    with TickProducer(kafka, EMBEDDED, topics=topics) as producer:
        producer.deadletter("binance", "oversized frame", b"x" * 100_000, TS)
    (record,) = consume_all(kafka, [topics.deadletter], 1)
    assert len(orjson.loads(record.value())["frame"]) == 64 * 1024


def test_missing_topic_is_a_clear_error(kafka, topic_prefix):
    with TickProducer(kafka, EMBEDDED, topics=Topics(ticks=topic_prefix + "absent")) as producer:
        with pytest.raises(LookupError, match="absent' does not exist"):
            producer.tick(Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS))


def test_broker_outage_keeps_messages_buffered_and_warns(tmp_path, caplog):
    broker = start_broker(tmp_path)
    try:
        create_topics(broker.address, EMBEDDED, {"ticks": 2})
        producer = TickProducer(broker.address, EMBEDDED, config={"reconnect.backoff.max.ms": 200})
        producer.tick(Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS))
        assert producer.flush(10) == 0
    finally:
        broker.stop()
    with caplog.at_level(logging.WARNING, logger="ingestion.producer"):
        producer.tick(Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS + 1))
        # still buffered, not dropped: the tick, and the watermark records flush promised both partitions
        assert producer.flush(3) == 3
    warnings = [r for r in caplog.records if r.getMessage() == "kafka unavailable, producer keeps retrying"]
    # Each retry warns with what librdkafka holds (messages and its own requests, so it can pass 3); a warning
    # from the poll in producer.tick may come before the tick is queued. The retries during flush see it held.
    assert warnings and all(w.fields["bootstrap"] == broker.address for w in warnings)
    assert any(w.fields["buffered"] >= 1 for w in warnings), [w.fields for w in warnings]
    assert producer.counts.failed == 0
    # its broker is gone for good: drop what it holds, or librdkafka reconnects to the dead port (and says so on
    # stderr) until the interpreter exits, since close() lets a handle with messages left live on
    producer._producer.purge()
    producer.close(timeout=1)


# --- ascep replay ------------------------------------------------------------------------------

def replay_cli(kafka: str, topics: Topics, *args: str) -> int:
    return main(["replay", *args, "--kafka", kafka, "--topic", topics.ticks, "--trades-topic", topics.trades,
                 "--deadletter-topic", topics.deadletter])


def test_replay_jsonl_with_bad_lines(kafka, topic_prefix, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASCEP_JOB__PARTITIONS", "3")
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    good = [Tick(venue, symbol, 100.0 + i, 100.5 + i, 1.0, 2.0, TS + i).to_json_dict()
            for i, (venue, symbol) in enumerate((v, s) for v in ("binance", "coinbase", "kraken") for s in SYMBOLS)]
    lines = [orjson.dumps(t).decode() for t in good]
    bad = {3: ("{not json", "not JSON"),
           7: ('{"venue":"binance","symbol":"BTC/USDT","bid":2,"ask":1,"ts":1700000000000}', "crossed quote"),
           11: ('{"venue":"binance","symbol":"BTC/USDT","ask":1,"ts":1700000000000}', "missing field 'bid'"),
           14: ('{"venue":"binance","symbol":"btc-usdt","bid":1,"ask":2,"ts":1700000000000}', "field 'symbol'"),
           16: ('{"venue":"kraken","symbol":"ETH/BTC","price":0.05,"size":-1,"ts":1700000000000}', "field 'size'")}
    for number in sorted(bad):
        lines.insert(number - 1, bad[number][0])
    lines.insert(19, "")  # a blank line is ignored, not an error
    trade = Trade("kraken", "ETH/BTC", 0.05, 2.0, "sell", TS + 5, "9")  # a line with a price is a trade
    lines.append(orjson.dumps(trade).decode())
    path = tmp_path / "ticks.jsonl"
    path.write_text("\n".join(lines) + "\n")

    assert replay_cli(kafka, topics, str(path), "--max") == 0
    assert f"replayed {path}: 18 ticks, 1 trades, 1 ignored, 5 deadletters in" in capsys.readouterr().err

    records = consume_all(kafka, [topics.ticks, topics.trades, topics.deadletter], 24)
    (traded,) = [r for r in records if r.topic() == topics.trades]
    assert orjson.loads(traded.value()) == orjson.loads(orjson.dumps(trade))
    assert traded.partition() == partition_for_symbol("ETH/BTC", 3)
    ticks = [r for r in records if r.topic() == topics.ticks]
    assert sorted(orjson.loads(r.value())["ts"] for r in ticks) == sorted(t["ts"] for t in good)
    for record in ticks:
        value = orjson.loads(record.value())
        assert record.key().decode() == f"{value['venue']}:{value['symbol']}"
        assert record.partition() == partition_for_symbol(value["symbol"], 3)
    dead = sorted((orjson.loads(r.value()) for r in records if r.topic() == topics.deadletter),
                  key=lambda d: int(d["source"].rsplit(":", 1)[1]))
    assert [d["source"] for d in dead] == [f"{path}:{n}" for n in sorted(bad)]
    for record, number in zip(dead, sorted(bad)):
        frame, reason = bad[number]
        assert record["frame"] == frame and record["reason"].startswith(reason) and record["venue"] == "replay"


def test_replay_binance_recording_with_a_bad_frame(kafka, topic_prefix, tmp_path, recordings, capsys):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    path = tmp_path / "binance.ws"
    path.write_text((recordings / "BINANCE.ws.1.0").read_text().rstrip("\n") + "\n1633998600.5: "
                    '{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT","b":"0.4","a":"0.3"}}\n')

    assert replay_cli(kafka, topics, str(path), "--max") == 0
    assert "84 ticks, 2 trades, 179 ignored, 1 deadletters" in capsys.readouterr().err

    records = consume_all(kafka, [topics.ticks, topics.trades, topics.deadletter], 87)
    by_topic = Counter(r.topic() for r in records)
    assert by_topic == {topics.ticks: 84, topics.trades: 2, topics.deadletter: 1}
    partitions = JobSettings().partitions
    for record in records:
        value = orjson.loads(record.value())
        if record.topic() != topics.deadletter:
            assert record.key().decode() == f"binance:{value['symbol']}"
            assert record.partition() == partition_for_symbol(value["symbol"], partitions)
    (dead,) = [orjson.loads(r.value()) for r in records if r.topic() == topics.deadletter]
    assert dead == {"venue": "binance", "reason": "crossed quote: bid 0.4 > ask 0.3", "source": f"{path}:267",
                    "frame": '{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT","b":"0.4","a":"0.3"}}',
                    "received_ms": 1633998600500}


def test_replay_of_an_unknown_venue_names_the_url(kafka, topic_prefix, tmp_path, capsys):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    path = tmp_path / "BITSTAMP.ws"
    path.write_text('wss://ws.bitstamp.net <-> 1652459224.5\n1652459225.0: {"event":"bts:heartbeat"}\n')
    assert replay_cli(kafka, topics, str(path), "--max") == 1
    assert "BITSTAMP.ws:1: no parser for the venue of wss://ws.bitstamp.net" in capsys.readouterr().err


def test_pacing_follows_event_time_times_speed():
    pacer, start = Pacer(4.0), time.monotonic()
    for offset_ms in (0, 500, 1000):
        pacer.wait(TS + offset_ms)
    assert 0.25 <= time.monotonic() - start < 0.5  # one second of event time at 4x


def test_retiming_moves_the_first_item_to_the_start_and_keeps_the_spacing_divided_by_the_speed():
    items = [Item(TS, 0, ticks=[Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS - 40)]), Item(None, 0),
             Item(TS + 1_000, 0, trades=[Trade("binance", "BTC/USDT", 1.5, 1.0, "buy", TS + 990)]),
             Item(TS + 4_000, 0, ticks=[Tick("kraken", "BTC/USDT", 1.0, 2.0, None, None, TS + 4_000)])]
    start = 2_000_000_000_000
    at_1 = list(retimed([Item(i.time_ms, 0, list(i.ticks), list(i.trades)) for i in items], start, 1.0))
    assert [t.ts for i in at_1 for t in i.ticks] == [start - 40, start + 4_000]
    assert [t.ts for i in at_1 for t in i.trades] == [start + 990]
    at_4 = list(retimed(items, start, 4.0))
    assert [t.ts for i in at_4 for t in i.ticks] == [start - 10, start + 1_000]  # dated as the pacing sends them


def test_replay_retime_dates_an_old_recording_from_now_at_its_pacing(kafka, topic_prefix, recordings):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    path = recordings / "BINANCE.ws.1.0"  # 30 s recorded in 2021
    items = list(replay_items(path))
    first = next(i.time_ms for i in items if i.time_ms is not None)
    original = [(t.key, t.ts) for i in items for t in i.ticks]
    began, started = now_ms(), time.monotonic()
    assert replay_cli(kafka, topics, str(path), "--retime", "--speed", "10") == 0
    assert 2.5 < time.monotonic() - started < 10, "the pacing is --speed's, retimed or not"

    ticks = consume_all(kafka, [topics.ticks], len(original))
    assert len(ticks) == len(original) == 84
    got = [(r.key().decode(), orjson.loads(r.value())["ts"]) for r in ticks]
    assert [key for key, _ in got] == [key for key, _ in original]
    for (_, ts), (_, was) in zip(got, original):
        assert abs(ts - (began + (was - first) / 10)) < 1_000  # the spacing, at the replay's speed, from now
    for record, (_, ts) in zip(ticks, got):
        assert abs(ts - record.timestamp()[1]) < 1_000, "a retimed tick is dated when it was sent"


def test_replay_retime_refuses_an_unpaced_replay(kafka, topic_prefix, recordings, capsys):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    assert replay_cli(kafka, topics, str(recordings / "BINANCE.ws.1.0"), "--retime", "--max") == 1
    assert "--retime dates ticks by the replay's pacing: with --max" in capsys.readouterr().err


def test_the_producer_reports_topic_ends_from_its_delivery_reports(kafka, redis_url, topic_prefix):
    """The embedded broker's watermarks are unreliable: TOPIC_ENDS comes from what the broker acknowledged."""
    import redis

    from core.contracts.redis_keys import TOPIC_ENDS, topic_end_field

    topics = Topics(ticks=f"{topic_prefix}ticks", trades=f"{topic_prefix}trades",
                    deadletter=f"{topic_prefix}deadletter")
    create_topics(kafka, EMBEDDED, {topics.ticks: 3, topics.trades: 1, topics.deadletter: 1})
    client = redis.Redis.from_url(redis_url)
    with TickProducer(kafka, EMBEDDED, topics=topics, ends_to=redis_url) as producer:
        for n in range(30):
            producer.tick(Tick("binance", SYMBOLS[n % 6], 1.0, 1.1, None, None, TS + n))
    sent = Counter(partition_for_symbol(SYMBOLS[n % 6], 3) for n in range(30))
    assert sent == {0: 5, 1: 25}
    ends = {field.decode(): int(end) for field, end in client.hgetall(TOPIC_ENDS).items()
            if field.decode().startswith(topic_prefix)}
    # and closing wrote one watermark record to each partition (of trades too), which the ends count too
    assert ends == {**{topic_end_field(topics.ticks, p): sent[p] + 1 for p in range(3)},
                    topic_end_field(topics.trades, 0): 1}
    client.hset(TOPIC_ENDS, topic_end_field(topics.ticks, 0), 10_000)  # ends are raised, never lowered
    with TickProducer(kafka, EMBEDDED, topics=topics, ends_to=redis_url) as producer:
        producer.tick(Tick("binance", "SOL/USDT", 1.0, 1.1, None, None, TS))  # partition 0 again: end 8
    assert int(client.hget(TOPIC_ENDS, topic_end_field(topics.ticks, 0))) == 10_000
