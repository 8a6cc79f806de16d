"""`atbb forum login` then `atbb init` on a fresh Forum account of the devnet PDS: the
forum record, the default roles and the first Owner's assignment land in the Forum
account's repo and in the read models at once; a second run writes nothing; the Owner
then holds every permission."""

from __future__ import annotations

import asyncio
from typing import Any

from click.testing import CliRunner, Result

from appview.bootstrap import bootstrap
from appview.cli import cli
from events.collections import FORUM, ROLE, ROLE_ASSIGNMENT
from tests.auth_support import auth_settings, start_net
from tests.conftest import Backend
from tests.test_cli_rebuild import env_of


async def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    # in a thread: the command runs its own event loop, the devnet serves from this one
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env, input=stdin,
                                   catch_exceptions=False)


async def test_init_on_a_fresh_forum_account_then_again(backend: Backend,
                                                        aiohttp_server: Any) -> None:
    net = await start_net(aiohttp_server)
    forum = net.pds.create_account("forum.pds1.test", "forum-pw", seed=b"fresh-forum")
    settings = auth_settings(backend, net).with_overrides(forum_did=forum.did)
    env = {**env_of(settings), "PLC_URL": net.plc_url,
           "HANDLE_RESOLVER_DEV_URLS": settings.handle_resolver_dev_urls}
    # before any login, init says what is missing and writes nothing
    refused = await asyncio.to_thread(CliRunner().invoke, cli, [
        "init", "--name", "Fresh"], env=env)
    assert refused.exit_code == 1 and "forum login" in refused.output
    repo = net.pds.repo(forum.did)
    assert repo.count() == 0

    logged = await _run(["forum", "login", "--identifier", forum.handle], env,
                        stdin=forum.app_password + "\n")
    assert logged.exit_code == 0, logged.output
    assert forum.app_password not in logged.stdout.replace("App password:", "")

    owner = net.alice.did
    first = await _run(["init", "--name", "Fresh forum", "--description", "A new one",
                        "--owner", owner], env)
    assert first.exit_code == 0, first.output
    assert "6 record(s) written" in first.stdout
    assert repo.get(FORUM, "self") is not None
    roles = {r.value["name"]: r.value for r in repo.list_records(ROLE, limit=100)}
    assert {name: roles[name]["priority"] for name in roles} == {
        "Owner": 0, "Admin": 10, "Moderator": 20, "Member": 30}
    assert roles["Owner"]["permissions"] == ["*"]
    assignment = repo.get(ROLE_ASSIGNMENT, owner)
    assert assignment is not None and assignment.value["createdBy"] == forum.did

    second = await _run(["init", "--name", "Fresh forum", "--owner", owner], env)
    assert second.exit_code == 0, second.output
    assert "0 record(s) written" in second.stdout and repo.count() == 6

    status = await _run(["forum", "status"], env)
    assert status.exit_code == 0 and "status: authenticated" in status.stdout
    services = bootstrap(settings)
    try:
        found = services.queries.forum()
        assert found is not None and found.name == "Fresh forum"
        assert [r.name for r in services.queries.roles().items] == [
            "Owner", "Admin", "Moderator", "Member"]
        assert services.queries.viewer(owner).has("banUsers")
        assert services.queries.member_permissions(owner).authority == 0
        # a member without an assignment holds the default role, Member
        assert services.queries.member_permissions(net.bob.did).authority == 30
    finally:
        services.close()
    logged_out = await _run(["forum", "logout"], env)
    assert logged_out.exit_code == 0 and "forgotten" in logged_out.stdout
    status = await _run(["forum", "status"], env)
    assert "status: unavailable" in status.stdout
