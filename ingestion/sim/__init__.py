"""Simulated markets (pure, seeded) and the runner that streams them live to Kafka."""
from .runner import run

__all__ = ["run"]
