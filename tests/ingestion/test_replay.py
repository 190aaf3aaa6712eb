"""The shared producer and `ascep replay` against a real broker: keys, partitions by symbol, dead letters, outages."""
from __future__ import annotations

import logging
import time

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from ascep.services import create_topics, start_broker
from ascep.tick import Tick
from ingestion.producer import TickProducer, Topics, partition_for_symbol
from ingestion.venues.base import Parsed, Trade

SYMBOLS = ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "BNB/BTC", "XRP/USDT"]
TS = 1_700_000_000_000


def consume_all(bootstrap: str, topics: list[str], expected: int, timeout: float = 30.0) -> list:
    """Every record of `topics` from the start; assigned directly (no consumer group) so it starts at once."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    metadata = consumer.list_topics(timeout=10).topics
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for topic in topics for p in metadata[topic].partitions])
    records, deadline = [], time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(consumer.consume(1000, 0.2))
        records.extend(consumer.consume(1000, 0.5))  # anything beyond `expected` would show up as a wrong count
    finally:
        consumer.close()
    assert all(r.error() is None for r in records), [r.error() for r in records if r.error()]
    return records


def test_partition_for_symbol_is_crc32_mod_partitions_and_ignores_venue():
    assert partition_for_symbol("BTC/USDT", 4) == 2036819935 % 4  # CRC-32 of b"BTC/USDT"
    assert {partition_for_symbol(s, 8) for s in SYMBOLS} <= set(range(8))


def test_ticks_trades_and_dead_letters_land_keyed_and_partitioned_by_symbol(kafka, topic_prefix):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    create_topics(kafka, {topics.ticks: 4, topics.trades: 4, topics.deadletter: 1})
    with TickProducer(kafka, topics=topics) as producer:
        for i, symbol in enumerate(SYMBOLS * 10):
            for venue in ("binance", "kraken"):
                producer.tick(Tick(venue, symbol, 100.0, 100.5 + i, 1.0, None, TS + i))
        producer.parsed("kraken", Parsed(trades=[Trade("kraken", "ETH/BTC", 0.05, 2.0, "buy", TS, "7")]), b"{}", TS)
        producer.parsed("kraken", Parsed(deadletter="crossed quote: bid 2.0 > ask 1.0"), b'{"bid":2}', TS + 1)
        producer.parsed("kraken", Parsed(ignored="heartbeat"), b'{"event":"heartbeat"}', TS + 2)
    assert (producer.counts.ticks, producer.counts.trades, producer.counts.deadletters) == (120, 1, 1)

    records = consume_all(kafka, [topics.ticks, topics.trades, topics.deadletter], 122)
    ticks = [r for r in records if r.topic() == topics.ticks]
    assert len(ticks) == 120 and len(records) == 122
    for record in ticks:
        value = orjson.loads(record.value())
        assert record.key().decode() == f"{value['venue']}:{value['symbol']}"
        assert record.partition() == partition_for_symbol(value["symbol"], 4)
    (trade,) = [r for r in records if r.topic() == topics.trades]
    assert orjson.loads(trade.value()) == {"venue": "kraken", "symbol": "ETH/BTC", "price": 0.05, "size": 2.0,
                                           "side": "buy", "ts": TS, "trade_id": "7"}
    (dead,) = [r for r in records if r.topic() == topics.deadletter]
    assert orjson.loads(dead.value()) == {"venue": "kraken", "reason": "crossed quote: bid 2.0 > ask 1.0",
                                          "frame": '{"bid":2}', "received_ms": TS + 1}


def test_dead_letter_frame_is_cut_to_64_kib(kafka, topic_prefix):
    topics = Topics(*(topic_prefix + t for t in ("ticks", "trades", "deadletter")))
    create_topics(kafka, {topics.deadletter: 1})
    with TickProducer(kafka, topics=topics) as producer:
        producer.deadletter("binance", "oversized frame", b"x" * 100_000, TS)
    (record,) = consume_all(kafka, [topics.deadletter], 1)
    assert len(orjson.loads(record.value())["frame"]) == 64 * 1024


def test_missing_topic_is_a_clear_error(kafka, topic_prefix):
    with TickProducer(kafka, topics=Topics(ticks=topic_prefix + "absent")) as producer:
        with pytest.raises(LookupError, match="absent' does not exist"):
            producer.tick(Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS))


def test_broker_outage_keeps_messages_buffered_and_warns(tmp_path, caplog):
    broker = start_broker(tmp_path)
    try:
        create_topics(broker.address, {"ticks": 2})
        producer = TickProducer(broker.address, config={"reconnect.backoff.max.ms": 200})
        producer.tick(Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS))
        assert producer.flush(10) == 0
    finally:
        broker.stop()
    with caplog.at_level(logging.WARNING, logger="ingestion.producer"):
        producer.tick(Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, TS + 1))
        assert producer.flush(3) == 1  # still buffered, not dropped
    warnings = [r for r in caplog.records if r.getMessage() == "kafka unavailable, producer keeps retrying"]
    assert warnings and warnings[0].fields["bootstrap"] == broker.address and warnings[0].fields["buffered"] >= 1
    assert producer.counts.failed == 0
