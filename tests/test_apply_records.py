"""Record rows: the canonical JSON text of string lists, fast path and general path alike."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.apply_records import dumps, string_list_json


def test_language_tags_are_joined_as_canonical_json() -> None:
    assert string_list_json([]) == "[]"
    assert string_list_json(["en", "pt-BR"]) == '["en","pt-BR"]'
    assert string_list_json(['a"b', "é"]) == dumps(['a"b', "é"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.from_regex(r"[A-Za-z0-9_.-]{0,8}", fullmatch=True),
                          st.text(max_size=6)), max_size=5))
def test_string_lists_read_as_dumps_writes_them(items: list[str]) -> None:
    assert string_list_json(items) == dumps(items)
