"""How fast the dashboard answers, and how soon a write to Redis reaches hundreds of subscribed WebSockets.

On a fresh embedded Redis and a dashboard child process, both written to by the job's RedisSink:
1. API: N stored signals; median milliseconds of /api/signals (limit 100 and 1000), /api/prices, /api/stats.
2. Live: --clients WebSocket clients with mixed subscriptions (docs/live-protocol.md), held by one child
   process (asyncio), while this process writes --rate ticks/s through RedisSink.write_prices (batches of
   BATCH ticks, as the job's sink writes them) and a signal state every SIGNAL_EVERY_S (new cross-exchange,
   triangular and rule signals, and closes of earlier ones) for --seconds. Tick ts and signal detected_at
   are the write time, so latency = when a client received it - when it was written to Redis.
   Checked, not assumed: every client got every signal state its subscription matches and nothing else;
   no price_update names a venue:symbol twice or one the client did not ask for; price_updates per client
   stay at most one per PRICE_FLUSH_S.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from ascep.services import start_dashboard, start_redis
from core.clock import now_ms
from core.contracts.signal import route_of, signal_id
from core.contracts.tick import Tick
from core.subscriptions import PriceSubscription, SignalFacts, SignalSubscription, parse_request

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from flink_jobs.sinks.redis_sink import RedisSink

VENUES = ("binance", "kraken", "okx", "coinbase", "bybit", "gemini", "bitstamp", "binance_us")
SYMBOLS = tuple(f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC",
                                             "BCH", "ATOM", "UNI", "XLM", "ETC", "FIL", "APT", "ARB", "OP", "NEAR"))
SIGNAL_EVERY_S = 0.05
BATCH = 100  # ticks a write_prices call
FLUSH_S = 0.2  # dashboard.live.PRICE_FLUSH_S (not imported: it imports Django)
DRAIN_S = 2.0  # after the writes, for the last updates to arrive
MAX_AGE_MS = 60_000  # tick ages are counted in 1 ms bins up to this


def add_arguments(parser) -> None:
    parser.add_argument("--signals", type=int, default=10_000, help="signals stored before the API is timed")
    parser.add_argument("--repeats", type=int, default=20, help="requests per API endpoint (the median is reported)")
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients in the live phase")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the live phase")
    parser.add_argument("--rate", type=int, default=10_000, help="ticks/s written in the live phase")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="whether the clients offer permessage-deflate, as browsers do (the server then "
                             "compresses every message for each client)")


def cross_signal(rng: random.Random, event_time: int, detected_at: int) -> dict:
    buy, sell = rng.sample(VENUES, 2)
    symbol = rng.choice(SYMBOLS)
    price = rng.uniform(1, 100_000)
    legs = [{"venue": buy, "symbol": symbol, "side": "buy", "price": price},
            {"venue": sell, "symbol": symbol, "side": "sell", "price": price * 1.002}]
    return {"id": signal_id("cross_exchange", route_of(legs), event_time), "type": "cross_exchange", "legs": legs,
            "profit_bps": round(rng.lognormvariate(1.0, 1.0), 4), "size": round(rng.uniform(0.01, 5), 4),
            "event_time": event_time, "updated_at": event_time, "closed_at": None, "status": "open",
            "detected_at": detected_at}


def triangular_signal(rng: random.Random, event_time: int, detected_at: int) -> dict:
    venue = rng.choice(VENUES)
    a, b = rng.sample(SYMBOLS, 2)
    cross = f"{b.split('/')[0]}/{a.split('/')[0]}"
    legs = [{"venue": venue, "symbol": a, "side": "buy", "price": 100.0},
            {"venue": venue, "symbol": cross, "side": "buy", "price": 0.5},
            {"venue": venue, "symbol": b, "side": "sell", "price": 50.2}]
    return {"id": signal_id("triangular", route_of(legs), event_time), "type": "triangular", "legs": legs,
            "profit_bps": round(rng.lognormvariate(1.0, 1.0), 4), "event_time": event_time, "updated_at": event_time,
            "status": "open", "detected_at": detected_at}


def rule_signal(rng: random.Random, event_time: int, detected_at: int) -> dict:
    key = rng.choice(SYMBOLS) + (f"@{rng.choice(VENUES)}" if rng.random() < 0.5 else "")
    return {"id": signal_id("rule", ("spike", "PRICE_SPIKE", key), event_time), "type": "rule", "legs": [],
            "profit_bps": 0.0, "event_time": event_time, "updated_at": event_time, "status": "open",
            "detected_at": detected_at, "rule_id": "spike", "name": "PRICE_SPIKE", "key": key}


def a_signal(rng: random.Random, event_time: int, detected_at: int) -> dict:
    """Six in ten cross-exchange, two triangular, two partitioned rule signals."""
    make = rng.choices((cross_signal, triangular_signal, rule_signal), (6, 2, 2))[0]
    return make(rng, event_time, detected_at)


def closed(signal: dict, at: int, detected_at: int) -> dict:
    return {**signal, "status": "closed", "closed_at": at, "updated_at": at, "detected_at": detected_at}


def median_ms(connection: http.client.HTTPConnection, path: str, repeats: int) -> float:
    """Median time of GET `path`, response body read, over one kept-alive connection."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        times.append((time.perf_counter() - started) * 1000)
        if response.status >= 400:
            raise RuntimeError(f"GET {path}: HTTP {response.status} {response.reason}")
    return statistics.median(times)


