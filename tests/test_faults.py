"""Fault descriptions and the plan the Jetstream server's connections claim them from."""

from __future__ import annotations

import pytest

from appview.devnet.faults import (
    Disconnect,
    FaultError,
    FaultPlan,
    Malformed,
    Refuse,
    Resend,
    Stall,
    fault_from_json,
    fault_to_json,
)


class Ticks:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "fault",
    [
        Disconnect(after=3, times=2),
        Resend(last=4),
        Resend(from_us=1, to_us=9, times=None),
        Malformed(payload="x", binary=True),
        Stall(seconds=0.5),
        Refuse(seconds=2.0, times=3),
    ],
)
def test_json_round_trip(fault) -> None:
    assert fault_from_json(fault_to_json(fault)) == fault


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "a JSON object"),
        ({"fault": "explode"}, "unknown fault 'explode'"),
        ({"fault": "stall"}, "stall needs 'seconds'"),
        ({"fault": "stall", "seconds": -1}, "must be positive"),
        ({"fault": "stall", "seconds": "1"}, "stall.seconds must be a number"),
        ({"fault": "disconnect", "after": True}, "disconnect.after must be an integer"),
        ({"fault": "disconnect", "after": -2}, "after must be 0 or more"),
        ({"fault": "disconnect", "times": 0}, "times must be at least 1"),
        ({"fault": "disconnect", "after": None}, "must not be null"),
        ({"fault": "disconnect", "color": "red"}, "unknown: color"),
        ({"fault": "resend"}, "needs 'last' or"),
        ({"fault": "resend", "last": 2, "from_us": 1}, "not both"),
        ({"fault": "resend", "from_us": 5, "to_us": 1}, "must not be after"),
        ({"fault": "refuse"}, "refuse needs"),
        ({"fault": "malformed", "binary": "yes"}, "must be a boolean"),
    ],
)
def test_bad_faults_are_refused_with_a_reason(data, reason) -> None:
    with pytest.raises(FaultError, match=reason):
        fault_from_json(data)


def test_take_consumes_counted_firings_oldest_first() -> None:
    plan = FaultPlan()
    plan.arm(Stall(seconds=1, times=2))
    plan.arm(Stall(seconds=2))
    assert [plan.take(Stall) for _ in range(4)] == [
        Stall(seconds=1, times=2),
        Stall(seconds=1, times=2),
        Stall(seconds=2),
        None,
    ]
    assert plan.take(Disconnect) is None and plan.armed_count == 0


def test_unlimited_faults_stay_until_cleared_and_clearing_changes_the_version() -> None:
    plan = FaultPlan()
    plan.arm(Malformed(times=None))
    version = plan.version
    for _ in range(5):
        assert plan.take(Malformed) == Malformed(times=None)
    assert plan.version == version
    plan.clear()
    assert plan.version != version and plan.armed() == []


def test_refusal_window_expires_with_time_and_counts_limit_it() -> None:
    ticks = Ticks()
    plan = FaultPlan(monotonic=ticks)
    plan.arm(Refuse(seconds=5))
    assert plan.refuse_connection() and plan.refuse_connection()
    ticks.now += 5
    assert not plan.refuse_connection()
    plan.arm(Refuse(seconds=5, times=1))
    assert plan.refuse_connection() and not plan.refuse_connection()


def test_arm_checks_python_built_faults_too() -> None:
    with pytest.raises(FaultError):
        FaultPlan().arm(Stall(seconds=0))
