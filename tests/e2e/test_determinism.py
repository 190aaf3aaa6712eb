"""The same ticks give the same signals, whatever the partitions, the parallelism or a kill -9 on the way.

One seeded FX market (ingestion/sim/fx.py: planted cross-exchange, triangular and direct opportunities on two
venues and twenty symbols, so each of four partitions of `ticks` gets some; every fourth tick with a 5-level book,
so every detector sizes some signals by walking books kept in keyed state), trades of two of its symbols (in two
partitions of `trades`), one rule that reads three symbols' quotes and one that reads both symbols' trades,
replayed with `ascep replay --max` into a fresh broker and Redis for each configuration of the job (`ascep job
run` with a lake): (partitions, parallelism) = (1, 1), where every detector runs in the tick reader, (4, 1) and
(4, 2), where detection buckets merge the partitions in event-time order, and (4, 2) killed with kill -9 halfway
and restored. The rules are published and a warm-up tick (of a symbol no rule reads) replayed before the job
starts; the market is replayed once the job shows the rules in force. What each run leaves is compared with
what (1, 1) leaves, minus `detected_at` (wall clock):

- Redis: every signal of ascep:signals, as ascep:signal:<id> holds it (its newest state);
- the lake: every distinct state of every signal (the archiver copies each state the job wrote to `signals`; a
  restored job writes some again, so the states are compared as a set per id, not counted). Within each run, the
  state written last per id (a signal's states share its key, hence a partition of `signals`, so the highest
  offset is the last written) must be what Redis holds;
- the lake's trades: each exactly once (a restored job's archiver reads some again and overwrites them), the
  same in every run.

The kill -9 run replays half the market, waits for a checkpoint completed after the job read them, replays the
other half and kills the job's process group as soon as it reads some of it, then restores it (`--restore`):
it reads again what it read after the checkpoint and writes some signal states again.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis

from ascep.services import start_broker, start_redis
from clients.kafka import EMBEDDED, create_topics
from core.contracts.tick import Tick, with_levels
from core.contracts.topics import DEADLETTER_TOPIC, RULES_TOPIC, SIGNALS_TOPIC, TICKS_TOPIC, TRADES_TOPIC
from ingestion.sim.fx import fx_market
from lake.layout import SIGNAL_SCHEMA, TRADE_SCHEMA
from lake.reader import read_kind
from lake.storage import open_lake

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TRADE_COLUMNS = [name for name in TRADE_SCHEMA.names if not name.startswith("kafka_")]

START_MS = 1_700_000_000_000
TICKS = 4_000  # ~20 s of market time at 200 ticks/s
WARMUP = {"venue": "fx_ecn", "symbol": "AUD/USD", "bid": 0.6599, "ask": 0.6601, "ts": START_MS - 1_000}
RULE_ID = "eurjpy"
RULE = ('DEFINE implied AS price("EUR/USD") * price("USD/JPY")\n'
        'IF abs(implied - price("EUR/JPY")) / price("EUR/JPY") * 10000 > 5 THEN EURJPY_MISPRICED')
RULES = {RULE_ID: RULE,
         "offvwap": 'IF abs(price("EUR/USD") - vwap("EUR/USD", 2s)) / price("EUR/USD") * 10000 '
                    '> 1 + volume("USD/JPY", 1s) / 10 THEN EURUSD_OFF_VWAP'}
TRADED = ("EUR/USD", "USD/JPY")  # in partitions 2 and 0 of four
TYPES = {"cross_exchange", "triangular", "direct", "rule"}
IGNORED = {"detected_at", "kafka_partition", "kafka_offset"}  # wall clock; where the lake's copy came from
LAKE_DERIVED = {"symbol", "buy_venue", "sell_venue", "duration_ms"}  # columns the lake works out of the legs
SETTLE_S = 2.0
# The JVM's quick compiler only: a job's start costs about a third less CPU (five starts on two cores), and these
# few thousand ticks need no optimised code. The signals do not depend on it.
JIT = "-XX:TieredStopAtLevel=1"
MODE = os.environ.get("ASCEP_TEST_EXECUTION_MODE", "thread")  # Flink's Python execution mode but for the last job


def market_rows() -> list[dict]:
    """The market's ticks and, after seven in ten of TRADED's, a trade near the mid 1 ms later, before the next
    tick: no trade shares its millisecond, so no producer's watermark record (written where a replay happens to
    pause) can raise its order key."""
    market = fx_market(seed=3, rate=200.0, opportunity_every_s=1.0, opportunity_duration_s=0.3)
    ticks = list(itertools.islice(market.ticks(START_MS), TICKS))
    rng = random.Random(5)
    rows = []
    for index, (tick, after) in enumerate(zip(ticks, ticks[1:])):
        rows.append(booked(tick, rng).to_json_dict() if index % 4 == 0 else tick.to_json_dict())
        if tick.symbol in TRADED and after.ts - tick.ts >= 2 and rng.random() < 0.7:
            price = round((tick.bid + tick.ask) / 2 * (1 + rng.gauss(0, 3e-4)), 6)
            rows.append({"venue": tick.venue, "symbol": tick.symbol, "price": price, "ts": tick.ts + 1,
                         "size": rng.choice([1.0, 2.0, 5.0]), "side": rng.choice(["buy", "sell"]), "trade_id": None})
    return [*rows, ticks[-1].to_json_dict()]


def booked(tick: Tick, rng: random.Random) -> Tick:
    """The tick with a 5-level book a side, so sizes and leg VWAPs come of walking books, and the levels ride
    through the buckets and the keyed state the kill -9 run restores."""
    bids = [(tick.bid * (1 - 2e-5 * k), tick.bid_size if k == 0 else rng.uniform(1e5, 3e6)) for k in range(5)]
    asks = [(tick.ask * (1 + 2e-5 * k), tick.ask_size if k == 0 else rng.uniform(1e5, 3e6)) for k in range(5)]
    return with_levels(tick, bids, asks)


def ticks_in(rows: list[dict]) -> int:
    return sum(1 for row in rows if "bid" in row)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def canonical(signal: dict) -> dict:
    """Without what is absent: a null column, a leg's null vwap (the lake's leg struct has the field always)."""
    out = {k: v for k, v in signal.items() if v is not None and k not in IGNORED}
    if "legs" in out:
        out["legs"] = [{k: v for k, v in leg.items() if v is not None} for leg in out["legs"]]
    return out


def frozen(signal: dict) -> str:
    return json.dumps(signal, sort_keys=True)


class Run:
    """A fresh broker and Redis, topics of `partitions` partitions, and `ascep job run` (one process group)."""

    def __init__(self, workdir: Path, partitions: int, parallelism: int, mode: str) -> None:
        self.workdir, self.partitions, self.mode = workdir, partitions, mode
        self.name = f"(partitions={partitions}, parallelism={parallelism}, {mode})"
        self.logs = workdir / "logs"
        self.lake = str(workdir / "lake")
        self.checkpoints = workdir / ".ascep" / "checkpoints"
        self.broker = start_broker(self.logs)
        self.redis = start_redis(self.logs)
        counts = {TICKS_TOPIC: partitions, TRADES_TOPIC: partitions, SIGNALS_TOPIC: partitions}
        create_topics(self.broker.address, EMBEDDED, {**counts, DEADLETTER_TOPIC: 1, RULES_TOPIC: 1},
                      compacted=(RULES_TOPIC,))
        self.env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
                    "ASCEP_STATE_DIR": str(workdir / ".ascep"), "ASCEP_JOB__PARTITIONS": str(partitions),
                    "ASCEP_JOB__PARALLELISM": str(parallelism), "ASCEP_JOB__EXECUTION_MODE": mode,
                    "ASCEP_JOB__CHECKPOINT_INTERVAL_MS": "1000", "ASCEP_LAKE_OPTIONS__FLUSH_EVERY_S": "1",
                    "JAVA_TOOL_OPTIONS": f"{JIT} {os.environ.get('JAVA_TOOL_OPTIONS', '')}".strip()}
        self.job: subprocess.Popen | None = None
        self.starts = 0
        self.client = redis.Redis.from_url(self.redis.address, decode_responses=True)

    def cli(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run([sys.executable, "-m", "ascep.cli", *args], cwd=self.workdir, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"ascep {' '.join(args)}: {result.stderr}"

    def start_job(self) -> None:
        log = open(self.logs / f"job-{self.starts}.log", "wb")
        self.job = subprocess.Popen(
            [sys.executable, "-m", "ascep.cli", "job", "run", "--kafka", self.broker.address, "--redis",
             self.redis.address, "--lake", self.lake, *(["--restore"] if self.starts else [])],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def kill_job(self) -> None:
        os.killpg(self.job.pid, signal.SIGKILL)  # the CLI, the job's Python and its Flink JVM, all at once
        self.job.wait()

    def replay(self, path: Path) -> None:
        self.cli("replay", str(path), "--max", "--kafka", self.broker.address)

    def replay_in_background(self, path: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "ascep.cli", "replay", str(path), "--max", "--kafka",
                                 self.broker.address], cwd=self.workdir, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=open(self.logs / "replay.log", "wb"))

    def counter(self, name: str) -> int:
        return int(self.client.hget("ascep:counters", name) or 0)

    def wait_for(self, condition, what: str, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.job.poll() is not None:
                raise AssertionError(f"{self.name}: the job exited with {self.job.returncode} waiting for {what}; "
                                     f"see {self.logs}")
            result = condition()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}; see {self.logs}")

    def prepare(self, warmup: Path) -> None:
        """Before the job starts: the warm-up tick (its symbol is not one a rule reads) and the rules."""
        self.replay(warmup)
        for rule_id, text in RULES.items():
            self.cli("rules", "add", "--kafka", self.broker.address, "--id", rule_id, "--text", text)

    def wait_ready(self) -> None:
        """The job up, the warm-up tick read and the rules in force: the rule engine starts with the first tick it
        sees and shows its rules in ascep:rules:stats, so the rules apply to every tick of the market."""
        self.wait_for(lambda: self.counter("ticks") >= 1 and set(self.client.hkeys("ascep:rules:stats")) == set(RULES),
                      "the job up, the warm-up tick read and the rules in force", timeout=240)

    def wait_checkpoint_after(self, since: float) -> None:
        def taken() -> bool:
            return any(m.stat().st_mtime > since for m in self.checkpoints.glob("*/chk-*/_metadata"))
        self.wait_for(taken, "a checkpoint completed after the first half was read", timeout=60)

    def redis_signals(self) -> dict[str, dict]:
        out = {}
        for signal_id in self.client.zrange("ascep:signals", 0, -1):
            doc = self.client.get(f"ascep:signal:{signal_id}")
            if doc is not None:
                out[signal_id] = canonical(json.loads(doc))
        return out

    def lake_signals(self) -> tuple[dict[str, frozenset[str]], dict[str, dict], int]:
        """Per id: its distinct states, and the state written last; and the number of rows."""
        rows = read_kind(open_lake(self.lake), "signals").to_pylist()
        states: dict[str, set[str]] = {}
        last: dict[str, tuple[int, dict]] = {}
        for row in rows:
            state = canonical(row)
            states.setdefault(row["id"], set()).add(frozen(state))
            if row["id"] not in last or row["kafka_offset"] > last[row["id"]][0]:
                last[row["id"]] = (row["kafka_offset"], state)
        return ({i: frozenset(s) for i, s in states.items()}, {i: state for i, (_, state) in last.items()},
                len(rows))

    def lake_tick_count(self) -> int:
        return read_kind(open_lake(self.lake), "ticks", ["ts"]).num_rows

    def lake_trades(self) -> list[tuple]:
        """Every trade row the lake holds, without where it was read (the partitions differ between runs)."""
        rows = read_kind(open_lake(self.lake), "trades", TRADE_COLUMNS).to_pylist()
        return sorted(tuple(row[name] for name in TRADE_COLUMNS) for row in rows)

    def settled(self, ticks: int, trades: int) -> dict:
        """Once the job read every tick and trade: Redis and the lake, when the lake holds every tick and every
        signal Redis holds, and two reads SETTLE_S apart agree."""
        self.wait_for(lambda: self.counter("ticks") >= ticks and self.counter("trades") >= trades,
                      f"{ticks} ticks and {trades} trades read")

        def read():
            in_redis = self.redis_signals()
            states, last, rows = self.lake_signals()
            lake_trades = self.lake_trades()
            complete = self.lake_tick_count() == ticks and len(lake_trades) == trades and set(last) == set(in_redis)
            return {"redis": in_redis, "lake_states": states, "lake_last": last, "lake_rows": rows,
                    "lake_trades": lake_trades} if complete else None

        previous = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            current = read()
            if current is not None and current == previous:
                counters = self.client.hgetall("ascep:counters")
                return {**current, "counters": {k: int(v) for k, v in counters.items()}}
            previous = current
            time.sleep(SETTLE_S)
        raise AssertionError(f"{self.name}: the signals did not settle in Redis and the lake within 90 s; "
                             f"last read: {previous and {k: len(v) for k, v in previous.items() if k != 'lake_rows'}}")

    def reader_pids(self) -> set[int]:
        """The processes the tick readers' Python runs in, from the names they report their latencies under
        (ascep:latency:job:read:<host>:<pid>:<n>)."""
        return {int(key.split(":")[-2]) for key in self.client.scan_iter("ascep:latency:job:read:*")}

    def close(self) -> None:
        if self.job is not None and self.job.poll() is None:
            self.kill_job()
        if self.client is not None:
            self.client.close()
            self.client = None
            self.redis.stop()
            self.broker.stop()


def describe(signal: dict) -> str:
    legs = " ".join(f"{leg['side']}:{leg['venue']}:{leg['symbol']}" for leg in signal.get("legs", []))
    return f"{signal.get('type')} {signal.get('rule_id') or legs} at {signal.get('event_time')}"


def shown(field: str, value):
    """A field for a diff: the legs by their prices only (the id already names their venues and symbols)."""
    return [leg["price"] for leg in value] if field == "legs" and value else value


def diff_signals(want: dict[str, dict], got: dict[str, dict], limit: int = 8) -> list[str]:
    """Which ids only one side has, and for the ids both have, the fields that differ."""
    lines = []
    for label, ids, side in (("missing", sorted(set(want) - set(got)), want),
                             ("unexpected", sorted(set(got) - set(want)), got)):
        if ids:
            more = f"; ... {len(ids) - limit} more" if len(ids) > limit else ""
            lines.append(f"  {len(ids)} {label}: " + "; ".join(f"{i} ({describe(side[i])})" for i in ids[:limit])
                         + more)
    changed = sorted(i for i in set(want) & set(got) if want[i] != got[i])
    differing = Counter((want.get(i) or got[i])["type"] for i in set(want) ^ set(got) | set(changed))
    if differing:
        lines.insert(0, f"  ids that differ, by type: {dict(sorted(differing.items()))}; the same: "
                        f"{sorted(TYPES - set(differing)) or 'none'}")
    if changed:
        lines.append(f"  {len(changed)} of the {len(set(want) & set(got))} ids both hold differ:")
    for signal_id in changed[:limit]:
        mine, theirs = want[signal_id], got[signal_id]
        fields = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        lines.append(f"    {signal_id} ({describe(mine)}): "
                     + ", ".join(f"{k} {shown(k, mine.get(k))!r} -> {shown(k, theirs.get(k))!r}" for k in fields))
    if len(changed) > limit:
        lines.append(f"    ... and {len(changed) - limit} more")
    return lines


def brief(state: str) -> str:
    signal = json.loads(state)
    prices = "/".join(str(leg["price"]) for leg in signal.get("legs", []))
    return f"{signal['status']}@{signal['updated_at']} {signal['profit_bps']} bps [{prices}]"


def diff_states(want: dict[str, frozenset[str]], got: dict[str, frozenset[str]], here: str, there: str,
                limit: int = 8) -> list[str]:
    """Per id, the states only one side wrote (status@updated_at, profit, leg prices)."""
    lines = []
    for signal_id in sorted(set(want) | set(got)):
        mine, theirs = want.get(signal_id, frozenset()), got.get(signal_id, frozenset())
        if mine != theirs:
            some = json.loads(next(iter(mine or theirs)))
            lines.append(f"    {signal_id} ({describe(some)}): {len(mine)} states in {here}, {len(theirs)} in {there}; "
                         f"only in {here} {sorted(map(brief, mine - theirs))}, "
                         f"only in {there} {sorted(map(brief, theirs - mine))}")
    if not lines:
        return []
    return [f"  {len(lines)} of {len(set(want) | set(got))} ids differ:", *lines[:limit],
            *([f"    ... and {len(lines) - limit} more"] if len(lines) > limit else [])]


def compare(baseline: tuple[str, dict], other: tuple[str, dict]) -> list[str]:
    (base_name, base), (name, found) = baseline, other
    problems = []
    redis_diff = diff_signals(base["redis"], found["redis"])
    if redis_diff:
        problems.append(f"Redis, {name} against {base_name}:\n" + "\n".join(redis_diff))
    states_diff = diff_states(base["lake_states"], found["lake_states"], base_name, name)
    if states_diff:
        problems.append(f"lake states, {name} against {base_name}:\n" + "\n".join(states_diff))
    if base["lake_trades"] != found["lake_trades"]:
        problems.append(f"lake trades, {name} against {base_name}: "
                        f"{len(set(found['lake_trades']) ^ set(base['lake_trades']))} differ")
    return problems


def within_run(name: str, found: dict) -> list[str]:
    """Redis and the lake's last state per id, on what the lake keeps of a signal."""
    columns = set(SIGNAL_SCHEMA.names) - LAKE_DERIVED
    lines = diff_signals({i: {k: v for k, v in s.items() if k in columns} for i, s in found["redis"].items()},
                         {i: {k: v for k, v in s.items() if k in columns} for i, s in found["lake_last"].items()})
    return [f"{name}: the lake's last state against Redis:\n" + "\n".join(lines)] if lines else []


