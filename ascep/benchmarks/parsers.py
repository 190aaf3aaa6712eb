"""Frames per second one core parses (and serializes, and produces): the connectors' ceiling.

Goal: >= 100,000 Binance bookTicker frames/s per core for parse + serialize.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from clients.kafka import EMBEDDED
from core.books.book import OrderBook
from core.books.checksums import kraken_checksum, okx_checksum
from core.settings import KafkaSecuritySettings, load_settings
from ingestion.venues import get_venue
from ingestion.venues.binance import DEFAULT_SYMBOLS

NOW = 1_700_000_000_000


def add_arguments(parser) -> None:
    parser.add_argument("--frames", type=int, default=200_000, help="frames per measurement (default 200,000)")
    parser.add_argument("--kafka", help="also parse + produce into this broker")
    parser.add_argument("--broker", action="store_true", help="also parse + produce into an embedded broker it starts")


def binance_frames(count: int) -> list[bytes]:
    frames = []
    for i in range(count):
        symbol = DEFAULT_SYMBOLS[i % len(DEFAULT_SYMBOLS)].replace("/", "")
        bid = 100 + (i % 997) * 0.01
        frames.append(orjson.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": {
            "u": 400900217 + i, "s": symbol, "b": f"{bid:.8f}", "B": f"{1 + i % 13:.8f}",
            "a": f"{bid + 0.01:.8f}", "A": f"{2 + i % 7:.8f}"}}))
    return frames


def coinbase_frames(count: int) -> list[bytes]:
    return [orjson.dumps({"type": "ticker", "sequence": 1000 + i, "product_id": "BTC-USD", "price": "30000.01",
                          "best_bid": f"{30000 + i % 50:.2f}", "best_ask": f"{30000.5 + i % 50:.2f}",
                          "best_bid_size": "0.5", "best_ask_size": "0.25", "side": "buy", "trade_id": i,
                          "time": "2023-11-14T22:13:20.123456Z", "last_size": "0.01"}) for i in range(count)]


def kraken_frames(count: int) -> list[bytes]:
    return [orjson.dumps({"channel": "ticker", "type": "update", "data": [{
        "symbol": "BTC/USD", "bid": 30000.0 + i % 50, "bid_qty": 1.25, "ask": 30000.5 + i % 50, "ask_qty": 0.5,
        "last": 30000.1, "volume": 1000.0}]}) for i in range(count)]


def book_updates(count: int, depth: int, checksum: Callable[[OrderBook], int],
                 seed: int = 7) -> list[tuple[list, list, int]]:
    """A snapshot of `depth` levels a side around 30000, then `count` updates of 1-3 levels near the top
    (a third of them deletes); each with the checksum of the book it leaves."""
    rng = random.Random(seed)
    book = OrderBook(depth)
    bids = [(f"{30000 - 0.1 * k:.1f}", f"{rng.uniform(0.01, 5):.8f}") for k in range(depth)]
    asks = [(f"{30000.1 + 0.1 * k:.1f}", f"{rng.uniform(0.01, 5):.8f}") for k in range(depth)]
    book.snapshot(bids, asks)
    steps = [(bids, asks, checksum(book))]
    for _ in range(count):
        changes: tuple[list, list] = ([], [])
        for _ in range(rng.randint(1, 3)):
            side = rng.randrange(2)
            k = rng.randrange(min(depth, 30))
            price = f"{30000 - 0.1 * k:.1f}" if side == 0 else f"{30000.1 + 0.1 * k:.1f}"
            size = "0.00000000" if rng.random() < 1 / 3 else f"{rng.uniform(0.01, 5):.8f}"
            (book.set_bid if side == 0 else book.set_ask)(price, size)
            changes[side].append((price, size))
        steps.append((changes[0], changes[1], checksum(book)))
    return steps


def kraken_book_frames(count: int) -> list[bytes]:
    """Kraken v2 book frames written as text, as Kraken sends them (numbers with their trailing zeros)."""
    frames = []
    for index, (bids, asks, checksum) in enumerate(book_updates(count, 25, kraken_checksum)):
        kind = "snapshot" if index == 0 else "update"
        levels = [",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side) for side in (bids, asks)]
        stamp = "" if index == 0 else ',"timestamp":"2023-11-14T22:13:20.123456Z"'
        frames.append((f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":[{levels[0]}],'
                       f'"asks":[{levels[1]}],"checksum":{checksum}{stamp}}}]}}').encode())
    return frames


def okx_book_frames(count: int) -> list[bytes]:
    return [orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"},
                          "action": "snapshot" if index == 0 else "update",
                          "data": [{"asks": [[p, q, "0", "1"] for p, q in asks],
                                    "bids": [[p, q, "0", "1"] for p, q in bids], "ts": str(NOW),
                                    "checksum": checksum, "seqId": index + 1, "prevSeqId": index or -1}]})
            for index, (bids, asks, checksum) in enumerate(book_updates(count, 400, okx_checksum))]


def checked_book_rate(venue_name: str, frames: list[bytes], rounds: int = 3) -> float:
    """Book updates per second, every checksum verified: best of `rounds` passes, each from the snapshot."""
    best = float("inf")
    for _ in range(rounds):
        venue = get_venue(venue_name)
        parse = venue.parse
        start = time.perf_counter()
        for frame in frames:
            parse(frame, NOW)
        best = min(best, time.perf_counter() - start)
        books = venue.books  # type: ignore[attr-defined]
        if (books.verified, books.discarded) != (len(frames), 0):
            raise RuntimeError(f"the {venue_name} book frames did not all pass their checksums: "
                               f"{books.verified} verified, {books.discarded} discarded of {len(frames)}")
    return rate(len(frames) - 1, best)
# --- order-book updates (Coinbase level2, Gemini l2, Binance depth) ------------------------------------------

BOOK_DEPTH = 200  # levels per side of the synthetic starting books


def _book_sides(mid: float, step: float) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[f"{mid - step * (i + 1):.2f}", f"{1 + i % 9}.5"] for i in range(BOOK_DEPTH)]
    asks = [[f"{mid + step * (i + 1):.2f}", f"{1 + i % 7}.25"] for i in range(BOOK_DEPTH)]
    return bids, asks


def _changes(i: int, mid: float, step: float) -> list[list[str]]:
    """One change a frame, on either side, within the 20 best levels: most move the top 10 ticks carry."""
    level = (i * 7) % 20
    side, price = ("buy", mid - step * (level + 1)) if i % 2 else ("sell", mid + step * (level + 1))
    return [[side, f"{price:.2f}", "0" if i % 11 == 0 else f"{1 + i % 13}.75"]]


def coinbase_book_frames(count: int) -> tuple[list[bytes], list[bytes]]:
    """(the snapshot, `count` l2updates) of BTC-USD."""
    bids, asks = _book_sides(30000.0, 0.5)
    snapshot = orjson.dumps({"type": "snapshot", "product_id": "BTC-USD", "bids": bids, "asks": asks})
    return [snapshot], [orjson.dumps({"type": "l2update", "product_id": "BTC-USD", "changes": _changes(i, 30000, 0.5),
                                      "time": "2023-11-14T22:13:20.123456Z"}) for i in range(count)]


def gemini_book_frames(count: int) -> tuple[list[bytes], list[bytes]]:
    """(the full book answering the subscription, `count` deltas) of BTCUSD."""
    bids, asks = _book_sides(30000.0, 0.5)
    full = [["buy", p, q] for p, q in bids] + [["sell", p, q] for p, q in asks]
    first = orjson.dumps({"type": "l2_updates", "symbol": "BTCUSD", "changes": full, "trades": [],
                          "auction_events": []})
    return [first], [orjson.dumps({"type": "l2_updates", "symbol": "BTCUSD", "changes": _changes(i, 30000, 0.5)})
                     for i in range(count)]


def binance_partial_depth_frames(count: int) -> list[bytes]:
    """`count` btcusdt@depth20@100ms frames, each the whole top 20 of each side with one size changed."""
    bids, asks = _book_sides(30000.0, 0.01)
    frames = []
    for i in range(count):
        side = bids if i % 2 else asks
        level = side[(i * 7) % 20]
        level[1] = f"{1 + i % 13}.75"
        frames.append(orjson.dumps({"stream": "btcusdt@depth20@100ms",
                                    "data": {"lastUpdateId": 1000 + i, "bids": bids[:20], "asks": asks[:20]}}))
    return frames


def binance_diff_frames(count: int) -> list[bytes]:
    """`count` contiguous BTCUSDT depthUpdate diffs after update id 1000 (the REST snapshot's)."""
    frames = []
    for i in range(count):
        change = _changes(i, 30000.0, 0.01)[0]
        bids, asks = ([change[1:]], []) if change[0] == "buy" else ([], [change[1:]])
        frames.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": NOW + i, "s": "BTCUSDT", "U": 1001 + i, "u": 1001 + i, "b": bids, "a": asks}}))
    return frames


def book_rate(venue_name: str, start, frames: list[bytes], rounds: int = 3) -> float:
    """Book frames/s one core applies (and emits ticks from), best of `rounds`; `start(parser)` puts a fresh
    parser where `frames` follow on, outside the timing."""
    best = float("inf")
    for _ in range(rounds):
        parser = get_venue(venue_name)
        start(parser)
        parse, dumps = parser.parse, orjson.dumps
        ticks = 0
        begin = time.perf_counter()
        for frame in frames:
            parsed = parse(frame, NOW)
            for tick in parsed.ticks:
                dumps(tick.to_json_dict())
            ticks += len(parsed.ticks)
        best = min(best, time.perf_counter() - begin)
        if ticks < len(frames) // 2:
            raise RuntimeError(f"the {venue_name} book benchmark frames made only {ticks} ticks of {len(frames)}")
    return rate(len(frames), best)


def _parse_all(frames: list[bytes]):
    def start(parser) -> None:
        for frame in frames:
            parser.parse(frame, NOW)
    return start


def _binance_rest_snapshot(parser) -> None:
    bids, asks = _book_sides(30000.0, 0.01)
    parser.rest_snapshot("BTC/USDT", {"lastUpdateId": 1000, "bids": bids, "asks": asks}, NOW)




def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def parse_rate(venue_name: str, frames: list[bytes], serialize: bool, rounds: int = 3) -> float:
    """Best of `rounds` passes: the machine is shared, and the best pass is the closest to one free core."""
    parse = get_venue(venue_name).parse
    dumps = orjson.dumps
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for frame in frames:
            parsed = parse(frame, NOW)
            if serialize:
                for tick in parsed.ticks:
                    dumps(tick.to_json_dict())
        best = min(best, time.perf_counter() - start)
    if not all(parse(f, NOW).ticks for f in frames[:100]):
        raise RuntimeError(f"the {venue_name} benchmark frames do not parse into ticks")
    return rate(len(frames), best)


def book_figures(count: int) -> dict[str, float]:
    coinbase_start, coinbase = coinbase_book_frames(count)
    gemini_start, gemini = gemini_book_frames(count)
    return {
        "kraken v2 book updates/s (checksums verified, depth 25)": checked_book_rate(
            "kraken", kraken_book_frames(count)),
        "okx book updates/s (checksums verified, 400 levels)": checked_book_rate("okx", okx_book_frames(count)),
        "coinbase level2 book updates/s (l2update -> book tick, serialized)": book_rate(
            "coinbase", _parse_all(coinbase_start), coinbase),
        "gemini l2 book updates/s (l2_updates delta -> book tick, serialized)": book_rate(
            "gemini", _parse_all(gemini_start), gemini),
        "binance depth20@100ms book updates/s (top-20 frame -> book tick, serialized)": book_rate(
            "binance", _parse_all([]), binance_partial_depth_frames(count)),
        "binance depthUpdate book updates/s (synced diff -> book tick, serialized)": book_rate(
            "binance", _binance_rest_snapshot, binance_diff_frames(count)),
    }


def produce_rate(bootstrap: str, security: KafkaSecuritySettings, frames: list[bytes]) -> float:
    from clients.kafka import create_topics
    from ingestion.producer import TickProducer, Topics

    topics = Topics(*(f"bench-{time.time_ns()}-{name}" for name in ("ticks", "trades", "deadletter")))
    create_topics(bootstrap, security, {topics.ticks: 2, topics.trades: 2, topics.deadletter: 1})
    venue = get_venue("binance")
    with TickProducer(bootstrap, security, topics=topics) as producer:
        producer.partitions(topics.ticks)  # metadata lookup outside the timed loop
        start = time.perf_counter()
        for frame in frames:
            producer.parsed("binance", venue.parse(frame, NOW), frame, NOW)
        producer.flush(120)
        elapsed = time.perf_counter() - start
    if producer.counts.failed:
        raise RuntimeError(f"{producer.counts.failed} ticks were not delivered: {producer.counts.errors}")
    return rate(len(frames), elapsed)


def run(args) -> dict:
    binance = binance_frames(args.frames)
    figures = {
        "binance bookTicker parse frames/s": parse_rate("binance", binance, serialize=False),
        "binance bookTicker parse+serialize frames/s": parse_rate("binance", binance, serialize=True),
        "coinbase ticker parse+serialize frames/s": parse_rate("coinbase", coinbase_frames(args.frames // 4), True),
        "kraken v2 ticker parse+serialize frames/s": parse_rate("kraken", kraken_frames(args.frames // 4), True),
    }
    figures.update(book_figures(args.frames // 10))
    if args.kafka:
        security = load_settings().kafka_security
        figures["binance parse+produce frames/s (given broker)"] = produce_rate(args.kafka, security, binance)
    elif args.broker:
        from ascep.services import start_broker

        broker = start_broker(Path(tempfile.mkdtemp(prefix="ascep-bench-")))
        try:
            rate = produce_rate(broker.address, EMBEDDED, binance)
            figures["binance parse+produce frames/s (embedded broker)"] = rate
        finally:
            broker.stop()
    figures["frames per measurement"] = args.frames
    figures["load average (1 min) during the run"] = round(os.getloadavg()[0], 2)
    return figures
