"""Writing in tests: a member's session at an in-process devnet repository (the
``RepoSession`` interface, answering as a PDS does, with faults on demand), and a small
forum (forum record, category, board, roles) written by the Forum account through the
same ``RecordWriter`` the members use."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from appview.auth.errors import SessionExpired
from appview.auth.pds_session import XrpcFailure
from appview.auth.transport import TransportError
from appview.bootstrap import Services, bootstrap
from appview.devnet.clock import DevClock
from appview.devnet.keys import SigningKey
from appview.devnet.repo import Repo, RepoError
from appview.devnet.tid import TidClock
from appview.writes.ratelimit import WriteLimiter
from appview.writes.writer import RecordWriter, RepoSession, Written
from events import roles
from events.collections import BOARD, CATEGORY, FORUM, ROLE, ROLE_ASSIGNMENT
from events.model import RecordEvent
from events.records import (
    StrongRef,
    board_record,
    category_record,
    forum_record,
    role_assignment_record,
    role_record,
)
from tests.conftest import Backend
from tests.recording_sink import RecordingSink
from tests.web_forum import settings_for

CREATED = "2025-01-01T00:00:00.000Z"
# the default roles' permissions (events.roles), as role records name them
POSTING = tuple(roles.PERMISSION + name for name in roles.POSTING)
MODERATING = tuple(roles.PERMISSION + name for name in roles.MODERATION)


def did_for(name: str) -> str:
    """A valid did:plc made from a name."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    digest = hashlib.sha256(name.encode()).digest()
    return "did:plc:" + "".join(alphabet[b % 32] for b in digest[:24])


@dataclass
class FakeRepoSession:
    """A session at an in-process repository. ``faults`` are raised by the next calls
    (one each); ``omit_rev`` answers writes without ``commit`` as PDSes before mid-2024
    did; ``between`` runs between the two ``getLatestCommit`` calls of the writer's rev
    look-up (a write made meanwhile); ``calls`` lists the NSIDs called."""

    name: str
    clock: DevClock = field(default_factory=DevClock)
    faults: list[Exception] = field(default_factory=list)
    omit_rev: bool = False
    between: Any = None
    after_write: Any = None
    calls: list[str] = field(default_factory=list)
    sink: RecordingSink = field(default_factory=RecordingSink)

    def __post_init__(self) -> None:
        self._did = did_for(self.name)
        self.repo = Repo(self._did, SigningKey.from_seed(self.name.encode()),
                         TidClock(self.clock, clock_id=7), self.sink)
        self._heads = 0

    @property
    def did(self) -> str:
        return self._did

    def _enter(self, nsid: str) -> None:
        self.calls.append(nsid)
        if self.faults:
            raise self.faults.pop(0)

    async def _answer(self, uri: str | None, cid: str | None) -> dict[str, Any]:
        if self.after_write is not None:  # e.g. the network's copy arriving first
            await self.after_write()
        body: dict[str, Any] = {}
        if uri is not None:
            body.update(uri=uri, cid=cid)
        if not self.omit_rev:
            commit = self.repo.commit()
            body["commit"] = {"cid": str(commit.cid), "rev": commit.rev}
        return body

    async def create_record(self, collection: str, record: Mapping[str, Any], *,
                            rkey: str | None = None, validate: bool | None = None,
                            ) -> dict[str, Any]:
        self._enter("com.atproto.repo.createRecord")
        try:
            write = self.repo.create(collection, dict(record), rkey=rkey)
        except RepoError as exc:
            raise XrpcFailure(str(exc), status=400, error="InvalidRequest") from exc
        return await self._answer(write.uri, write.op.cid)

    async def put_record(self, collection: str, rkey: str, record: Mapping[str, Any], *,
                         swap_record: str | None = None, validate: bool | None = None,
                         ) -> dict[str, Any]:
        self._enter("com.atproto.repo.putRecord")
        current = self.repo.get(collection, rkey)
        if swap_record is not None and (current is None or current.cid != swap_record):
            raise XrpcFailure(f"Record was at {None if current is None else current.cid}",
                              status=400, error="InvalidSwap")
        write = self.repo.put(collection, rkey, dict(record))
        return await self._answer(write.uri, write.op.cid)

    async def delete_record(self, collection: str, rkey: str, *,
                            swap_record: str | None = None) -> dict[str, Any]:
        self._enter("com.atproto.repo.deleteRecord")
        self.repo.delete(collection, rkey)
        return await self._answer(None, None)

    async def call(self, method: str, nsid: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None) -> dict[str, Any]:
        self._enter(nsid)
        params = params or {}
        if nsid == "com.atproto.sync.getLatestCommit":
            self._heads += 1
            if self._heads % 2 == 0 and self.between is not None:
                await self.between()
            commit = self.repo.commit()
            return {"cid": str(commit.cid), "rev": commit.rev}
        if nsid == "com.atproto.repo.getRecord":
            found = self.repo.get(params["collection"], params["rkey"])
            if found is None:
                raise XrpcFailure("Could not locate record", status=400,
                                  error="RecordNotFound")
            return {"uri": f"at://{self.did}/{found.collection}/{found.rkey}",
                    "cid": found.cid, "value": found.value}
        raise XrpcFailure(f"{nsid} is not implemented here", status=501,
                          error="MethodNotImplemented")

    def network_copies(self, source: str = "firehose") -> list[RecordEvent]:
        """Every write of this repo as the network delivers it (source ``source``)."""
        return [RecordEvent(op.operation, did, op.collection, op.rkey, rev, op.cid,
                            op.record, True, None, source, None, 0)  # type: ignore[arg-type]
                for did, rev, ops in self.sink.commits for op in ops]


