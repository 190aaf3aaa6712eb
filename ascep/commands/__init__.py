"""Subcommands of `ascep`: one module each, whose `add_arguments(parser)` adds its options and sets `func`.

COMMANDS names them with their help lines, so that `ascep --help` needs none of the modules: ascep.cli
imports a command's module only when that command is chosen (ascep/lazy.py). A module imports at its top
what its options need (and the settings); the heavy libraries (PyFlink, Arrow, DuckDB, Kafka, Redis, ...)
are imported in the function that runs. tests/ascep/test_cli_startup.py checks each command's `--help`.
"""

COMMANDS = {
    "analytics": "signal and tick figures over the Parquet lake",
    "bench": "run a benchmark and print its figures",
    "config": "print every setting in force and where it came from (environment, file, running stack, default)",
    "dashboard": "serve the live dashboard and its JSON API",
    "deploy": "build what a deployment needs: the Managed Flink application zip",
    "ingest": "stream ticks into Kafka from a simulated market or a live venue",
    "job": "run the Flink job (local MiniCluster or a remote cluster)",
    "prepare": "create the topics, and the lake's bucket on a fresh S3 store, on services given by address",
    "record": "record a venue's live WebSocket frames to a file, for replay",
    "replay": "replay a JSONL tick file or an exchange recording into Kafka",
    "rules": "add, list, remove, test and backtest CEP rules (docs/rules.md)",
    "up": "run broker, Redis, the Flink job and the dashboard on this machine",
    "users": "add, list and remove the dashboard's users and their API tokens",
}
