"""Datetimes in their stored form: the fast path for the common shape agrees with parsing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.timestamps import normalize_datetime, parse_datetime


def test_common_forms_become_canonical_utc() -> None:
    assert normalize_datetime("2026-11-02T10:20:30.123Z") == "2026-11-02T10:20:30.123000Z"
    assert normalize_datetime("2026-11-02T10:20:30Z") == "2026-11-02T10:20:30.000000Z"
    assert normalize_datetime("2026-11-02T10:20:30+01:00") == "2026-11-02T09:20:30.000000Z"
    assert normalize_datetime("2026-11-02 10:20:30z") == "2026-11-02T10:20:30.000000Z"


def test_impossible_or_zoneless_datetimes_are_none() -> None:
    for value in ("2026-02-30T00:00:00Z", "2026-11-02T24:00:00Z", "2026-11-02T10:60:00Z",
                  "2026-11-02T10:20:60Z", "0000-01-01T00:00:00Z", "2026-11-02T10:20:30",
                  "٢٠٢٦-11-02T10:20:30Z", "", None, 17):
        assert normalize_datetime(value) is None, value


_digits = st.integers(min_value=0, max_value=99).map(lambda n: f"{n:02d}")
_shaped = st.builds(
    lambda year, month, day, hour, minute, second, fraction: (
        f"{year:04d}-{month}-{day}T{hour}:{minute}:{second}{fraction}Z"),
    st.integers(min_value=0, max_value=9999), _digits, _digits, _digits, _digits, _digits,
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,7}", fullmatch=True)),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_shaped, st.text(max_size=30)))
def test_the_fast_path_agrees_with_parsing(value: str) -> None:
    expected = parse_datetime(value) if value else None
    assert normalize_datetime(value) == expected
