"""Benchmarks: one module per target, each with `DESCRIPTION`, `add_arguments(parser)` and `run(args) -> dict`.

`ascep bench TARGET` runs one and prints its figures; figures go in the README, never in timed tests.
"""
