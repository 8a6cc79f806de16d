"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

``backend`` parametrises a test over both. The PostgreSQL half needs a server on
127.0.0.1:5432 (or ``TEST_POSTGRES_URL``); without one it skips with the reason, except in
CI (``CI=true``), where a missing server fails the run instead of skipping it.
Each PostgreSQL test gets its own schema, dropped afterwards, so tests never see each
other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURE = FIXTURES / "network-capture"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG_URL)


def _postgres_unavailable_reason() -> str | None:
    import psycopg

    try:
        with psycopg.connect(postgres_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the server is the reason to skip
        return f"PostgreSQL at {postgres_url()} is not reachable: {exc}"
    return None


_pg_reason: list[str | None] = []


def require_postgres() -> None:
    """Skip (on a developer's machine) or fail (in CI) when PostgreSQL is unreachable."""
    if not _pg_reason:
        _pg_reason.append(_postgres_unavailable_reason())
    reason = _pg_reason[0]
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Backend:
    """Where a test's storage lives. ``url`` is what ``DATABASE_URL`` would say;
    ``schema`` is the PostgreSQL schema set aside for this test (None on SQLite)."""

    name: str
    url: str
    schema: str | None
    tmp: Path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
        return
    require_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgresql", postgres_url(), schema, tmp_path)
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            # Generations of this test live in schemas named after it.
            rows = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (schema + "%",)
            ).fetchall()
            for (name,) in rows:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
