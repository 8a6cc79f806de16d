"""Record rows: the canonical JSON text of string lists, fast path and general path alike;
writing merged rows, new and stored."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from events import collections as c
from projections.apply_records import TABLES, dumps, string_list_json, write_rows
from tests.fakes import open_test_store


def test_language_tags_are_joined_as_canonical_json() -> None:
    assert string_list_json([]) == "[]"
    assert string_list_json(["en", "pt-BR"]) == '["en","pt-BR"]'
    assert string_list_json(['a"b', "é"]) == dumps(['a"b', "é"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.from_regex(r"[A-Za-z0-9_.-]{0,8}", fullmatch=True),
                          st.text(max_size=6)), max_size=5))
def test_string_lists_read_as_dumps_writes_them(items: list[str]) -> None:
    assert string_list_json(items) == dumps(items)


def _membership(n: int, created_at: str) -> dict[str, object]:
    return {"uri": f"at://did:plc:m{n}/{c.MEMBERSHIP}/self", "did": f"did:plc:m{n}",
            "rkey": "self", "rev": f"r{n}", "live_rev": f"r{n}", "deleted": 0, "cid": None,
            "forum_uri": "at://did:plc:f/space.atbb.forum.forum/self", "forum_cid": None,
            "created_at": created_at, "indexed_at": n}


def test_write_rows_updates_the_stored_rows_and_inserts_the_new_ones(backend) -> None:
    spec = TABLES[c.MEMBERSHIP]
    store = open_test_store(backend)
    try:
        first = [_membership(n, "2026-01-01") for n in range(100)]
        with store.transaction() as session:
            write_rows(session, spec, first, stored=set())
        # half of them rewritten, as stored rows, beside 100 new ones
        second = [_membership(n, "2026-02-02") for n in range(50, 200)]
        with store.transaction() as session:
            write_rows(session, spec, second, stored={str(r["uri"]) for r in first})
        with store.read() as session:
            rows = dict(session.query("SELECT did, created_at FROM memberships"))
        assert len(rows) == 200
        assert {rows[f"did:plc:m{n}"] for n in range(50)} == {"2026-01-01"}
        assert {rows[f"did:plc:m{n}"] for n in range(50, 200)} == {"2026-02-02"}
    finally:
        store.close()
