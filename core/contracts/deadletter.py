"""The dead-letter record: what was rejected, why, and where it came from (docs/ticks.md)."""
from __future__ import annotations

from typing import Any

import orjson

MAX_DEADLETTER_FRAME_BYTES = 64 * 1024


def deadletter_value(venue: str, reason: str, frame: str | bytes, received_ms: int, source: str | None = None,
                     **where: Any) -> bytes:
    """The raw frame (cut to 64 KiB) with why it was rejected and where it came from
    (`where`: extra fields that locate it, e.g. the job's topic, partition and offset)."""
    raw = frame.encode("utf-8", "replace") if isinstance(frame, str) else frame
    record: dict[str, Any] = {"venue": venue, "reason": reason,
                              "frame": raw[:MAX_DEADLETTER_FRAME_BYTES].decode("utf-8", "replace"),
                              "received_ms": received_ms}
    if source is not None:
        record["source"] = source
    record.update(where)
    return orjson.dumps(record)