def pds_failure(status: int, error: str = "InternalServerError") -> XrpcFailure:
    return XrpcFailure(f"{error}: HTTP {status}", status=status, error=error)


FAULTS: dict[str, Callable[[], Exception]] = {
    "timeout": lambda: TransportError("http://pds.test/xrpc: TimeoutError"),
    "5xx": lambda: pds_failure(502, "BadGateway"),
    "expired": lambda: SessionExpired("the session could not be renewed"),
}


@dataclass
class WriteForum:
    """A forum written by its Forum account through the writer."""

    owner: RepoSession
    forum: Written
    category: Written
    board: Written
    member_role: Written
    moderator_role: Written

    @property
    def board_uri(self) -> str:
        return self.board.uri


async def write_forum(writer: RecordWriter, owner: RepoSession,
                      moderators: tuple[str, ...] = ()) -> WriteForum:
    forum = await writer.create(owner, FORUM, forum_record("Writers' forum",
                                                          created_at=CREATED), rkey="self")
    category = await writer.create(owner, CATEGORY, category_record("General",
                                                                   created_at=CREATED))
    assert category.cid is not None
    board = await writer.create(owner, BOARD, board_record(
        "Talk", StrongRef(category.uri, category.cid), created_at=CREATED))
    member_role = await writer.create(owner, ROLE, role_record("Member", POSTING, 30,
                                                              created_at=CREATED))
    moderator_role = await writer.create(owner, ROLE, role_record(
        "Moderator", MODERATING + POSTING, 20, created_at=CREATED))
    assert moderator_role.cid is not None
    for did in moderators:
        await writer.create(owner, ROLE_ASSIGNMENT, role_assignment_record(
            did, StrongRef(moderator_role.uri, moderator_role.cid), created_by=owner.did,
            created_at=CREATED), rkey=did)
    return WriteForum(owner, forum, category, board, member_role, moderator_role)


OWNER = "forum-owner"


@contextmanager
def write_services(backend: Backend, **overrides: Any) -> Iterator[Services]:
    """Services on the test's backend whose Forum account is ``FakeRepoSession(OWNER)``."""
    settings = settings_for(backend, did_for(OWNER)).with_overrides(
        writes_per_minute=overrides.pop("writes_per_minute", 1000), **overrides)
    services = bootstrap(settings)
    try:
        yield services
    finally:
        services.close()


# --- the web: members of a devnet PDS with its OAuth server, signing in and writing ------


@dataclass
class MemberApp:
    services: Services
    net: Any  # tests.auth_support.AuthNet
    forum: WriteForum
    client: Any  # TestClient

    async def csrf(self, path: str = "/signin") -> str:
        from tests.admin_support import csrf_from

        page = await self.client.get(path)
        return csrf_from(await page.text())

    async def oauth_sign_in(self, account: Any, *, next_path: str = "/") -> Any:
        """Sign ``account`` in as a browser does; the answer of the callback (a 303)."""
        from tests.auth_support import approve

        token = await self.csrf()
        started = await self.client.post("/signin/oauth", allow_redirects=False, data={
            "identifier": account.handle, "next": next_path, "csrf_token": token})
        assert started.status == 303, await started.text()
        query = await approve(started.headers["Location"], account)
        return await self.client.get("/oauth/callback", params=query, allow_redirects=False)

    async def password_sign_in(self, account: Any, password: str | None = None) -> Any:
        token = await self.csrf()
        return await self.client.post("/signin/password", allow_redirects=False, data={
            "identifier": account.handle, "password": password or account.app_password,
            "csrf_token": token})


@asynccontextmanager
async def member_app(backend: Backend, aiohttp_server: Any, **overrides: Any,
                     ) -> AsyncIterator[MemberApp]:
    """The devnet PLC and PDS (alice and bob, OAuth on), an appview whose Forum account
    wrote a forum (its members get the Member role), behind a test client."""
    from aiohttp.test_utils import TestClient, TestServer

    from tests.auth_support import auth_settings, start_net
    from web.app import create_app

    net = await start_net(aiohttp_server, **overrides.pop("net", {}))
    settings = auth_settings(backend, net).with_overrides(
        forum_did=did_for(OWNER), writes_per_minute=overrides.pop("writes_per_minute", 1000),
        **overrides)
    services = bootstrap(settings)
    try:
        limiter = services.writer.limiter
        services.writer.limiter = WriteLimiter(1000, services.clock)  # the forum's own
        forum = await write_forum(services.writer, FakeRepoSession(OWNER))
        services.writer.limiter = limiter
        async with TestClient(TestServer(create_app(services))) as client:
            yield MemberApp(services, net, forum, client)
        await services.member_auth.aclose()
    finally:
        services.close()
