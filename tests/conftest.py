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
from typing import Any

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


# -- the reference network (tests/reference_network.py) ---------------------------------

@pytest.fixture(scope="session")
def reference_plc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The reference network installed (once, cached in tests/reference/node_modules) and
    its PLC directory running for the whole session. Not installable or not starting: a
    failure under CI=true; elsewhere a skip only when npm itself is missing."""
    from tests.reference_network import ReferencePlc, ReferenceUnavailable, install

    try:
        seconds = install()
        if seconds > 5:
            print(f"\nthe reference network was installed in {seconds:.0f} s")
        plc = ReferencePlc(tmp_path_factory.mktemp("reference-plc"))
    except ReferenceUnavailable as exc:
        if exc.missing_tool and os.environ.get("CI", "").lower() != "true":
            pytest.skip(str(exc))
        pytest.fail(f"the reference network is unavailable: {exc}")
    try:
        yield plc
    finally:
        plc.stop()


@pytest.fixture
def reference_pds(reference_plc: Any, tmp_path: Path) -> Iterator[Any]:
    """A reference PDS of this test's own, on the session's PLC directory."""
    from tests.reference_network import ReferencePds, ReferenceUnavailable

    try:
        pds = ReferencePds(reference_plc.url, tmp_path / "reference")
    except ReferenceUnavailable as exc:
        pytest.fail(f"the reference PDS did not start: {exc}")
    try:
        yield pds
    finally:
        pds.stop()
