"""`events.moments`: times typed by people, and the position the log had reached."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.model import IdentityChanged, Logged
from events.moments import describe, from_micros, parse_moment, position_at, to_micros


def test_times_as_people_type_them() -> None:
    at = to_micros(datetime(2026, 12, 1, 14, 5, tzinfo=UTC))
    assert parse_moment("2026-12-01T14:05Z") == at
    assert parse_moment("2026-12-01T14:05") == at
    assert parse_moment("2026-12-01T15:05+01:00") == at
    assert parse_moment("2026-12-01") == to_micros(datetime(2026, 12, 1, tzinfo=UTC))
    assert describe(at) == "2026-12-01 14:05:00 UTC"
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_moment("Tuesday 14:05")


@given(st.integers(0, 2**52))
def test_micros_round_trip(micros: int) -> None:
    assert to_micros(from_micros(micros)) == pytest.approx(micros, abs=1)


def _at(position: int, observed: int) -> Logged:
    return Logged(position, IdentityChanged("did:plc:a", None, position, None, "jetstream",
                                            None, observed))


def test_the_log_at_a_moment_is_its_prefix_before_the_first_later_event() -> None:
    log = [_at(1, 10), _at(2, 20), _at(4, 30), _at(5, 25), _at(6, 40)]
    assert position_at(log, 5) == 0
    assert position_at(log, 20) == 2
    assert position_at(log, 26) == 2  # position 5, seen at 25, came after one seen at 30
    assert position_at(log, 30) == 5
    assert position_at(log, 99) == 6