def summary(name: str, found: dict, timing: str) -> str:
    types = Counter(s["type"] for s in found["redis"].values())
    counters = {k: v for k, v in found["counters"].items()
                if k in ("ticks", "trades", "detect:late_ticks", "rules:late_ticks")}
    return (f"{name}: {len(found['redis'])} signals {dict(sorted(types.items()))}, "
            f"{sum(map(len, found['lake_states'].values()))} distinct states in {found['lake_rows']} lake rows, "
            f"counters {counters}; {timing}")


def test_signals_are_the_same_for_every_partitioning_parallelism_and_a_kill_9(tmp_path):
    rows = market_rows()
    warmup = write_jsonl(tmp_path / "warmup.jsonl", [WARMUP])
    whole = write_jsonl(tmp_path / "market.jsonl", rows)
    # split where event time moves on: the first half's closing watermark record promises its newest time + 1
    half = next(i for i in range(len(rows) // 2, len(rows)) if rows[i]["ts"] > rows[i - 1]["ts"])
    first, second = (write_jsonl(tmp_path / f"{n}.jsonl", part) for n, part in (("first", rows[:half]),
                                                                                  ("second", rows[half:])))
    total, trades, first_ticks = 1 + ticks_in(rows), len(rows) - ticks_in(rows), 1 + ticks_in(rows[:half])
    # (partitions, parallelism, kill, Python execution mode): the kill -9 in process mode, with worker processes
    configurations = [(1, 1, False, MODE), (4, 1, False, MODE), (4, 2, False, MODE), (4, 2, True, "process")]
    results: list[tuple[str, dict]] = []
    report = []
    runs: list[Run] = []

    def open_run(partitions: int, parallelism: int, kill: bool, mode: str) -> Run:
        run = Run(tmp_path / f"p{partitions}x{parallelism}{'-kill' if kill else ''}", partitions, parallelism, mode)
        runs.append(run)
        run.prepare(warmup)
        run.start_job()
        return run

    def check(run: Run, kill: bool) -> dict:
        if not kill:
            run.replay(whole)
            return run.settled(total, trades)
        run.replay(first)
        run.wait_for(lambda: run.counter("ticks") >= first_ticks, "the first half read")
        run.wait_checkpoint_after(time.time())
        # the second half under way when the job dies: the restored job reads again what it read after that
        # checkpoint, and writes again the signal states it wrote meanwhile
        rest = run.replay_in_background(second)
        run.wait_for(lambda: run.counter("ticks") > first_ticks, "the job reading the second half")
        run.kill_job()
        assert rest.wait(60) == 0, f"{run.name}: the replay of the second half failed; see {run.logs}"
        run.start_job()
        found = run.settled(total, trades)
        if run.mode == "process":  # in worker processes, not in a pool inside the launching `ascep job run`
            pids = run.reader_pids()
            assert pids and run.job.pid not in pids, f"{run.name}: the readers ran in {pids}, the launcher is " \
                                                     f"{run.job.pid}"
        return found

    try:
        # Each job starts while the one before it is checked: a job's start is most of a configuration's time.
        upcoming = open_run(*configurations[0])
        for index, (partitions, parallelism, kill, mode) in enumerate(configurations):
            run, started = upcoming, time.monotonic()
            run.wait_ready()
            ready = time.monotonic()
            if index + 1 < len(configurations):
                upcoming = open_run(*configurations[index + 1])
            checked = time.monotonic()
            found = check(run, kill)
            run.close()
            name = f"({partitions}, {parallelism}, {mode}{', kill -9 + restore' if kill else ''})"
            results.append((name, found))
            report.append(summary(name, found, f"waited {ready - started:.0f} s for the job, "
                                               f"{time.monotonic() - checked:.0f} s replay to settled"))
            print(report[-1])
            if index == 0:
                types = {s["type"] for s in found["redis"].values()}
                assert types == TYPES, f"the input must give every type of signal, got {types}"
                fired = {s["rule_id"] for s in found["redis"].values() if s["type"] == "rule"}
                assert fired == set(RULES), f"every rule must fire, got {fired}"
                walked = {s["type"] for s in found["redis"].values() if any("vwap" in leg for leg in s.get("legs", ()))}
                assert walked == TYPES - {"rule"}, f"every detector must size some signal by a book, got {walked}"
    finally:
        for run in runs:
            run.close()

    problems = [p for name, found in results for p in within_run(name, found)]
    problems += [p for other in results[1:] for p in compare(results[0], other)]
    assert not problems, "\n".join(report) + "\n\n" + "\n\n".join(problems)
