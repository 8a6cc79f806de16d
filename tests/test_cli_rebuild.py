"""`atbb rebuild` and `atbb verify` through click, on both backends."""

from __future__ import annotations

from click.testing import CliRunner

from appview.bootstrap import bootstrap
from appview.cli import cli
from appview.settings import Settings
from tests.conftest import Backend
from tests.rebuild_support import current_versions, seeded


def env_of(settings: Settings) -> dict[str, str]:
    env = {"DATA_DIR": str(settings.data_dir), "FORUM_DID": settings.forum_did,
           "DATABASE_URL": settings.database_url}
    if settings.database_url:
        env["DATABASE_SCHEMA"] = settings.database_schema
    return env


def test_rebuild_then_verify_then_a_tampered_row_fails_verify(backend: Backend) -> None:
    services, _ = seeded(backend)
    settings = services.settings
    services.close()
    runner = CliRunner()
    rebuilt = runner.invoke(cli, ["rebuild"], env=env_of(settings), catch_exceptions=False)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt generation 2" in rebuilt.stdout
    status = runner.invoke(cli, ["status"], env=env_of(settings))
    assert "generation 2" in status.stdout
    verified = runner.invoke(cli, ["verify"], env=env_of(settings))
    assert verified.exit_code == 0 and verified.stdout.startswith("equal"), verified.output

    tampered = bootstrap(settings)
    try:
        with tampered.read_models.transaction() as session:
            session.execute("DELETE FROM posts WHERE uri = (SELECT MIN(uri) FROM posts)")
    finally:
        tampered.close()
    different = runner.invoke(cli, ["verify"], env=env_of(settings))
    assert different.exit_code == 1
    assert "DIFFERENT" in different.stdout and "table posts" in different.stdout
    assert "rebuilt: (" in different.stdout


def test_rebuild_refuses_an_unknown_projection(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2, project=False)
    settings = services.settings
    services.close()
    result = CliRunner().invoke(cli, ["rebuild", "--projection", "nope"],
                                env=env_of(settings))
    assert result.exit_code == 1 and "unknown projection 'nope'" in result.output


def test_project_rebuilds_a_generation_of_another_version_first(backend: Backend) -> None:
    services, _ = seeded(backend)
    settings = services.settings
    with services.read_models.transaction() as session:
        session.execute("UPDATE projection_versions SET version = 0")
    services.close()
    result = CliRunner().invoke(cli, ["project"], env=env_of(settings),
                                catch_exceptions=False)
    assert result.exit_code == 0
    after = bootstrap(settings)
    try:
        assert after.read_models.versions() == current_versions(after)
        assert after.projection_status()[0].generation == 2
    finally:
        after.close()