def get_json(base: str, path: str) -> dict:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def api_figures(base: str, sink: RedisSink, rng: random.Random, count: int, repeats: int) -> dict:
    start = now_ms() - count * 10
    started = time.perf_counter()
    for first in range(0, count, 1000):
        sink.write_signals([cross_signal(rng, start + i * 10, start + i * 10 + 3)
                            for i in range(first, min(first + 1000, count))])
    seeding_s = time.perf_counter() - started
    sink.write_prices([Tick(v, s, 100.0, 100.1, 1.0, 1.0, now_ms()) for v in VENUES for s in SYMBOLS], 0, 0)
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        return {
            "signals_stored": count,
            "seed_signals_per_s": count / seeding_s,
            "api_signals_limit_100_ms": median_ms(connection, "/api/signals?limit=100", repeats),
            "api_signals_limit_1000_ms": median_ms(connection, "/api/signals?limit=1000", repeats),
            "api_prices_ms": median_ms(connection, "/api/prices", repeats),
            "api_stats_ms": median_ms(connection, "/api/stats", max(3, repeats // 4)),
            "api_health_ms": median_ms(connection, "/api/health", repeats),
        }
    finally:
        connection.close()


# ---- the clients --------------------------------------------------------------------------------------------

def subscriptions(rng: random.Random, count: int) -> list[list[dict]]:
    """Each client's requests. A mix: the page (everything), symbol watchers, venue desks, signal-only
    clients with a minimum profit, single-quote tickers."""
    def page():
        return [{"kind": "subscribe_prices"}, {"kind": "subscribe_signals"}]

    def watcher():
        symbols = rng.sample(SYMBOLS, rng.randint(1, 3))
        return [{"kind": "subscribe_prices", "symbols": symbols}, {"kind": "subscribe_signals", "symbols": symbols}]

    def desk():
        venue = rng.choice(VENUES)
        return [{"kind": "subscribe_prices", "venues": [venue]},
                {"kind": "subscribe_signals", "types": ["cross_exchange", "triangular"], "venues": [venue],
                 "min_profit_bps": rng.choice([0, 2, 5])}]

    def signals_only():
        types = rng.sample(["cross_exchange", "triangular", "rule"], rng.randint(1, 3))
        return [{"kind": "subscribe_signals", "types": types, "min_profit_bps": rng.choice([1, 3, 10])}]

    def ticker():
        return [{"kind": "subscribe_prices", "symbols": [rng.choice(SYMBOLS)], "venues": [rng.choice(VENUES)]}]

    kinds = rng.choices((page, watcher, desk, signals_only, ticker), (10, 30, 20, 25, 15), k=count)
    return [kind() for kind in kinds]


@dataclass
class Listener:
    """What one client received, checked against what it asked for."""

    prices: PriceSubscription | None
    signals: SignalSubscription | None
    price_messages: int = 0
    first_price_ms: float = 0.0
    last_price_ms: float = 0.0
    duplicates: int = 0  # a venue:symbol twice in one price_update
    stray_ticks: int = 0  # a tick it did not ask for
    dropped: int = 0  # what its last price_update said it had lost
    states: dict = field(default_factory=dict)  # (id, updated_at) of each signal state received -> when


@dataclass
class Tally:
    """All clients together: price latencies and the tick age histogram."""

    newest_tick_ms: list = field(default_factory=list)  # a price_update's newest tick: its delivery, not its wait
    tick_age: list = field(default_factory=lambda: [0] * (MAX_AGE_MS + 1))  # every tick's age, 1 ms bins
    errors: list = field(default_factory=list)


def take(listener: Listener, tally: Tally, text: str | bytes) -> None:
    received = time.time() * 1000
    message = orjson.loads(text)
    kind = message["kind"]
    if kind == "price_update":
        ticks = message["data"]
        listener.price_messages += 1
        listener.first_price_ms = listener.first_price_ms or received
        listener.last_price_ms = received
        listener.dropped = message["dropped"]
        keys = {(t["venue"], t["symbol"]) for t in ticks}
        listener.duplicates += len(ticks) - len(keys)
        wanted = listener.prices
        listener.stray_ticks += sum(1 for t in ticks if wanted is None or not wanted.matches(t))
        ages = tally.tick_age
        for t in ticks:
            ages[min(MAX_AGE_MS, max(0, int(received - t["ts"])))] += 1
        tally.newest_tick_ms.append(received - max(t["ts"] for t in ticks))
    elif kind in ("arbitrage_signal", "rule_signal"):
        signal = message["data"]
        listener.states[signal["id"], signal["updated_at"]] = received
    elif kind == "error":
        tally.errors.append(message["error"])


async def one_client(url: str, origin: str, compression: str | None, requests: list[dict], listener: Listener,
                     tally: Tally, subscribed: asyncio.Semaphore, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, origin=origin, compression=compression, open_timeout=120, max_size=None,
                       ping_interval=None) as socket:
        for request in requests:
            await socket.send(json.dumps(request))
            while json.loads(await socket.recv())["kind"] != "subscribed":
                pass
        subscribed.release()
        reader = asyncio.ensure_future(_read(socket, listener, tally))
        await stop.wait()
        reader.cancel()


async def _read(socket, listener: Listener, tally: Tally) -> None:
    async for text in socket:
        take(listener, tally, text)


def clients_process(url: str, origin: str, compression: str | None, plans: list[list[dict]],
                    conn: Connection) -> None:
    """The child process that holds the clients: says "ready" once all are subscribed, reads on until told to stop,
    then sends back what it checked against the signal states the parent wrote."""
    asyncio.run(_clients(url, origin, compression, plans, conn))


async def _clients(url: str, origin: str, compression: str | None, plans: list[list[dict]],
                   conn: Connection) -> None:
    import gc

    import psutil

    loop = asyncio.get_running_loop()
    tally = Tally()
    listeners = []
    for requests in plans:
        parsed = [parse_request(json.dumps(r)) for r in requests]
        listeners.append(Listener(next((p for p in parsed if isinstance(p, PriceSubscription)), None),
                                  next((p for p in parsed if isinstance(p, SignalSubscription)), None)))
    subscribed, stop = asyncio.Semaphore(0), asyncio.Event()
    tasks = []
    for i, (requests, listener) in enumerate(zip(plans, listeners)):
        tasks.append(asyncio.ensure_future(one_client(url, origin, compression, requests, listener, tally, subscribed,
                                                      stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.2)  # a few hundred a second: no queue of handshakes
    for _ in plans:
        await asyncio.wait_for(subscribed.acquire(), 300)
    gc.freeze()  # what was set up is not garbage: the collector need not walk it each pass
    me = psutil.Process()
    cpu_before = me.cpu_times()
    for listener in listeners:  # only what comes from now on is counted
        listener.states.clear()
        listener.price_messages = 0
        listener.first_price_ms = 0.0
    tally.newest_tick_ms.clear()
    tally.tick_age = [0] * (MAX_AGE_MS + 1)
    conn.send("ready")
    written = await loop.run_in_executor(None, conn.recv)  # the signal states written, once the writes are done
    cpu = me.cpu_times()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(summary(listeners, tally, written, cpu.user + cpu.system - cpu_before.user - cpu_before.system))


def summary(listeners: list[Listener], tally: Tally, written: list[tuple[dict, float]], cpu_s: float) -> dict:
    """`written`: each signal state and when it was written (epoch ms): a close's published document keeps the
    detected_at of the open state, so that cannot time it."""
    import numpy as np

    facts = [((s["id"], s["updated_at"]), at, SignalFacts.of(s)) for s, at in written]
    missing = unexpected = expected_total = 0
    latencies, rates = [], []
    for listener in listeners:
        wanted = listener.signals
        expected = {state: at for state, at, f in facts if wanted is not None and wanted.matches(f)}
        expected_total += len(expected)
        missing += len(expected.keys() - listener.states.keys())
        unexpected += len(listener.states.keys() - expected.keys())
        latencies.extend(received - expected[state] for state, received in listener.states.items()
                         if state in expected)
        if listener.price_messages > 1:
            rates.append((listener.price_messages - 1) / ((listener.last_price_ms - listener.first_price_ms) / 1000))
    signal_ms = np.asarray(latencies or [np.nan])
    newest = np.asarray(tally.newest_tick_ms or [np.nan])
    ages = np.asarray(tally.tick_age)
    cumulative = np.cumsum(ages) / max(1, ages.sum())
    return {
        "signal_states_matched": expected_total, "signal_states_missing": missing,
        "signal_states_unexpected": unexpected,
        "signal_latency_p50_ms": float(np.percentile(signal_ms, 50)),
        "signal_latency_p99_ms": float(np.percentile(signal_ms, 99)),
        "signal_latency_max_ms": float(np.max(signal_ms)),
        "price_updates_received": sum(listener.price_messages for listener in listeners),
        "price_updates_per_client_per_s_max": max(rates, default=0.0),
        "price_update_newest_tick_p50_ms": float(np.percentile(newest, 50)),
        "price_update_newest_tick_p99_ms": float(np.percentile(newest, 99)),
        "ticks_received": int(ages.sum()),
        "tick_age_p50_ms": float(np.searchsorted(cumulative, 0.50)),
        "tick_age_p99_ms": float(np.searchsorted(cumulative, 0.99)),
        "price_duplicates": sum(listener.duplicates for listener in listeners),
        "price_strays": sum(listener.stray_ticks for listener in listeners),
        "prices_dropped_told": sum(listener.dropped for listener in listeners),
        "errors": len(tally.errors),
        "clients_cpu_s": cpu_s,
    }


# ---- the writer ---------------------------------------------------------------------------------------------

def write_live(sink: RedisSink, rng: random.Random, seconds: float,
               rate: int) -> tuple[list[tuple[dict, float]], int, float]:
    """Ticks at `rate` in batches of BATCH, and a signal state every SIGNAL_EVERY_S; returns the states written
    with when (epoch ms), the ticks written and the seconds it took."""
    keys = [(v, s) for v in VENUES for s in SYMBOLS]
    states: list[tuple[dict, float]] = []
    open_signals: list[dict] = []
    ticks = 0
    started = time.monotonic()
    next_batch = next_signal = started
    while (now := time.monotonic()) < started + seconds:
        if now >= next_signal:
            at = now_ms()
            if open_signals and rng.random() < 0.3:
                state = closed(open_signals.pop(rng.randrange(len(open_signals))), at, at)
            else:
                state = a_signal(rng, at, at)
                open_signals.append(state)
            written_ms = time.time() * 1000
            sink.write_signals([state])
            states.append((state, written_ms))
            next_signal += SIGNAL_EVERY_S
        if now >= next_batch:
            ts = now_ms()
            batch = [Tick(v, s, 100.0, 100.1 + rng.random(), 1.0, 1.0, ts) for v, s in rng.sample(keys, BATCH)]
            sink.write_prices(batch, len(batch), 0)
            ticks += len(batch)
            next_batch += BATCH / rate
        time.sleep(max(0.0, min(next_batch, next_signal) - time.monotonic()))
    return states, ticks, time.monotonic() - started


def cpu_s(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def live_figures(base: str, sink: RedisSink, rng: random.Random, clients: int, seconds: float, rate: int,
                 compression: str | None, dashboard_pid: int, redis_pid: int) -> dict:
    """The CPU each process took over the writes, as a share of one core: the machine has two."""
    import psutil

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    plans = subscriptions(rng, clients)
    child = context.Process(target=clients_process, daemon=True,
                            args=(base.replace("http://", "ws://") + "/ws/live", base, compression, plans, theirs))
    child.start()
    try:
        if not ours.poll(600):
            raise RuntimeError(f"the {clients} clients did not all subscribe within 600 s")
        assert ours.recv() == "ready"
        processes = {"dashboard": psutil.Process(dashboard_pid), "redis": psutil.Process(redis_pid),
                     "writer": psutil.Process()}
        before = {name: cpu_s(process) for name, process in processes.items()}
        states, ticks, took = write_live(sink, rng, seconds, rate)
        time.sleep(DRAIN_S)
        used = {name: cpu_s(process) - before[name] for name, process in processes.items()}
        relay = get_json(base, "/api/health")["live_relay"]
        ours.send(states)
        checked = ours.recv()
    finally:
        child.join(60)
        if child.is_alive():
            child.kill()
    used["clients"] = checked.pop("clients_cpu_s")
    return {
        "clients": clients, "compression": compression or "none", "clients_connected": relay["clients"],
        "seconds": took,
        "ticks_written_per_s": ticks / took, "signal_states_written": len(states), **checked,
        **{f"{name}_cpu_pct_of_a_core": 100 * cpu / took for name, cpu in used.items()},
        "load_average_1min": os.getloadavg()[0],
        "relay_dropped_prices": relay["dropped_prices"], "relay_closed_slow": relay["closed_slow"],
    }


def run(args) -> dict:
    from flink_jobs.sinks.redis_sink import RedisSink

    rng = random.Random(7)
    log_dir = Path(tempfile.mkdtemp(prefix="ascep-bench-dashboard-"))
    redis_server = start_redis(log_dir)
    try:
        # Read as anyone may on `ascep up`'s stack; its accounts database in the benchmark's own folder.
        dashboard = start_dashboard(redis_server.address, log_dir, env={"ASCEP_DASHBOARD__ANONYMOUS_READ": "true",
                                                                      "ASCEP_STATE_DIR": str(log_dir / "state")})
        sink = RedisSink(redis_server.address)
        try:
            return {**api_figures(dashboard.address, sink, rng, args.signals, args.repeats),
                    **live_figures(dashboard.address, sink, rng, args.clients, args.seconds, args.rate,
                                   None if args.compression == "none" else args.compression,
                                   dashboard.proc.pid, redis_server.proc.pid)}
        finally:
            dashboard.stop()
    finally:
        redis_server.stop()
