"""A forum for moderation tests: the Forum account (an in-process repository, its agent
signed in) wrote the forum record, the default roles of ``atbb init`` and an assignment
for each actor; every actor but the Forum account wrote a topic and a reply; each actor
has an admin token. Behind a test client of the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services
from appview.forum_init import init_forum
from appview.writes.writer import Written
from events.collections import BOARD, CATEGORY, MEMBERSHIP, POST, ROLE_ASSIGNMENT
from events.model import IdentityChanged
from events.records import (
    StrongRef,
    board_record,
    category_record,
    membership_record,
    reply_record,
    role_assignment_record,
    topic_record,
)
from events.roles import DEFAULT_ROLES
from projections.ids import post_id
from tests.conftest import Backend
from tests.writes_support import CREATED, OWNER, FakeRepoSession, write_services

# actor -> role name (None: the default role, Member); "forum" is the Forum account.
ACTORS: dict[str, str | None] = {
    "owner": "Owner", "admin": "Admin", "mod": "Moderator", "mod2": "Moderator",
    "member": None,
}
PRIORITY = {name: priority for name, _d, _p, priority in DEFAULT_ROLES}


@dataclass
class ModForum:
    services: Services
    client: TestClient  # type: ignore[type-arg]
    owner: FakeRepoSession
    sessions: dict[str, FakeRepoSession]
    tokens: dict[str, str]
    topics: dict[str, Written]
    replies: dict[str, Written]
    board: Written
    roles: dict[str, StrongRef] = field(default_factory=dict)

    def did(self, actor: str) -> str:
        return self.owner.did if actor == "forum" else self.sessions[actor].did

    def headers(self, actor: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[actor]}"}

    def forum_records(self) -> int:
        return int(self.owner.repo.count())

    async def call(self, method: str, path: str, actor: str | None,
                   body: Any = None) -> tuple[int, Any]:
        headers = {} if actor is None else self.headers(actor)
        answer = await self.client.request(method, path, json=body, headers=headers)
        return answer.status, await answer.json()

    def topic_id(self, actor: str) -> str:
        return post_id(self.topics[actor].uri)

    def reply_id(self, actor: str) -> str:
        return post_id(self.replies[actor].uri)


@asynccontextmanager
async def mod_forum(backend: Backend, **overrides: Any) -> AsyncIterator[ModForum]:
    with write_services(backend, writes_per_minute=100_000, **overrides) as services:
        owner = FakeRepoSession(OWNER)
        services.forum_agent.use(owner)
        writer = services.writer
        await init_forum(writer, _ListingSession(owner), services.clock,
                         name="Moderated forum", description=None, owner=None)
        roles = {name: ref for name, ref in (await _role_refs(services)).items()}
        category = await writer.create(owner, CATEGORY, category_record(
            "General", created_at=CREATED))
        assert category.cid is not None
        board = await writer.create(owner, BOARD, board_record(
            "Talk", StrongRef(category.uri, category.cid), created_at=CREATED))
        assert board.cid is not None
        forum = services.queries.forum()
        assert forum is not None and forum.cid is not None
        forum_ref = StrongRef(forum.uri, forum.cid)
        sessions = {name: FakeRepoSession(f"mod-test-{name}") for name in ACTORS}
        topics: dict[str, Written] = {}
        replies: dict[str, Written] = {}
        for name, session in sessions.items():
            role = ACTORS[name]
            if role is not None:
                await writer.create(owner, ROLE_ASSIGNMENT, role_assignment_record(
                    session.did, roles[role], created_by=owner.did, created_at=CREATED),
                    rkey=session.did)
            await writer.create(session, MEMBERSHIP, membership_record(
                forum_ref, created_at=CREATED))
            topic = await writer.create(session, POST, topic_record(
                f"Topic of {name}", "Hello", forum=forum_ref,
                board=StrongRef(board.uri, board.cid), created_at=CREATED))
            assert topic.cid is not None
            topics[name] = topic
        for name, session in sessions.items():
            topic = topics[name]
            assert topic.cid is not None
            replies[name] = await writer.create(session, POST, reply_record(
                f"A reply by {name}", forum=forum_ref, root=StrongRef(topic.uri, topic.cid),
                parent=StrongRef(topic.uri, topic.cid), created_at=CREATED))
        # their handles, as the network announces them (the mod log shows handles)
        services.event_log.append([
            IdentityChanged(did=session.did, handle=f"{name}.mod.test", seq=index + 1,
                            time=None, source="firehose", source_cursor=None, observed_at=0)
            for index, (name, session) in enumerate(sessions.items())])
        services.projector.project_through(services.event_log.head())
        tokens = {name: services.admin_tokens.issue(session.did, name)[1]
                  for name, session in sessions.items()}
        tokens["forum"] = services.admin_tokens.issue(owner.did, "forum")[1]
        from web.app import create_app

        async with TestClient(TestServer(create_app(services))) as client:
            yield ModForum(services, client, owner, sessions, tokens, topics, replies,
                           board, roles)


async def _role_refs(services: Services) -> dict[str, StrongRef]:
    page = services.queries.roles()
    return {role.name: StrongRef(role.uri, role.cid or "") for role in page.items}


class _ListingSession:
    """The in-process repository with ``listRecords`` (``atbb init`` asks the repo
    which roles it holds), otherwise the session itself."""

    def __init__(self, inner: FakeRepoSession) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def did(self) -> str:
        return self._inner.did

    async def call(self, method: str, nsid: str, *, params: Any = None,
                   body: Any = None) -> dict[str, Any]:
        if nsid == "com.atproto.repo.listRecords":
            collection = params["collection"]
            records = [{"uri": f"at://{self.did}/{collection}/{r.rkey}", "cid": r.cid,
                        "value": r.value}
                       for r in self._inner.repo.list_records(collection, limit=1000,
                                                               reverse=True)]
            return {"records": records}
        return await self._inner.call(method, nsid, params=params, body=body)


