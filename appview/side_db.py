"""Small tables of the appview's own beside the event log (admin tokens, backfill runs,
the DID cache): in the event-log database, so they survive rebuilds of the read models,
on SQLite and PostgreSQL alike. Statements use ``?`` placeholders."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
        with psycopg.connect(settings.event_log_url) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(
                sql.Identifier(settings.database_schema)))

            def run_pg(text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
                cursor = conn.execute(text.replace("?", "%s").encode(), tuple(params))
                return cursor.fetchall() if cursor.description else []

            yield run_pg
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
