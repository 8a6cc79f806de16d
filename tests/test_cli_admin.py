"""`atbb admin token create|list|revoke` through click, on both backends."""

from __future__ import annotations

from click.testing import CliRunner

from appview.bootstrap import bootstrap
from appview.cli import cli
from tests.conftest import Backend
from tests.test_cli_rebuild import env_of
from tests.test_consumer import settings_for

FORUM = "did:plc:forumforumforumforumforu"


def test_a_token_is_created_listed_resolved_and_revoked(backend: Backend) -> None:
    settings = settings_for(backend, "admin", FORUM)
    env = env_of(settings)
    runner = CliRunner()
    created = runner.invoke(cli, ["admin", "token", "create", "--did", FORUM,
                                  "--label", "ops"], env=env, catch_exceptions=False)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("atbb_")
    services = bootstrap(settings)
    try:
        record = services.admin_tokens.resolve(secret)
        assert record is not None and record.did == FORUM
    finally:
        services.close()
    listed = runner.invoke(cli, ["admin", "token", "list"], env=env)
    assert record.id in listed.stdout and "ops" in listed.stdout and "live" in listed.stdout
    assert secret not in listed.stdout
    revoked = runner.invoke(cli, ["admin", "token", "revoke", record.id], env=env)
    assert revoked.exit_code == 0
    again = runner.invoke(cli, ["admin", "token", "revoke", record.id], env=env)
    assert again.exit_code == 1 and "no live token" in again.output


def test_a_malformed_did_is_refused(backend: Backend) -> None:
    settings = settings_for(backend, "admin", FORUM)
    result = CliRunner().invoke(cli, ["admin", "token", "create", "--did", "bob"],
                                env=env_of(settings))
    assert result.exit_code == 2 and "DID" in result.output
