"""TIDs from the devnet clock."""

from __future__ import annotations

import re

import pytest

from appview.devnet.clock import DevClock
from appview.devnet.tid import TidClock
from events.model import tid_to_int

FROZEN_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z


def test_tids_are_thirteen_sortable_characters_of_the_clock_time() -> None:
    clock = DevClock(frozen_us=FROZEN_US)
    tid = TidClock(clock, clock_id=5).next()
    assert re.fullmatch(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}", tid)
    value = tid_to_int(tid)
    assert value & 1023 == 5
    assert value >> 10 == FROZEN_US


def test_tids_strictly_increase_on_a_frozen_shared_clock() -> None:
    clock = DevClock(frozen_us=FROZEN_US)
    a, b = TidClock(clock), TidClock(clock)
    tids = [a.next() if i % 2 else b.next() for i in range(200)]
    mine = tids[1::2]
    assert mine == sorted(mine) and len(set(mine)) == len(mine)


def test_tids_never_go_back_when_the_clock_is_frozen_earlier() -> None:
    clock = DevClock(frozen_us=FROZEN_US)
    tids = TidClock(clock)
    first = tids.next()
    clock.freeze(FROZEN_US - 10_000_000)
    assert tids.next() > first


def test_same_frozen_clock_and_clock_id_give_the_same_sequence() -> None:
    def run() -> list[str]:
        tids = TidClock(DevClock(frozen_us=FROZEN_US), clock_id=77)
        return [tids.next() for _ in range(20)]

    assert run() == run()


@pytest.mark.parametrize("clock_id", [-1, 1024])
def test_clock_id_out_of_range_is_refused(clock_id: int) -> None:
    with pytest.raises(ValueError, match="clock_id"):
        TidClock(DevClock(), clock_id=clock_id)
