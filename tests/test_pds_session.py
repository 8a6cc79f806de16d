"""Writing through a member's session: an expired token is refreshed once and the call
sent again (one refresh for calls racing each other), a refusal comes back in the
PDS's words, and a session the PDS will not renew is dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from appview.auth.errors import SessionExpired
from appview.auth.member_auth import MemberAuth
from appview.auth.oauth_metadata import loopback_client
from appview.auth.pds_session import XrpcFailure
from appview.devnet.clock import DevClock
from appview.settings import Settings
from tests.auth_support import POST, REDIRECT, record, url_of
from tests.conftest import Backend

DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


class FakePds:
    """createRecord and refreshSession as a PDS answers them to app-password sessions."""

    def __init__(self, *, renew: bool = True) -> None:
        self.renew = renew
        self.refreshes = 0
        self.writes: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/xrpc/com.atproto.repo.createRecord", self._create)
        app.router.add_post("/xrpc/com.atproto.server.refreshSession", self._refresh)
        return app

    async def _create(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "")
        if token != "Bearer access-2":
            return web.json_response({"error": "ExpiredToken", "message": "Token has expired"},
                                     status=400)
        body = await request.json()
        if body["record"].get("text") == "":
            return web.json_response({"error": "InvalidRequest",
                                      "message": "Record/text must not be empty"}, status=400)
        self.writes.append(body)
        return web.json_response({"uri": f"at://{DID}/{POST}/{len(self.writes)}", "cid": "c"})

    async def _refresh(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)  # long enough for racing calls to meet here
        self.refreshes += 1
        if not self.renew or request.headers.get("Authorization") != "Bearer refresh-1":
            return web.json_response({"error": "ExpiredToken",
                                      "message": "Token has been revoked"}, status=400)
        return web.json_response({"did": DID, "handle": "alice.test",
                                  "accessJwt": "access-2", "refreshJwt": "refresh-2"})


def settings_of(backend: Backend) -> Settings:
    if backend.name == "sqlite":
        return Settings(data_dir=backend.tmp / "data")
    return Settings(data_dir=backend.tmp / "data", database_url=backend.url,
                    database_schema=backend.schema or "public")


async def signed_in(backend: Backend, aiohttp_server, pds: FakePds) -> tuple[MemberAuth, str]:
    url = url_of(await aiohttp_server(pds.app()))
    auth = MemberAuth(settings_of(backend), DevClock(), client=loopback_client(REDIRECT))
    session_id, _ = auth.store.create(did=DID, kind="password", handle="alice.test",
                                      pds_url=url, secret={"access_jwt": "access-1",
                                                           "refresh_jwt": "refresh-1"})
    return auth, session_id


async def test_racing_calls_share_one_refresh_and_both_go_through(backend: Backend,
                                                                  aiohttp_server) -> None:
    pds = FakePds()
    auth, session_id = await signed_in(backend, aiohttp_server, pds)
    try:
        one, two = await auth.pds_session(session_id), await auth.pds_session(session_id)
        assert one is not None and two is not None
        written = await asyncio.gather(one.create_record(POST, record("a")),
                                       two.create_record(POST, record("b")))
        assert sorted(w["uri"][-1] for w in written) == ["1", "2"]
        assert pds.refreshes == 1
        stored = auth.store.get(session_id)
        assert stored is not None and stored.secret["access_jwt"] == "access-2"
        with pytest.raises(XrpcFailure) as refused:
            await one.create_record(POST, record(""))
        assert (refused.value.status, refused.value.error) == (400, "InvalidRequest")
        assert "Record/text must not be empty" in str(refused.value)
    finally:
        await auth.aclose()


async def test_a_session_the_pds_will_not_renew_is_dropped(backend: Backend,
                                                           aiohttp_server) -> None:
    pds = FakePds(renew=False)
    auth, session_id = await signed_in(backend, aiohttp_server, pds)
    try:
        session = await auth.pds_session(session_id)
        assert session is not None
        with pytest.raises(SessionExpired, match="Token has been revoked"):
            await session.create_record(POST, record("lost"))
        assert auth.store.get(session_id) is None and pds.writes == []
        assert await auth.pds_session_for_did(DID) is None
    finally:
        await auth.aclose()
