"""`atbb admin token create|list|revoke` through click, on both backends."""

from __future__ import annotations

from click.testing import CliRunner

from appview.bootstrap import bootstrap
from appview.cli import cli
from events.store_postgres import redact
from tests.conftest import Backend
from tests.rebuild_support import seeded
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


def test_the_forum_account_is_not_warned_about_when_the_cli_has_no_forum_did(
    backend: Backend,
) -> None:
    services, _ = seeded(backend, topics=3)
    settings = services.settings
    services.close()
    env = {**env_of(settings), "FORUM_DID": ""}  # the serving appview has it; this shell not
    created = CliRunner().invoke(cli, ["admin", "token", "create", "--did",
                                       settings.forum_did], env=env, catch_exceptions=False)
    assert created.exit_code == 0, created.output
    assert "note:" not in created.stderr, created.stderr
    assert f"created beside the event log {redact(settings.event_log_url)}" in created.stderr
    stranger = "did:plc:strangerstrangerstranger"
    other = CliRunner().invoke(cli, ["admin", "token", "create", "--did", stranger], env=env)
    # a stranger may do what the forum's default role grants: judged against that forum
    serving = bootstrap(settings)  # as the appview serving with FORUM_DID sees it
    try:
        permissions = serving.queries.viewer(stranger).permissions
    finally:
        serving.close()
    assert ("holds no permission" in other.stderr) == (not permissions)


def test_a_token_made_beside_an_empty_log_says_so(backend: Backend) -> None:
    settings = settings_for(backend, "empty", "")
    created = CliRunner().invoke(cli, ["admin", "token", "create", "--did", FORUM],
                                 env={**env_of(settings), "FORUM_DID": ""},
                                 catch_exceptions=False)
    assert created.exit_code == 0, created.output
    assert "note: that event log is empty" in created.stderr
    assert "`atbb demo` keeps its own under DATA_DIR/demo" in created.stderr
    assert "note: no FORUM_DID is set and the read models hold no forum yet" in created.stderr
    assert "holds no permission" not in created.stderr  # not known: not claimed
