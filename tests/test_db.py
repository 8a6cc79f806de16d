"""The read-model database layer: locations, sessions, tracking, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from projections.db import PAGE_SIZE, copy_types, numbered, placeholders, to_dialect
from projections.readmodel import open_read_models, sqlite_path
from projections.schema import (
    INDEXES,
    LOAD_DROPPED_INDEXES,
    READ_SIDE_INDEXES,
    RECOUNTED_KEYS,
    TABLES,
    index_name,
)
from tests.fakes import open_test_store


def test_placeholders_convert_for_psycopg_and_escape_percent() -> None:
    sql = "SELECT ? WHERE name LIKE 'a%' AND x IN (" + placeholders(2) + ")"
    assert to_dialect(sql, "sqlite") == sql
    assert to_dialect(sql, "postgresql") == (
        "SELECT %s WHERE name LIKE 'a%%' AND x IN (%s, %s)"
    )


def test_placeholders_are_numbered_for_the_raw_postgresql_cursor() -> None:
    sql = "SELECT ? WHERE name LIKE 'a%' AND x IN (" + placeholders(3) + ")"
    assert numbered(sql) == "SELECT $1 WHERE name LIKE 'a%' AND x IN ($2, $3, $4)"
    assert numbered("SELECT 1") == "SELECT 1"
    assert numbered("?") == "$1"


def test_a_literal_percent_reaches_postgresql_unchanged(backend) -> None:
    store = open_test_store(backend)
    try:
        with store.read() as session:
            assert session.scalar("SELECT ? || '%'", ["50"]) == "50%"
    finally:
        store.close()


def test_sqlite_location_is_absolute_or_relative_to_the_url(tmp_path: Path) -> None:
    absolute = tmp_path / "a" / "gen.sqlite3"
    assert sqlite_path("sqlite:///ignored", str(absolute)) == absolute
    assert sqlite_path(f"sqlite:///{tmp_path}", "g2.sqlite3") == tmp_path / "g2.sqlite3"
    assert sqlite_path(f"sqlite:///{tmp_path}/events.sqlite3", "g3.sqlite3") == (
        tmp_path / "g3.sqlite3"
    )


def test_an_unknown_url_scheme_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unsupported read-model url"):
        open_read_models("mysql://x", location="y")


def test_a_new_location_has_every_table_empty_and_no_position(backend) -> None:
    store = open_test_store(backend)
    try:
        assert store.dialect == backend.name
        assert store.row_counts() == dict.fromkeys(TABLES, 0)
        assert store.position("forum") == 0
        assert store.versions() == {}
    finally:
        store.close()


def test_rows_and_position_commit_together_and_a_stale_position_is_refused(backend) -> None:
    store = open_test_store(backend)
    try:
        with store.transaction() as session:
            session.execute("INSERT INTO forum (uri, did, rev, indexed_at) VALUES (?, ?, ?, ?)",
                            ("at://f/c/self", "did:plc:f", "3kaaaaaaaaaa2", 1))
            store.set_version(session, "forum", 3)
            store.track(session, "forum", 10)
        assert store.position("forum") == 10
        assert store.versions() == {"forum": 3}

        with pytest.raises(IntegrityError), store.transaction() as session:
            session.execute("INSERT INTO rejected VALUES (?, ?, ?, ?, ?)",
                            (11, "at://x/y/z", "did:plc:x", "y", "r"))
            store.track(session, "forum", 10)
        assert store.row_counts()["rejected"] == 0
        assert store.position("forum") == 10
    finally:
        store.close()


def test_an_exception_rolls_back_the_whole_transaction(backend) -> None:
    store = open_test_store(backend)
    try:
        with pytest.raises(RuntimeError), store.transaction() as session:
            session.execute("INSERT INTO rejected VALUES (?, ?, ?, ?, ?)",
                            (1, "at://x/y/z", "did:plc:x", "y", "r"))
            store.track(session, "forum", 1)
            raise RuntimeError("boom")
        assert store.row_counts()["rejected"] == 0
        assert store.position("forum") == 0
    finally:
        store.close()


def test_session_helpers_on_both_dialects(backend) -> None:
    store = open_test_store(backend)
    try:
        rows = [(i, f"at://did:plc:x/c/{i}", "did:plc:x", "c", f"reason {i}%")
                for i in range(1, 151)]
        with store.transaction() as session:
            session.upsert("rejected", ("position", "uri", "did", "collection", "reason"), rows,
                           conflict="position", action="NOTHING")
            # an upsert of a few rows takes the small-batch path on PostgreSQL
            session.upsert("rejected", ("position", "uri", "did", "collection", "reason"),
                           [(1, "u", "d", "c", "changed")], conflict="position",
                           action="UPDATE SET reason = excluded.reason")
            session.execute_values(
                "INSERT INTO projection_versions (name, version) VALUES {values}",
                [("a", 1), ("b", 2)],
            )
        with store.read() as session:
            assert session.scalar("SELECT COUNT(*) FROM rejected") == 150
            assert session.scalar("SELECT reason FROM rejected WHERE position = ?", (1,)) == (
                "changed"
            )
            assert session.query_one("SELECT reason FROM rejected WHERE position = ?", (7,)) == (
                "reason 7%",
            )
            assert session.query_dicts(
                "SELECT name, version FROM projection_versions ORDER BY name"
            ) == [{"name": "a", "version": 1}, {"name": "b", "version": 2}]
            assert session.query(
                f"SELECT position FROM rejected WHERE position IN ({placeholders(3)})"
                " ORDER BY position", (3, 2, 999)) == [(2,), (3,)]
    finally:
        store.close()


@pytest.mark.parametrize("count", [3, 150], ids=["few rows", "many rows"])
def test_insert_writes_new_rows_and_refuses_a_key_already_there(backend, count) -> None:
    # many rows take PostgreSQL's COPY path, a few its multi-row VALUES
    store = open_test_store(backend)
    columns = ("position", "uri", "did", "collection", "reason")
    rows = [(i, f"at://did:plc:x/c/{i}", "did:plc:x", "c", f"tab\there, new\nline {i}")
            for i in range(1, count + 1)]
    try:
        with store.transaction() as session:
            session.insert("rejected", columns, rows)
            session.insert("rejected", columns, [])
        with store.read() as session:
            assert session.query(f"SELECT {', '.join(columns)} FROM rejected"
                                 " ORDER BY position") == rows
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"), \
                store.transaction() as session:
            session.insert("rejected", columns, [*rows[1:], (999, "u", "d", "c", "new")])
        with store.read() as session:  # the failed insert left nothing behind
            assert session.scalar("SELECT COUNT(*) FROM rejected") == count
    finally:
        store.close()


def test_a_value_of_an_unexpected_type_is_written_as_its_text(backend) -> None:
    # PostgreSQL COPYs many rows in binary, which wants each column's exact type: a
    # row with an integer where text is due makes it send the batch as text instead
    store = open_test_store(backend)
    columns = ("position", "uri", "did", "collection", "reason")
    rows: list[tuple[object, ...]] = [
        (i, f"at://did:plc:x/c/{i}", "did:plc:x", "c", "why") for i in range(1, 100)]
    rows.append((100, "at://did:plc:x/c/100", "did:plc:x", "c", 42))
    try:
        with store.transaction() as session:
            session.insert("rejected", columns, rows)
            session.upsert("rejected", columns, [(1, "u", "d", "c", 7), *rows[1:]],
                           conflict="position", action="UPDATE SET reason = excluded.reason")
        with store.read() as session:
            assert session.scalar("SELECT COUNT(*) FROM rejected") == 100
            assert session.query("SELECT position, reason FROM rejected"
                                 " WHERE position IN (1, 2, 100) ORDER BY position") == [
                (1, "7"), (2, "why"), (100, "42")]
    finally:
        store.close()


def test_a_read_sees_one_snapshot_while_a_writer_commits(backend) -> None:
    store = open_test_store(backend)
    try:
        written = threading.Event()
        with store.read() as session:
            assert session.scalar("SELECT COUNT(*) FROM rejected") == 0

            def writer() -> None:
                with store.transaction() as other:
                    other.execute("INSERT INTO rejected VALUES (?, ?, ?, ?, ?)",
                                  (1, "at://x/y/z", "did:plc:x", "y", "r"))
                written.set()

            thread = threading.Thread(target=writer)
            thread.start()
            assert written.wait(10)
            thread.join()
            assert session.scalar("SELECT COUNT(*) FROM rejected") == 0
        assert store.row_counts()["rejected"] == 1
    finally:
        store.close()


def test_locations_are_independent(backend) -> None:
    one, two = open_test_store(backend, "g1"), open_test_store(backend, "g2")
    try:
        with one.transaction() as session:
            one.track(session, "forum", 5)
        assert (one.position("forum"), two.position("forum")) == (5, 0)
        assert one.location != two.location
    finally:
        one.close()
        two.close()


def test_reopening_a_location_keeps_its_rows(backend) -> None:
    store = open_test_store(backend)
    with store.transaction() as session:
        store.track(session, "forum", 42)
    store.close()
    again = open_test_store(backend)
    try:
        assert again.position("forum") == 42
    finally:
        again.close()


def test_a_new_sqlite_location_has_large_pages_and_an_old_one_keeps_its_own(
        tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as conn:  # a file made before the page size was chosen
        conn.execute("CREATE TABLE t (x)")
    for name, expected in (("new.sqlite3", PAGE_SIZE), ("old.sqlite3", 4096)):
        store = open_read_models(f"sqlite:///{tmp_path}", location=name)
        try:
            with store.read() as session:
                assert session.scalar("PRAGMA page_size") == expected
                assert session.scalar("PRAGMA journal_mode") == "wal"
                assert session.scalar("SELECT COUNT(*) FROM posts") == 0
        finally:
            store.close()


def test_bulk_loading_skips_sqlite_fsyncs_and_restores_them_after(tmp_path: Path) -> None:
    store = open_read_models(f"sqlite:///{tmp_path}", location="g.sqlite3")
    try:
        with store.transaction() as session:
            assert session.scalar("PRAGMA synchronous") == 1  # NORMAL
        with store.bulk_load(), store.transaction() as session:
            assert session.scalar("PRAGMA synchronous") == 0  # OFF
        with store.transaction() as session:
            assert session.scalar("PRAGMA synchronous") == 1
    finally:
        store.close()


def test_the_end_of_a_sqlite_bulk_load_gives_the_connection_back_as_it_was(
        tmp_path: Path) -> None:
    # the end sorts with helper threads and a small cache (END_CACHE_KIB); what follows
    # the load must get the connection's own settings back
    from projections.db import CACHE_SIZE_KIB
    from projections.readmodel import END_CACHE_KIB

    assert END_CACHE_KIB < CACHE_SIZE_KIB
    store = open_read_models(f"sqlite:///{tmp_path}", location="g.sqlite3")
    try:
        with store.transaction() as session:
            # the build's own setting (ON where SQLite is built with SECURE_DELETE)
            secure = session.scalar("PRAGMA temp.secure_delete")
        for private in (False, True):
            with store.bulk_load(private=private), store.transaction() as session:
                session.execute("INSERT INTO rejected (position, uri, did, collection,"
                                " reason) VALUES (?, 'at://x', 'did:plc:x', 'c', 'r')",
                                (int(private),))
            with store.transaction() as session:
                assert session.scalar("PRAGMA cache_size") == -CACHE_SIZE_KIB
                assert session.scalar("PRAGMA threads") == 0
                assert session.scalar("PRAGMA temp.secure_delete") == secure
        assert store.row_counts()["rejected"] == 2
    finally:
        store.close()


def test_text_columns_compare_byte_wise_on_both_dialects(backend) -> None:
    store = open_test_store(backend)
    try:
        with store.transaction() as session:
            session.executemany("INSERT INTO members (did) VALUES (?)",
                                [("did:web:a",), ("did:web:B",), ("did:web:-",)])
            # byte order; a locale's collation puts '-' and case elsewhere
            assert [did for (did,) in session.query("SELECT did FROM members ORDER BY did")
                    ] == ["did:web:-", "did:web:B", "did:web:a"]
            if store.dialect == "postgresql":
                # every text column, not only those this test sorts by
                assert session.query(
                    "SELECT table_name, column_name, collation_name FROM"
                    " information_schema.columns WHERE table_schema = current_schema()"
                    " AND data_type = 'text' AND table_name = ANY(?)"
                    " AND collation_name IS DISTINCT FROM 'C'", (list(TABLES),)) == []
    finally:
        store.close()


def _journal_mode(store) -> str:
    with store.read() as session:
        return str(session.scalar("PRAGMA journal_mode"))


def test_a_private_sqlite_bulk_load_writes_without_a_journal_then_restores_wal(
        tmp_path: Path) -> None:
    store = open_read_models(f"sqlite:///{tmp_path}", location="g.sqlite3")
    try:
        with store.bulk_load():  # not private: readers may be on it, it stays journaled
            assert _journal_mode(store) == "wal"
        with store.bulk_load(private=True):
            assert _journal_mode(store) == "off"
            with store.transaction() as session:
                session.execute("INSERT INTO rejected (position, uri, did, collection,"
                                " reason) VALUES (1, 'at://x', 'did:plc:x', 'c', 'r')")
        assert _journal_mode(store) == "wal"
        assert store.row_counts()["rejected"] == 1
    finally:
        store.close()


def test_a_private_sqlite_bulk_load_stays_journaled_while_another_connection_is_open(
        tmp_path: Path) -> None:
    store = open_read_models(f"sqlite:///{tmp_path}", location="g.sqlite3")
    other = sqlite3.connect(tmp_path / "g.sqlite3")
    try:
        other.execute("SELECT COUNT(*) FROM posts").fetchone()  # holds the WAL open
        with store.bulk_load(private=True):
            assert _journal_mode(store) == "wal"
            with store.transaction() as session:
                session.execute("INSERT INTO rejected (position, uri, did, collection,"
                                " reason) VALUES (1, 'at://x', 'did:plc:x', 'c', 'r')")
        assert other.execute("SELECT COUNT(*) FROM rejected").fetchone() == (1,)
        assert _journal_mode(store) == "wal"
    finally:
        other.close()
        store.close()


def test_a_failed_private_bulk_load_raises_its_own_error_and_skips_the_end_work(
        backend) -> None:
    store = open_test_store(backend)
    try:
        with pytest.raises(RuntimeError, match="the load failed"), store.bulk_load(
                private=True):
            raise RuntimeError("the load failed")
        # the location is to be discarded: the read-side indexes were not rebuilt
        assert not _index_names(store) & READ_SIDE_INDEXES
        assert not store.bulk_loading
    finally:
        store.close()


def _index_names(store) -> set[str]:
    with store.read() as session:
        if store.dialect == "sqlite":
            rows = session.query("SELECT name FROM sqlite_master WHERE type = 'index'")
        else:
            rows = session.query(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    return {str(name) for (name,) in rows}


def test_bulk_loading_builds_the_read_side_indexes_once_at_its_end(backend) -> None:
    store = open_test_store(backend)
    try:
        every = {index_name(statement) for statement in INDEXES}
        assert every <= _index_names(store)
        with store.bulk_load():
            during = _index_names(store)
            assert not during & READ_SIDE_INDEXES
            assert every - READ_SIDE_INDEXES <= during  # the projections' own lookups
        assert every <= _index_names(store)
    finally:
        store.close()


def test_a_private_bulk_load_keeps_only_the_primary_keys_of_the_posts_and_reactions(
    backend,
) -> None:
    store = open_test_store(backend)
    try:
        every = {index_name(statement) for statement in INDEXES}
        with store.bulk_load(private=True):
            during = _index_names(store)
            assert not during & LOAD_DROPPED_INDEXES
            assert every - LOAD_DROPPED_INDEXES <= during
            # PostgreSQL names a primary key's index TABLE_pkey
            assert {name for name in during if name.startswith(("posts_", "reactions_"))
                    } <= {"posts_pkey", "reactions_pkey"}
        assert every <= _index_names(store)
    finally:
        store.close()


def _primary_keys(store) -> set[str]:
    with store.read() as session:
        if store.dialect == "sqlite":
            return {str(name) for (name,) in session.query(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'index'"
                " AND name LIKE 'sqlite_autoindex_%'")}
        return {str(name) for (name,) in session.query(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'p'"
            " AND connamespace = current_schema()::regnamespace")}


def test_the_recounted_tables_keys_are_those_their_ddl_declares() -> None:
    for table, columns in RECOUNTED_KEYS.items():
        assert f"PRIMARY KEY ({columns})" in TABLES[table], table


def test_a_private_load_drops_the_recounted_tables_keys_on_postgresql_only_and_adds_them_back(
        backend) -> None:
    store = open_test_store(backend)
    try:
        every = _primary_keys(store)
        assert set(RECOUNTED_KEYS) <= every
        with store.bulk_load(private=True):
            during = _primary_keys(store)
        # SQLite cannot drop a primary key; PostgreSQL's recounts refill those tables
        # without theirs and build them after
        dropped = set(RECOUNTED_KEYS) if store.dialect == "postgresql" else set()
        assert during == every - dropped
        assert _primary_keys(store) == every
        with store.bulk_load():  # not private: readers may be on it, keys stay
            assert _primary_keys(store) == every
    finally:
        store.close()


def test_the_change_mark_moves_with_each_committed_write_only(backend) -> None:
    store = open_test_store(backend)
    try:
        before = store.change_mark()
        with store.read() as session:
            session.scalar("SELECT 1")
        assert store.change_mark() == before
        with store.transaction() as session:
            session.execute("DELETE FROM rejected")
        after = store.change_mark()
        assert after != before
        with pytest.raises(RuntimeError), store.transaction() as session:
            raise RuntimeError("rolled back")
        assert store.change_mark() == after
    finally:
        store.close()


def test_query_in_asks_for_any_number_of_values_chunk_by_chunk(backend) -> None:
    store = open_test_store(backend)
    try:
        with store.transaction() as session:
            session.executemany(
                "INSERT INTO rejected (position, uri, did, collection, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                [(n, f"at://did:plc:x/c/{n}", "did:plc:x", "c", "why" if n % 2 else "other")
                 for n in range(1, 12)])
        with store.read() as session:
            sql = "SELECT position FROM rejected WHERE reason = ? AND uri {in}"
            wanted = [f"at://did:plc:x/c/{n}" for n in range(0, 14)]
            found = session.query_in(sql, wanted, ["why"], chunk=4)
            assert sorted(position for (position,) in found) == [1, 3, 5, 7, 9, 11]
            assert session.query_in(sql, [], ["why"]) == []
            # integer keys, and text an array literal would have to quote and escape
            by_position = "SELECT uri FROM rejected WHERE position {in}"
            assert sorted(session.query_in(by_position, [2, 3, 10**12])) == [
                ("at://did:plc:x/c/2",), ("at://did:plc:x/c/3",)]
        with store.transaction() as session:
            odd = 'at://did:plc:x/c/{"a", \\b} NULL'
            session.execute("INSERT INTO rejected (position, uri, did, collection, reason)"
                            " VALUES (99, ?, 'did:plc:x', 'c', 'why')", [odd])
        with store.read() as session:
            assert session.query_in(sql, [odd, "NULL", ""], ["why"]) == [(99,)]
    finally:
        store.close()


def test_copy_types_are_read_off_the_tables_ddl() -> None:
    assert copy_types("rejected", "position, uri, reason") == ("int8", "text", "text")
    assert copy_types("posts", "deleted, indexed_at") == ("int4", "int8")
    # a table or a column the DDL does not declare: no binary COPY
    assert copy_types("rejected", "position, nothing") is None
    assert copy_types("no_such_table", "uri") is None
