"""What the Lambda runtime gives the handler besides the event."""
from __future__ import annotations


class LambdaContext:
    """The `context` argument, as far as the handler reads it."""

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
