"""The Forum account's agent against the devnet PDS: `atbb forum login`'s sealed login,
signing in again at start from it (refreshing, else a new session with the app
password), FORUM_HANDLE / FORUM_PASSWORD, the original's states (unavailable, failed,
retrying with backoff) and what a write asks of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from appview.bootstrap import Services, bootstrap
from appview.devnet.pds import Account
from appview.side_db import side_transaction
from appview.writes.forum_agent import (
    ForumAgentNotReady,
    ForumLoginError,
    NoForumAgent,
)
from events.collections import FORUM
from events.records import forum_record
from tests.auth_support import AuthNet, auth_settings, start_net
from tests.conftest import Backend


@dataclass
class AgentNet:
    net: AuthNet
    forum: Account
    services: Services


@pytest.fixture
async def agent_net(backend: Backend, aiohttp_server: Any) -> AsyncIterator[AgentNet]:
    net = await start_net(aiohttp_server)
    forum = net.pds.create_account("forum.pds1.test", "forum-pw", seed=b"forum-account")
    services = bootstrap(auth_settings(backend, net).with_overrides(forum_did=forum.did))
    try:
        yield AgentNet(net, forum, services)
    finally:
        await services.forum_agent.aclose()
        services.close()


def _restart(old: Services, **overrides: Any) -> Services:
    """The same appview started again (a new process: only the database remains)."""
    return bootstrap(old.settings.with_overrides(**overrides))


async def test_login_is_stored_sealed_and_used_again_after_a_restart(agent_net: AgentNet,
                                                                     ) -> None:
    agent = agent_net.services.forum_agent
    assert agent.status == "initializing"
    stored = await agent.login(agent_net.forum.handle, agent_net.forum.app_password)
    assert stored.did == agent_net.forum.did and stored.pds_url == agent_net.net.pds_url
    assert agent.authenticated and agent.health() == {
        "status": "authenticated", "authenticated": True}
    with side_transaction(agent_net.services.settings) as execute:
        rows = execute("SELECT sealed FROM forum_agent", ())
    assert len(rows) == 1
    assert agent_net.forum.app_password not in rows[0][0]
    assert stored.refresh_jwt not in rows[0][0]
    # the agent writes the forum's records to the Forum account's repo, logged at once
    written = await agent_net.services.writer.create(
        agent.session(), FORUM, forum_record("Agent's forum", created_at="2026-12-07T00:00:00Z"),
        rkey="self")
    assert written.position is not None and written.shown
    assert agent_net.net.pds.repo(agent_net.forum.did).get(FORUM, "self") is not None

    again = _restart(agent_net.services)
    try:
        assert again.forum_agent.status == "initializing"
        assert await again.forum_agent.start() == "authenticated"
        assert again.forum_agent.last_auth_attempt is not None
    finally:
        await again.forum_agent.aclose()
        again.close()


async def test_a_spent_refresh_token_falls_back_to_the_app_password(agent_net: AgentNet,
                                                                    ) -> None:
    agent = agent_net.services.forum_agent
    stored = await agent.login(agent_net.forum.did, agent_net.forum.app_password)
    credentials = agent._credentials
    credentials.save(replace(stored, refresh_jwt="spent.by.another-process"), 0.0)
    again = _restart(agent_net.services)
    try:
        assert await again.forum_agent.start() == "authenticated"
        renewed = again.forum_agent._credentials.load()
        assert renewed is not None and renewed.refresh_jwt != "spent.by.another-process"
    finally:
        await again.forum_agent.aclose()
        again.close()


async def test_a_revoked_app_password_fails_and_says_so(agent_net: AgentNet) -> None:
    agent = agent_net.services.forum_agent
    stored = await agent.login(agent_net.forum.did, agent_net.forum.app_password)
    agent._credentials.save(replace(stored, refresh_jwt="x.y.z", password="revoked"), 0.0)
    again = _restart(agent_net.services)
    try:
        assert await again.forum_agent.start() == "failed"
        health = again.forum_agent.health()
        assert health["status"] == "failed" and health["authenticated"] is False
        assert health["error"]
        with pytest.raises(ForumAgentNotReady) as refused:
            again.forum_agent.session()
        assert refused.value.status == 503
    finally:
        await again.forum_agent.aclose()
        again.close()


async def test_an_unreachable_pds_is_retried_with_backoff(agent_net: AgentNet) -> None:
    agent = agent_net.services.forum_agent
    stored = await agent.login(agent_net.forum.did, agent_net.forum.app_password)
    agent._credentials.save(replace(stored, pds_url="http://127.0.0.1:9"), 0.0)
    again = _restart(agent_net.services)
    try:
        assert await again.forum_agent.start() == "retrying"
        first = again.forum_agent.health()
        assert first["retry_count"] == 1 and first["next_retry_at"]
        assert await again.forum_agent.start() == "retrying"
        assert again.forum_agent.retry_count == 2
        with pytest.raises(ForumAgentNotReady):
            again.forum_agent.session()
    finally:
        await again.forum_agent.aclose()
        again.close()


async def test_without_credentials_it_is_unavailable_and_a_write_is_a_500(
        agent_net: AgentNet) -> None:
    agent = agent_net.services.forum_agent
    assert await agent.start() == "unavailable"
    assert agent.health() == {"status": "unavailable", "authenticated": False,
                              "last_auth_attempt": agent.health()["last_auth_attempt"]}
    with pytest.raises(NoForumAgent) as refused:
        agent.session()
    assert refused.value.status == 500


async def test_forum_handle_and_password_from_the_environment(agent_net: AgentNet) -> None:
    configured = _restart(agent_net.services, forum_handle=agent_net.forum.handle,
                          forum_password=agent_net.forum.app_password)
    try:
        assert await configured.forum_agent.start() == "authenticated"
        assert "forum-pw" not in repr(configured.settings)
    finally:
        await configured.forum_agent.aclose()
        configured.close()


async def test_login_refuses_another_account_and_a_wrong_password(agent_net: AgentNet,
                                                                  ) -> None:
    agent = agent_net.services.forum_agent
    with pytest.raises(ForumLoginError, match="not the Forum account"):
        await agent.login(agent_net.net.alice.handle, agent_net.net.alice.app_password)
    with pytest.raises(ForumLoginError):
        await agent.login(agent_net.forum.handle, "wrong")
    assert agent._credentials.load() is None and not agent.authenticated


async def test_logout_forgets_the_login(agent_net: AgentNet) -> None:
    agent = agent_net.services.forum_agent
    await agent.login(agent_net.forum.did, agent_net.forum.app_password)
    assert await agent.logout() is True
    assert agent.status == "unavailable" and agent._credentials.load() is None


async def test_health_reports_the_agent_and_the_database_latency(agent_net: AgentNet) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from web.app import create_app

    async with TestClient(TestServer(create_app(agent_net.services))) as client:
        body = await (await client.get("/api/health")).json()
        assert body["services"]["forumAgent"]["status"] in ("initializing", "unavailable")
        assert body["status"] == "healthy"  # no credentials: a read-only forum by choice
        assert body["services"]["database"]["latency_ms"] >= 0
        await agent_net.services.forum_agent.login(agent_net.forum.did,
                                                   agent_net.forum.app_password)
        body = await (await client.get("/api/health")).json()
        agent = body["services"]["forumAgent"]
        assert (agent["status"], agent["authenticated"]) == ("authenticated", True)
        assert "error" not in agent and "retry_count" not in agent
        agent_net.services.forum_agent._retry_later(
            f"cannot connect to {agent_net.net.pds_url}")
        body = await (await client.get("/api/health")).json()
        agent = body["services"]["forumAgent"]
        assert (body["status"], agent["status"], agent["authenticated"]) == (
            "degraded", "retrying", False)
        assert "127.0.0.1" not in agent["error"] and agent["retry_count"] == 1
        # the operator's page says the same, the error whole
        _, token = agent_net.services.admin_tokens.issue(agent_net.forum.did, "ops")
        page = await (await client.get("/admin",
                                       headers={"Authorization": f"Bearer {token}"})).text()
        assert "Forum account&#39;s agent" in page or "Forum account's agent" in page
        assert "<strong>retrying</strong> (attempt 1" in page
        assert agent_net.net.pds_url in page
