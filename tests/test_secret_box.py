"""Sealing session secrets at rest: round trips, bound to their row, rotated keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.auth.secret_box import SecretBox, SecretBoxError, new_key_text, parse_keys

OLD, NEW = parse_keys(new_key_text())[0], parse_keys(new_key_text())[0]


@given(st.binary(max_size=2048), st.text(max_size=80))
def test_what_is_sealed_opens_only_in_its_own_row(plaintext: bytes, row: str) -> None:
    box = SecretBox([NEW])
    sealed = box.seal(plaintext, bound_to=row)
    assert box.open(sealed, bound_to=row) == plaintext
    with pytest.raises(SecretBoxError):
        box.open(sealed, bound_to=row + "x")


def test_a_sealed_value_shows_nothing_and_is_fresh_each_time() -> None:
    box = SecretBox([NEW])
    first, second = box.seal(b"access-token-123", bound_to="r"), box.seal(
        b"access-token-123", bound_to="r")
    assert first != second and "access-token" not in first


def test_tampering_is_found() -> None:
    box = SecretBox([NEW])
    sealed = box.seal(b"secret", bound_to="r")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (flipped, "v2" + sealed[2:], "nonsense"):
        with pytest.raises(SecretBoxError):
            box.open(bad, bound_to="r")


def test_keys_rotate_new_first_and_a_dropped_key_no_longer_opens() -> None:
    sealed_old = SecretBox([OLD]).seal(b"kept", bound_to="r")
    both = SecretBox([NEW, OLD])
    assert both.open(sealed_old, bound_to="r") == b"kept"
    assert SecretBox([NEW]).open(both.seal(b"x", bound_to="r"), bound_to="r") == b"x"
    with pytest.raises(SecretBoxError, match="not configured"):
        SecretBox([NEW]).open(sealed_old, bound_to="r")


@pytest.mark.parametrize(("raw", "problem"), [("not base64!", "base64url"),
                                              ("c2hvcnQ", "bytes")])
def test_unusable_keys_are_named(raw: str, problem: str) -> None:
    with pytest.raises(SecretBoxError, match=problem):
        parse_keys(raw)


def test_several_keys_parse_in_order() -> None:
    one, two = new_key_text(), new_key_text()
    assert [len(k) for k in parse_keys(f"{one}, {two},")] == [32, 32]
    with pytest.raises(SecretBoxError, match="no encryption key"):
        SecretBox([])
