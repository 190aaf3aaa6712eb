"""Wall-clock time in the unit every contract uses: epoch milliseconds."""
from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
