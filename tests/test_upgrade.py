"""Upgrades: the databases an earlier appview left (tests/fixtures/upgrade, made by
make.sh there with the code of the commit it names) open with today's code on both
backends. The log's tables gain what they lack in place, nothing is lost (events, admin
tokens, backfill runs), and read models of an older projection version keep serving
until the writer has rebuilt them into a new generation, equal to a fresh build."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from appview.bootstrap import Services, bootstrap
from appview.settings import Settings
from appview.writer import WriterDuties
from events.model import originator_of
from projections.forum import ForumProjection
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.rebuild_support import append_lines, current_versions
from tests.test_consumer import dump

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "upgrade"
COMMIT = "8a8ad89"
# the schema name the PostgreSQL dump was made with (make.sh)
DUMPED_SCHEMA = "atbbfixture8a8ad89"


def fixture_facts() -> dict[str, str]:
    text = (FIXTURES / f"{COMMIT}.txt").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def forum_lines() -> list[str]:
    text = gzip.decompress((FIXTURES / f"{COMMIT}-forum.jsonl.gz").read_bytes())
    return text.decode().splitlines()


def restore(backend: Backend, forum_did: str) -> Settings:
    """The earlier appview's databases, restored where this test keeps its own."""
    data_dir = backend.tmp / "old"
    if backend.name == "sqlite":
        data_dir.mkdir()
        with tarfile.open(FIXTURES / f"{COMMIT}-sqlite.tar.gz") as archive:
            archive.extractall(data_dir, filter="data")
        return Settings(data_dir=data_dir, forum_did=forum_did)
    assert backend.schema is not None
    dump_sql = gzip.decompress((FIXTURES / f"{COMMIT}-postgresql.sql.gz").read_bytes())
    script = (f'DROP SCHEMA IF EXISTS "{backend.schema}" CASCADE;\n'
              + dump_sql.decode().replace(DUMPED_SCHEMA, backend.schema))
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", backend.url],
                   input=script.encode(), check=True, stdout=subprocess.DEVNULL)
    return Settings(data_dir=data_dir, database_url=backend.url,
                    database_schema=backend.schema, forum_did=forum_did)


def logged(services: Services) -> list[tuple[int, tuple[str, int], bool]]:
    return [(item.position, originator_of(item.event), getattr(item.event, "valid", True))
            for item in services.event_log.read(0, 100_000)]


def wait_for_generation(services: Services, generation: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while services.read_models.live_generation() != generation:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the rebuild never switched"
        time.sleep(0.1)


def test_the_fixture_is_small_and_of_an_older_projection_version() -> None:
    for name in (f"{COMMIT}-sqlite.tar.gz", f"{COMMIT}-postgresql.sql.gz"):
        assert (FIXTURES / name).stat().st_size < 100_000
    with tarfile.open(FIXTURES / f"{COMMIT}-sqlite.tar.gz") as archive:
        names = archive.getnames()
    assert "./events.sqlite3" in names and "./readmodels/gen-1.sqlite3" in names
    # what makes the upgrade rebuild: today's forum projection is newer
    assert ForumProjection.VERSION > 2


def test_an_earlier_appviews_databases_open_migrate_and_lose_nothing(
        backend: Backend) -> None:
    facts = fixture_facts()
    settings = restore(backend, facts["forum_did"])
    services = bootstrap(settings)
    fresh = bootstrap(Settings(
        data_dir=backend.tmp / "fresh", forum_did=facts["forum_did"],
        database_url=settings.database_url,
        database_schema=f"{backend.schema}_fresh" if backend.schema else "public"))
    try:
        # the log: given its identity in place, every event where it was
        assert len(services.event_log.identity()) == 32
        append_lines(fresh, forum_lines())
        project_to_head(fresh.event_log, fresh.projections)
        events = logged(fresh)
        assert logged(services) == events and len(events) > 100
        # the side tables: the token still signs in, the backfill run is still there
        token = services.admin_tokens.resolve(facts[f"{backend.name}_token"])
        assert token is not None and token.did == facts["forum_did"]
        assert services.backfills is not None
        [run] = services.backfills.recent()
        assert (run.type, run.status, run.records_indexed) == ("catch_up", "completed", 7)
        # the read models: ours, of the older version, serving until rebuilt
        assert services.read_models_problem is None
        assert services.rebuilds is not None and services.rebuilds.outdated() == ["forum"]
        old = dump(services, with_times=False)
        assert old["posts"] and services.read_models.live_generation() == 1  # type: ignore[attr-defined]
        WriterDuties(services, backfill=False).lead()  # what the writer does first
        run_now = services.rebuilds.current()
        assert run_now is not None and run_now.reason == "version changed"
        wait_for_generation(services, 2)
        assert services.rebuilds.outdated() == []
        assert services.read_models.versions() == current_versions(services)
        assert dump(services, with_times=False) == dump(fresh, with_times=False)
    finally:
        fresh.close()
        services.close()
    # and it opens again as any appview of today's
    again = bootstrap(settings)
    try:
        assert again.read_models_problem is None and again.rebuilds is not None
        assert again.rebuilds.outdated() == []
        assert logged(again) == events
    finally:
        again.close()


def test_atbb_status_reads_the_earlier_appviews_databases(backend: Backend) -> None:
    facts = fixture_facts()
    settings = restore(backend, facts["forum_did"])
    env = {"DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.database_url,
           "DATABASE_SCHEMA": settings.database_schema, "FORUM_DID": facts["forum_did"]}
    out = subprocess.run(
        [sys.executable, "-c", "from web.cli import main; main()", "status", "--json"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, check=True,
        cwd=backend.tmp)
    status = json.loads(out.stdout)
    assert status["read_models_problem"] is None
    assert status["projections"]["forum"]["built_version"] == 2
    assert status["projections"]["forum"]["version"] == ForumProjection.VERSION

