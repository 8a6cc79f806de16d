"""Record keys and commit revs: TIDs read from the devnet clock."""

from __future__ import annotations

import threading

from appview.devnet.clock import DevClock
from events.model import int_to_tid

_MAX_CLOCK_ID = 1023


class TidClock:
    """Hands out strictly increasing TIDs, ``(microseconds << 10) | clock_id``.

    The devnet clock may be shared and frozen, so the timestamp is bumped past the last one
    handed out rather than trusted to move. A fixed ``clock_id`` keeps seeded runs
    reproducible (real hosts pick a random one)."""

    def __init__(self, clock: DevClock, *, clock_id: int = 0) -> None:
        if not 0 <= clock_id <= _MAX_CLOCK_ID:
            raise ValueError(f"clock_id must be in 0..{_MAX_CLOCK_ID}, got {clock_id}")
        self._clock = clock
        self._clock_id = clock_id
        self._last_us = 0
        self._lock = threading.Lock()

    def next_int(self) -> int:
        with self._lock:
            micros = max(self._clock.now_us(), self._last_us + 1)
            self._last_us = micros
            return micros << 10 | self._clock_id

    def next(self) -> str:
        return int_to_tid(self.next_int())
