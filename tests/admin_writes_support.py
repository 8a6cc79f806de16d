"""Administration in tests: an appview whose Forum account's agent writes through a
``FakeRepoSession`` (``ForumAgent.use``), a written forum with the original's four
roles (Owner 0, Admin 10, Moderator 20, Member 30), members who joined, and admin
tokens for each of them, behind a test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services, bootstrap
from appview.writes.writer import Written
from events.collections import ROLE, ROLE_ASSIGNMENT
from events.records import StrongRef, role_assignment_record, role_record
from tests.admin_support import csrf_from
from tests.conftest import Backend
from tests.web_forum import settings_for
from tests.writes_support import (
    CREATED,
    MODERATING,
    OWNER,
    POSTING,
    FakeRepoSession,
    WriteForum,
    did_for,
    write_forum,
)
from web.app import create_app

ADMINISTERING = tuple(f"space.atbb.permission.{name}" for name in (
    "manageCategories", "manageRoles", "manageMembers", "manageThemes"))
PEOPLE = ("owner1", "admin1", "admin2", "mod1", "alice", "bob")


@dataclass
class AdminWorld:
    services: Services
    client: TestClient[Any, Any]
    owner: FakeRepoSession  # the Forum account's repo
    forum: WriteForum
    roles: dict[str, Written]  # Owner, Admin, Moderator, Member
    tokens: dict[str, str] = field(default_factory=dict)  # person -> admin token

    def did(self, person: str) -> str:
        return did_for(person)

    def bearer(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[person]}"}

    def writes(self) -> int:
        """Every write the Forum account's repo was sent."""
        return sum(1 for call in self.owner.calls if call.startswith("com.atproto.repo."))

    def head(self) -> int:
        return self.services.event_log.head()

    async def give(self, person: str, role: str) -> None:
        """The Forum account assigns ``role`` directly (test set-up)."""
        written = self.roles[role]
        assert written.cid is not None
        await self.services.writer.put(self.owner, ROLE_ASSIGNMENT, did_for(person),
                                       role_assignment_record(
                                           did_for(person), StrongRef(written.uri, written.cid),
                                           created_by=self.owner.did, created_at=CREATED))

    async def cookie_session(self, person: str) -> str:
        """Sign ``person``'s token in through the sign-in page; the CSRF token of the
        signed-in session."""
        page = await self.client.get("/signin")
        signed = await self.client.post("/signin", allow_redirects=False, data={
            "token": self.tokens[person], "csrf_token": csrf_from(await page.text())})
        assert signed.status == 303, await signed.text()
        return csrf_from(await (await self.client.get("/signin")).text())


@dataclass
class AdminForum:
    """The services, the Forum account's repo, its forum and roles, and a token for each
    person (and ``forum``, the Forum account's own)."""

    services: Services
    owner: FakeRepoSession
    forum: WriteForum
    roles: dict[str, Written]
    tokens: dict[str, str]


@asynccontextmanager
async def admin_forum(backend: Backend, **overrides: Any) -> AsyncIterator[AdminForum]:
    owner = FakeRepoSession(OWNER)
    settings = settings_for(backend, owner.did).with_overrides(
        writes_per_minute=overrides.pop("writes_per_minute", 100000), **overrides)
    services = bootstrap(settings)
    services.forum_agent.use(owner)
    try:
        forum = await write_forum(services.writer, owner)
        roles = {"Member": forum.member_role, "Moderator": forum.moderator_role}
        roles["Owner"] = await services.writer.create(owner, ROLE, role_record(
            "Owner", ["*"], 0, created_at=CREATED))
        roles["Admin"] = await services.writer.create(owner, ROLE, role_record(
            "Admin", ADMINISTERING + MODERATING + POSTING, 10, created_at=CREATED))
        for person in PEOPLE:
            assert await services.forum_writes.join(FakeRepoSession(person)) is not None
        tokens = {person: services.admin_tokens.issue(did_for(person), person)[1]
                  for person in PEOPLE}
        tokens["forum"] = services.admin_tokens.issue(owner.did, "forum")[1]
        for person, role in (("owner1", "Owner"), ("admin1", "Admin"),
                             ("admin2", "Admin"), ("mod1", "Moderator")):
            written = roles[role]
            assert written.cid is not None
            await services.writer.put(owner, ROLE_ASSIGNMENT, did_for(person),
                                      role_assignment_record(
                                          did_for(person), StrongRef(written.uri, written.cid),
                                          created_by=owner.did, created_at=CREATED))
        owner.calls.clear()
        yield AdminForum(services, owner, forum, roles, tokens)
    finally:
        services.close()


@asynccontextmanager
async def admin_world(backend: Backend, **overrides: Any) -> AsyncIterator[AdminWorld]:
    async with admin_forum(backend, **overrides) as built, TestClient(
            TestServer(create_app(built.services))) as client:
        yield AdminWorld(built.services, client, built.owner, built.forum, built.roles,
                         built.tokens)
