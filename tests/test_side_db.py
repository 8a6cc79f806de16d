"""The side tables' database (appview/side_db.py), the same contract on both backends: a
transaction commits on exit and rolls back on an exception; ``SideDatabase`` keeps its
PostgreSQL connections for the next transaction (one server process, not one a call),
replaces one the server dropped, never keeps one that broke, serves threads at once and
closes what it keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from appview.settings import Settings
from appview.side_db import SideDatabase, side_transaction
from tests.conftest import Backend
from tests.web_forum import settings_for

FORUM = "did:plc:forumforumforumforumforu"


@pytest.fixture
def settings(backend: Backend) -> Settings:
    made = settings_for(backend, FORUM)
    with side_transaction(made) as execute:
        execute("CREATE TABLE IF NOT EXISTS side_test (k TEXT PRIMARY KEY, v INTEGER)", ())
    return made


@pytest.fixture
def side(settings: Settings) -> Iterator[SideDatabase]:
    made = SideDatabase(settings)
    try:
        yield made
    finally:
        made.close()


def rows(side: SideDatabase) -> list[tuple[object, ...]]:
    with side.transaction() as execute:
        return execute("SELECT k, v FROM side_test ORDER BY k", ())


def server_process(side: SideDatabase, settings: Settings) -> object:
    """Which server process ran the transaction (PostgreSQL); None on SQLite."""
    if not settings.is_postgres:
        return None
    with side.transaction() as execute:
        return execute("SELECT pg_backend_pid()", ())[0][0]


def test_a_transaction_commits_and_one_that_raises_rolls_back(side: SideDatabase) -> None:
    with side.transaction() as execute:
        execute("INSERT INTO side_test (k, v) VALUES (?, ?)", ("a", 1))
    with pytest.raises(RuntimeError), side.transaction() as execute:
        execute("INSERT INTO side_test (k, v) VALUES (?, ?)", ("b", 2))
        raise RuntimeError("after a write")
    # a statement the database refuses: rolled back, and the next transaction works
    with pytest.raises((psycopg.Error, Exception)), side.transaction() as execute:
        execute("INSERT INTO side_test (k, v) VALUES (?, ?)", ("a", 3))
    assert rows(side) == [("a", 1)]


def test_postgresqls_connections_are_kept_and_a_dropped_one_replaced(
        side: SideDatabase, settings: Settings) -> None:
    first = server_process(side, settings)
    assert server_process(side, settings) == first
    if not settings.is_postgres:
        return
    # the server ends the kept connection (a restart, an administrator)
    with psycopg.connect(settings.event_log_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    replaced = server_process(side, settings)
    assert replaced not in (None, first)
    assert server_process(side, settings) == replaced


def test_a_connection_that_broke_in_a_transaction_is_not_kept(
        side: SideDatabase, settings: Settings) -> None:
    if not settings.is_postgres:
        assert rows(side) == []
        return
    pid = server_process(side, settings)
    with pytest.raises(psycopg.OperationalError), side.transaction() as execute:
        with psycopg.connect(settings.event_log_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        execute("SELECT 1", ())
    assert server_process(side, settings) != pid


def test_threads_each_get_a_connection_and_close_ends_the_kept_ones(
        side: SideDatabase, settings: Settings) -> None:
    inside = threading.Barrier(3)
    seen: list[object] = []

    def work(key: str) -> None:
        with side.transaction() as execute:
            seen.append(execute("SELECT pg_backend_pid()", ())[0][0]
                        if settings.is_postgres else key)
            inside.wait(timeout=10)  # all three transactions open at once
            # (then the writes: SQLite takes its write lock one transaction at a time)
            execute("INSERT INTO side_test (k, v) VALUES (?, ?)", (key, 1))

    threads = [threading.Thread(target=work, args=(k,)) for k in "xyz"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 3 and [r[0] for r in rows(side)] == ["x", "y", "z"]
    if settings.is_postgres:
        kept = set(seen)
        side.close()
        with psycopg.connect(settings.event_log_url) as admin:
            alive = {r[0] for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(kept),))}
        assert alive == set()
        # closed is not broken: the next transaction opens a connection again
        assert rows(side)
