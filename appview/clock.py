"""Time as the appview sees it. Everything that needs "now" takes a Clock, so scenarios can
run hours or days ahead without sleeping (the devnet's DevClock satisfies the same port)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_us(self) -> int:
        """Unix time in microseconds."""
        ...


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000
