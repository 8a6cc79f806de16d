"""Integers from requests parsed strictly: ASCII digits within a range, or BadParameter,
whatever the string."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.params import MAX_INT, BadParameter, is_digits, parse_int, query_int


@pytest.mark.parametrize("raw", [
    "9223372036854775808", "9" * 5000, "-1", "abc", "1.5", "1e3", " 1", "1 ", "+1", "1_0",
    "١٢", "²", "0x10", "", "--1", str(MAX_INT + 1),
])
def test_anything_but_digits_in_range_is_refused(raw: str) -> None:
    with pytest.raises(BadParameter, match="offset must be a whole number from 0 to"):
        parse_int("offset", raw)


def test_digits_in_range_are_taken() -> None:
    assert parse_int("offset", "0") == 0
    assert parse_int("offset", "007") == 7
    assert parse_int("limit", str(MAX_INT)) == MAX_INT
    assert parse_int("page", "1", minimum=1) == 1
    with pytest.raises(BadParameter, match="page must be a whole number from 1"):
        parse_int("page", "0", minimum=1)
    assert query_int({}, "offset") is None and query_int({"offset": ""}, "offset") is None
    assert query_int({"offset": "12"}, "offset") == 12


def test_a_long_value_is_not_echoed_whole() -> None:
    with pytest.raises(BadParameter) as caught:
        parse_int("offset", "9" * 5000)
    assert len(str(caught.value)) < 120


def test_is_digits_means_ascii_digits() -> None:
    assert is_digits("123") and is_digits("1" * 10)
    assert not is_digits("1" * 11)  # beyond the default width
    assert is_digits("1" * 18, 18)
    for bad in ("", "²", "١", "1a", " 1", "-1"):
        assert not is_digits(bad)


@given(st.text(), st.integers(0, 5), st.integers(5, 2**70))
def test_whatever_the_string_the_answer_is_in_range_or_badparameter(
        raw: str, minimum: int, maximum: int) -> None:
    try:
        value = parse_int("n", raw, minimum=minimum, maximum=maximum)
    except BadParameter:
        return
    assert minimum <= value <= maximum and str(value) == raw.lstrip("0").rjust(1, "0")
