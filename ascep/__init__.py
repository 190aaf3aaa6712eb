"""The application on top of every layer: the `ascep` CLI, the embedded stack and the benchmarks."""
__version__ = "0.1.0"
