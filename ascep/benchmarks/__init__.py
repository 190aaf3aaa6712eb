"""Benchmarks: one module per target, each with `add_arguments(parser)` and `run(args) -> dict`.

`ascep bench TARGET` runs one and prints its figures; figures go in the README, never in timed tests.
TARGETS names them with the line `ascep bench --help` shows. A module is imported only when its target is
chosen, and its heavy imports (Arrow, Redis, Kafka, numpy, ...) wait for `run`, so that
`ascep bench TARGET --help` stays light (tests/ascep/test_cli_startup.py).
"""

TARGETS = {
    "arbitrage": "arbitrage detectors: triangular us/tick at 50 vs 1,000 symbols (goal < 20, within 2x), "
                 "cross/direct ticks/s, and ticks/s with 20-level books vs top of book only",
    "cep": "CEP rule engine: ticks/s per core with N rules over M symbols (goal >= 300,000)",
    "dashboard": "dashboard API response times over stored signals, and Redis write -> WebSocket latency for "
                 "N subscribed clients (default 500) at 10,000 ticks/s",
    "lake": "ticks/s written to the Parquet lake (with a flush per batch), and the time of analytics and of "
            "signal outcomes over it",
    "parsers": "venue parser throughput per core (Binance bookTicker, Coinbase and Kraken tickers; book updates "
               "of Kraken and OKX with checksums, Coinbase, Gemini and Binance), optionally into Kafka",
    "pipeline": "ticks/s through Kafka -> Flink -> Redis, and p50/p99 tick->signal latency",
    "soak": "the embedded stack under simulated load for N minutes: read vs produced, lag, p99 tick->signal, "
            "memory per process and its slope",
    "sim": "simulated crypto and FX markets: ticks generated per second, unpaced (goal > 20,000/s)",
}
