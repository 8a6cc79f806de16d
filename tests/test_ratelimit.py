"""Per-client request windows and the headers they answer with."""

from __future__ import annotations

import pytest

from appview.devnet.clock import DevClock
from appview.devnet.ratelimit import RateLimiter

START_US = 1_735_689_600_000_000


def test_a_client_gets_limit_requests_per_window_then_retry_after() -> None:
    clock = DevClock(frozen_us=START_US)
    limiter = RateLimiter(3, 60.0, clock.now_us)
    decisions = [limiter.hit("10.0.0.1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1].headers()
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Policy"] == "3;w=60"
    assert refused["RateLimit-Reset"] == str(START_US // 1_000_000 + 60)
    assert refused["Retry-After"] == "60"
    assert "Retry-After" not in decisions[0].headers()


def test_clients_are_counted_apart_and_windows_reset() -> None:
    clock = DevClock(frozen_us=START_US)
    limiter = RateLimiter(1, 10.0, clock.now_us)
    assert limiter.hit("a").allowed and not limiter.hit("a").allowed
    assert limiter.hit("b").allowed
    clock.advance(10)
    assert limiter.hit("a").allowed


def test_idle_clients_are_forgotten_once_many_are_tracked() -> None:
    clock = DevClock(frozen_us=START_US)
    limiter = RateLimiter(1, 1.0, clock.now_us)
    for i in range(10_001):
        limiter.hit(f"client-{i}")
    assert len(limiter) == 10_001
    clock.advance(2)
    limiter.hit("late")
    assert len(limiter) == 1
    assert not limiter.hit("late").allowed


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (1, 0.0)])
def test_nonsense_limits_are_refused(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="limit"):
        RateLimiter(limit, window, DevClock().now_us)
