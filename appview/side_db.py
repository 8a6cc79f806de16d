"""Small tables of the appview's own beside the event log (admin tokens, backfill runs,
the DID cache): in the event-log database, so they survive rebuilds of the read models,
on SQLite and PostgreSQL alike. Statements use ``?`` placeholders."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from appview.settings import Settings

Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def autoincrement_key(settings: Settings) -> str:
    """The column type of an integer key the database numbers itself."""
    return "BIGSERIAL PRIMARY KEY" if settings.is_postgres else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"


@contextmanager
def side_transaction(settings: Settings) -> Iterator[Execute]:
    """One transaction on the event-log database: yields ``execute(sql, params) -> rows``
    (rows of a statement that returns none: an empty list); commits on exit."""
    if settings.is_postgres:
        with _pg_connect(settings, autocommit=False) as conn:
            yield _pg_execute(conn)
        return
    path = Path(settings.event_log_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30)
    try:
        with connection:
            def run_sqlite(text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
                return connection.execute(text, tuple(params)).fetchall()

            yield run_sqlite
    finally:
        connection.close()


class SideDatabase:
    """The side tables' database for a long-lived service (sessions, reader state,
    avatars, admin tokens, reports: some are read on every page a member views), with
    its connections kept: on PostgreSQL a new connection costs milliseconds (a server
    process each; 3.2-4.1 ms here against 0.3 ms for a transaction on a kept one), so
    up to ``keep`` idle connections wait for the next transaction. On SQLite a
    connection per transaction is as cheap as keeping one: :func:`side_transaction`.

    No thread of its own: a connection is handed to one transaction at a time, and
    whatever is idle is closed by :meth:`close` (or with the object). A kept connection
    the server has since dropped (a restart) is replaced when the next transaction
    starts; one that breaks during a transaction is not kept."""

    def __init__(self, settings: Settings, *, keep: int = 4) -> None:
        self._settings = settings
        self._keep = keep
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Execute]:
        """As :func:`side_transaction`: ``execute(sql, params) -> rows``, committed on
        exit, rolled back on an exception."""
        if not self._settings.is_postgres:
            with side_transaction(self._settings) as execute:
                yield execute
            return
        conn, entered = self._begin()
        try:
            with entered:  # its exit commits, or rolls back on an exception
                yield _pg_execute(conn)
        finally:
            self._release(conn)

    def _begin(self) -> tuple[psycopg.Connection[Any], ExitStack]:
        """A connection with a transaction begun on it."""
        while True:
            with self._lock:
                kept = self._idle.pop() if self._idle else None
            conn = kept if kept is not None else _pg_connect(self._settings, autocommit=True)
            entered = ExitStack()
            try:
                entered.enter_context(conn.transaction())
            except psycopg.OperationalError:
                conn.close()
                if kept is None:
                    raise
                continue  # a kept connection the server dropped: the next, or a new one
            return conn, entered

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken:
            return
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections (a transaction under way keeps its own until it
        ends, then it is kept again: close once nothing runs)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _pg_connect(settings: Settings, *, autocommit: bool) -> psycopg.Connection[Any]:
    """A connection to the event-log database, its schema first on the search path."""
    conn = psycopg.connect(settings.event_log_url, autocommit=autocommit)
    conn.execute(sql.SQL("SET search_path TO {}").format(
        sql.Identifier(settings.database_schema)))
    return conn


def _pg_execute(conn: psycopg.Connection[Any]) -> Execute:
    def run_pg(text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor = conn.execute(text.replace("?", "%s").encode(), tuple(params))
        return cursor.fetchall() if cursor.description else []

    return run_pg


def make_side_tables(settings: Settings, statements: Sequence[str]) -> None:
    """Run ``CREATE ... IF NOT EXISTS`` statements once per process; on PostgreSQL under
    the database's DDL lock, as the event log's own tables (processes starting at once
    would otherwise race on the catalog)."""
    with side_transaction(settings) as execute:
        if settings.is_postgres:
            from events.store_postgres import DDL_LOCK_KEY

            execute("SELECT pg_advisory_xact_lock(?)", (DDL_LOCK_KEY,))
        for statement in statements:
            execute(statement, ())
