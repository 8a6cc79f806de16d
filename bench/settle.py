"""Let the machine settle between a benchmark's phases.

A phase that writes a lot leaves work behind it: dirty pages the kernel writes back
later, and on PostgreSQL the WAL a checkpoint must flush (the ingest bench appends
~800 MB of it before it projects). Whichever phase runs next would pay for that debt on
the clock, and how much depends on what ran before, not on the code measured. Before
each timed phase the benches call :func:`settle`, as pgbench checkpoints before a run.
"""

from __future__ import annotations

import os

import psycopg
from psycopg import sql


def settle(database_url: str | None) -> None:
    """Flush the OS's dirty pages, and checkpoint PostgreSQL when ``database_url`` is a
    PostgreSQL one (the role must be allowed to: superuser or ``pg_checkpoint``)."""
    os.sync()
    url = _postgresql(database_url)
    if url is not None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")


def vacuum(database_url: str | None, schema_prefix: str) -> None:
    """VACUUM (ANALYZE) every table of the schemas named ``schema_prefix``... on
    PostgreSQL (nothing on SQLite): a log just appended to leaves autovacuum's insert
    vacuum to come, which may then run through a benchmark's first timed phase; a running
    appview's log was vacuumed long ago (pgbench vacuums before its runs for the same
    reason)."""
    url = _postgresql(database_url)
    if not schema_prefix or url is None:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname LIKE %s",
            (schema_prefix.replace("_", r"\_") + "%",),
        ).fetchall()
        for schema, table in tables:
            conn.execute(
                sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, table))
            )


def _postgresql(database_url: str | None) -> str | None:
    """``database_url`` when it is a PostgreSQL one."""
    if database_url is not None and database_url.startswith(("postgresql:", "postgres:")):
        return database_url
    return None
