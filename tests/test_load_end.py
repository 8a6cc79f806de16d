"""The end of a bulk load: its steps' order, and running them in order or in parallel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from projections.load_end import EndStep, end_steps, recount_steps, run_in_order, run_in_parallel
from projections.readmodel import open_read_models
from projections.schema import (
    BULK_RECOUNTS,
    READ_SIDE_INDEXES,
    RECOUNT_AFTER,
    RECOUNTED_KEYS,
    RECOUNTS_WITHOUT_POSTS,
    SQLITE_RECOUNTS,
    index_name,
    load_dropped_index_statements,
    recount_source_statement,
)
from projections.search_schema import DOCUMENT_INDEX
from tests.conftest import Backend
from tests.fakes import open_test_store

ALL_PENDING: dict[str, str | None] = {name: "at://forum" for name in BULK_RECOUNTS}


def _steps_of_a_private_load() -> list[EndStep]:
    dropped = load_dropped_index_statements(private=True)
    after = [s for s in dropped if index_name(s) in READ_SIDE_INDEXES]
    before = [s for s in dropped if s not in after]
    return end_steps(before, after, ALL_PENDING, dialect="postgresql", shared=True)


def test_every_step_follows_what_it_reads_and_comes_after_it_in_the_list() -> None:
    steps = _steps_of_a_private_load()
    names = [step.name for step in steps]
    by_name = {step.name: step for step in steps}
    for position, step in enumerate(steps):
        assert step.after <= set(names[:position]), step.name
    for name in BULK_RECOUNTS:
        follows = by_name[f"recount {name}"].after
        assert ("rederive" in follows) == (name not in RECOUNTS_WITHOUT_POSTS)
        assert {f"recount {first}" for first in RECOUNT_AFTER.get(name, ())} <= follows
    # the read side's indexes once their tables are final
    assert "recount threads" in by_name["index posts_id"].after
    assert "recount members" in by_name["index members_list"].after
    assert "recount thread_author_counts" in by_name["index thread_author_counts_did"].after
    # the projection's own lookups are back before the posts are re-derived
    assert {"index posts_thread", "index posts_author"} <= by_name["rederive"].after
    assert names[-2:] == ["statistics posts", "statistics"]
    assert by_name["statistics"].after == set(names[:-2])


def test_the_search_documents_index_is_built_apart_first_and_only_statistics_wait() -> None:
    """A private PostgreSQL load builds the GIN index of the search documents (most of
    the search projection's share of a rebuild) in a session of its own while the other
    session re-derives, recounts and builds the rest."""
    dropped = load_dropped_index_statements(private=True)
    after = [s for s in dropped if index_name(s) in READ_SIDE_INDEXES]
    before = [s for s in dropped if s not in after]
    steps = end_steps(before, after, ALL_PENDING, dialect="postgresql", shared=True,
                      apart=[DOCUMENT_INDEX])
    first, *rest = steps
    assert first.name == "index search_docs_document" and first.after == set()
    assert [step.name for step in rest if first.name in step.after] == [
        "statistics posts", "statistics"]
    # the rest as without it
    assert [(step.name, step.after - {first.name}) for step in rest] == [
        (step.name, step.after) for step in _steps_of_a_private_load()]


def test_a_private_postgresql_load_ends_with_the_documents_index(backend: Backend) -> None:
    store = open_test_store(backend)
    try:
        def documents_index() -> object:
            with store.read() as session:
                return session.scalar("SELECT to_regclass('search_docs_document')")

        with store.bulk_load(private=True):
            assert store.loading_privately
            if backend.name == "postgresql":
                assert documents_index() is None
        assert not store.loading_privately
        if backend.name == "postgresql":
            assert documents_index() is not None
    finally:
        store.close()


def test_a_dropped_primary_key_comes_back_after_its_recount_and_before_its_readers(
) -> None:
    dropped = load_dropped_index_statements(private=True)
    after = [s for s in dropped if index_name(s) in READ_SIDE_INDEXES]
    before = [s for s in dropped if s not in after]
    steps = end_steps(before, after, ALL_PENDING, dialect="postgresql", shared=True,
                      keys=list(RECOUNTED_KEYS))
    names = [step.name for step in steps]
    by_name = {step.name: step for step in steps}
    for position, step in enumerate(steps):
        assert step.after <= set(names[:position]), step.name
    for table in RECOUNTED_KEYS:
        assert by_name[f"key {table}"].after == {f"recount {table}"}
    # the boards' and members' recounts read the per-board counts by their key
    assert "key board_author_counts" in by_name["recount boards"].after
    assert "key board_author_counts" in by_name["recount members"].after
    assert {f"key {table}" for table in RECOUNTED_KEYS} <= by_name["statistics"].after
    # a key whose table is not recounted comes back at once
    alone = recount_steps({}, dialect="postgresql", shared=True,
                          keys=["thread_author_counts"])
    assert [(step.name, step.after) for step in alone] == [
        ("rederive", frozenset()), ("key thread_author_counts", frozenset())]
    # even when a recount that reads it is pending: it comes first
    reader = recount_steps({"boards": None}, dialect="postgresql", shared=True,
                           keys=["board_author_counts"])
    assert [step.name for step in reader] == [
        "rederive", "key board_author_counts", "recount boards", "recounts done"]
    for position, step in enumerate(reader):
        assert step.after <= {s.name for s in reader[:position]}, step.name
    # without keys to restore there is no such step
    assert not [step.name for step in _steps_of_a_private_load()
                if step.name.startswith("key ")]


def test_without_pending_recounts_only_the_rederivation_is_left() -> None:
    assert [step.name for step in recount_steps({}, dialect="sqlite", shared=False)] == [
        "rederive"]


def _recording(log: list[tuple[str, str]], lock: threading.Lock,
               name: str) -> Callable[[Any], None]:
    def run(session: Any) -> None:
        with lock:
            log.append(("start", name))
        with lock:
            log.append(("end", name))

    return run


@contextmanager
def _no_session() -> Iterator[Any]:
    yield None


def test_steps_run_in_parallel_only_after_what_they_follow() -> None:
    log: list[tuple[str, str]] = []
    lock = threading.Lock()
    graph = {"a": set(), "b": set(), "c": {"a"}, "d": {"a", "b"}, "e": {"c", "d"},
             "f": set()}
    steps = [EndStep(name, _recording(log, lock, name), frozenset(after))
             for name, after in graph.items()]
    run_in_parallel(_no_session, steps, sessions=3)
    assert sorted(name for kind, name in log if kind == "end") == sorted(graph)
    for name, after in graph.items():
        started = log.index(("start", name))
        assert all(log.index(("end", first)) < started for first in after), name


def test_independent_steps_run_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=10)  # broken if the two never run at once

    def meet(session: Any) -> None:
        both.wait()

    run_in_parallel(_no_session, [EndStep("left", meet), EndStep("right", meet)],
                    sessions=2)


def test_the_first_failure_is_raised_and_what_follows_it_never_runs() -> None:
    ran: list[str] = []

    def fail(session: Any) -> None:
        raise RuntimeError("the index build failed")

    steps = [EndStep("fails", fail),
             EndStep("after it", lambda session: ran.append("after it"),
                     frozenset({"fails"}))]
    with pytest.raises(RuntimeError, match="the index build failed"):
        run_in_parallel(_no_session, steps, sessions=2)
    assert ran == []


def test_a_list_whose_order_breaks_a_dependency_is_refused() -> None:
    steps = [EndStep("b", lambda session: None, frozenset({"a"})),
             EndStep("a", lambda session: None)]
    with pytest.raises(ValueError, match="do not come before it"):
        run_in_order(None, steps)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not come before it"):
        run_in_parallel(_no_session, steps)


def test_a_private_load_leaves_no_copy_of_the_posts_behind(backend) -> None:
    store = open_test_store(backend)
    try:
        with store.bulk_load(private=True), store.transaction() as session:
            for name in BULK_RECOUNTS:
                store.defer_recount(session, name, "at://did:plc:f/space.atbb.forum.forum/self")
        with store.read() as session:
            assert session.scalar("SELECT COUNT(*) FROM pending_recounts") == 0
            if store.dialect == "postgresql":
                left = session.scalar(
                    "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'recount_posts'"
                    " AND schemaname = current_schema()")
            else:
                left = session.scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'recount_posts'")
            assert left == 0
    finally:
        store.close()


def test_sqlites_own_topic_recount_gives_the_rows_of_the_window_one(tmp_path) -> None:
    store = open_read_models(f"sqlite:///{tmp_path}", location=str(tmp_path / "g.sqlite3"))
    t = "2026-01-01T00:00:0{}.000000Z"
    posts = [  # uri, kind, thread, created_at, counted
        ("at://a/p/t1", "topic", "at://a/p/t1", t.format(1), 1),
        ("at://a/p/t2", "topic", "at://a/p/t2", t.format(1), 1),  # no replies
        ("at://a/p/t3", "topic", "at://a/p/t3", t.format(9), 0),  # newer than its reply
        # a tie on created_at: the greater uri wins, a prefix loses to its extension
        ("at://a/p/a", "reply", "at://a/p/t1", t.format(5), 1),
        ("at://a/p/ab", "reply", "at://a/p/t1", t.format(5), 1),
        ("at://b/p/0", "reply", "at://a/p/t1", t.format(4), 1),
        ("at://c/p/x", "reply", "at://a/p/t1", t.format(8), 0),  # not counted
        ("at://c/p/y", "reply", "at://a/p/t3", t.format(2), 1),
    ]
    try:
        with store.transaction() as session:
            session.executemany(
                "INSERT INTO posts (uri, id, did, rkey, rev, kind, thread_uri, created_at,"
                " counted, indexed_at) VALUES (?, ?, 'did:plc:a', 'k', 'r', ?, ?, ?, ?, 0)",
                [(uri, uri, kind, thread, created, counted)
                 for uri, kind, thread, created, counted in posts])
        results = []
        for statements in (BULK_RECOUNTS["threads"], SQLITE_RECOUNTS["threads"]):
            with store.transaction() as session:
                session.execute(recount_source_statement(shared=False))
                for statement in statements:
                    session.execute(statement)
                session.execute("DROP TABLE recount_posts")
                results.append(session.query(
                    "SELECT uri, reply_count, last_reply_uri, last_reply_at, last_activity_at"
                    " FROM posts WHERE kind = 'topic' ORDER BY uri"))
                session.execute("UPDATE posts SET reply_count = -1, last_reply_uri = NULL,"
                                " last_reply_at = NULL, last_activity_at = NULL")
        window, grouped = results
        assert grouped == window
        assert window[0] == ("at://a/p/t1", 3, "at://a/p/ab", t.format(5), t.format(5))
        assert window[1] == ("at://a/p/t2", 0, None, None, t.format(1))
        assert window[2] == ("at://a/p/t3", 1, "at://c/p/y", t.format(2), t.format(9))
    finally:
        store.close()
