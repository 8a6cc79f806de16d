"""The per-member write limit: at most ``per_minute`` writes by one DID in any 60
seconds (a sliding window, so a burst at a minute's end and another at the next
minute's start do not add up to twice the limit). Only writes that reach the PDS count:
one refused by the validator or the read models costs nothing."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque

from appview.clock import Clock
from appview.writes.errors import RateLimited

WINDOW_US = 60_000_000
# DIDs remembered at most; the least recently seen go first (each holds at most
# ``per_minute`` timestamps, so memory stays bounded whatever DIDs write)
MAX_MEMBERS = 50_000


class WriteLimiter:
    """Thread-safe; one per process (each web process counts its own writes)."""

    def __init__(self, per_minute: int, clock: Clock, *, max_members: int = MAX_MEMBERS) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self.per_minute = per_minute
        self._clock = clock
        self._max_members = max_members
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, deque[int]] = OrderedDict()

    def take(self, did: str) -> None:
        """Count one write by ``did``, or raise ``RateLimited`` (counting nothing)."""
        now = self._clock.now_us()
        with self._lock:
            times = self._seen.get(did)
            if times is None:
                times = deque()
                self._seen[did] = times
            self._seen.move_to_end(did)
            while times and times[0] <= now - WINDOW_US:
                times.popleft()
            if len(times) >= self.per_minute:
                wait_us = times[0] + WINDOW_US - now
                retry_after = max(1, math.ceil(wait_us / 1_000_000))
                raise RateLimited(
                    f"You have written {self.per_minute} times in the last minute, the"
                    f" most this forum accepts; try again in {retry_after} s.",
                    retry_after=retry_after)
            times.append(now)
            while len(self._seen) > self._max_members:
                self._seen.popitem(last=False)

    def remembered(self) -> int:
        """How many members' windows are held (bounded by ``max_members``)."""
        with self._lock:
            return len(self._seen)
