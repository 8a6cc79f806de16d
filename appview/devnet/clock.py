"""The devnet's clock: real time by default, or a controllable one for scenarios that jump
hours or days ahead (Jetstream time_us, TIDs, revs, createdAt all read it)."""

from __future__ import annotations

import threading
import time


class DevClock:
    """Microsecond clock that never goes backwards. ``offset_us`` shifts it (tests move
    it days ahead); ``frozen_us`` pins it (deterministic seeding)."""

    def __init__(self, *, offset_us: int = 0, frozen_us: int | None = None) -> None:
        self._lock = threading.Lock()
        self._offset_us = offset_us
        self._frozen_us = frozen_us
        self._last = 0

    def now_us(self) -> int:
        with self._lock:
            base = self._frozen_us if self._frozen_us is not None else time.time_ns() // 1000
            value = max(base + self._offset_us, self._last + 1)
            self._last = value
            return value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset_us += int(seconds * 1_000_000)

    def freeze(self, at_us: int) -> None:
        with self._lock:
            self._frozen_us = at_us
            self._offset_us = 0

    def unfreeze(self) -> None:
        with self._lock:
            self._frozen_us = None
