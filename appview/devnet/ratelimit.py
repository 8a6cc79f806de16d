"""Per-client fixed-window request limits, answered with the headers real PDSes send."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

# Forget idle clients once this many are tracked, so a long run cannot grow without bound.
_PRUNE_ABOVE = 10_000


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # unix seconds (devnet clock) when the window ends
    retry_after_s: int
    policy: str

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": self.policy,
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter:
    """``limit`` requests per ``window_s`` per client; the window starts at a client's
    first request. Time is read from ``now_us`` (the devnet clock), so a scenario can jump
    past a window instead of sleeping through it."""

    def __init__(self, limit: int, window_s: float, now_us: Callable[[], int]) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"need limit >= 1 and window_s > 0, got {limit}, {window_s}")
        self.limit = limit
        self.window_us = int(window_s * 1_000_000)
        self._now_us = now_us
        self._windows: dict[str, tuple[int, int]] = {}  # client -> (window start, count)
        self._lock = threading.Lock()

    def hit(self, client: str) -> RateDecision:
        now = self._now_us()
        with self._lock:
            start, count = self._windows.get(client, (now, 0))
            if now >= start + self.window_us:
                start, count = now, 0
            allowed = count < self.limit
            if allowed:
                count += 1
            self._windows[client] = (start, count)
            if len(self._windows) > _PRUNE_ABOVE:
                self._prune(now)
        end = start + self.window_us
        return RateDecision(
            allowed=allowed,
            limit=self.limit,
            remaining=self.limit - count,
            reset_s=math.ceil(end / 1_000_000),
            retry_after_s=max(1, math.ceil((end - now) / 1_000_000)),
            policy=f"{self.limit};w={math.ceil(self.window_us / 1_000_000)}",
        )

    def __len__(self) -> int:
        """How many clients are tracked."""
        with self._lock:
            return len(self._windows)

    def _prune(self, now: int) -> None:
        expired = [c for c, (start, _) in self._windows.items() if now >= start + self.window_us]
        for client in expired:
            del self._windows[client]
