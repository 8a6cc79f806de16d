"""Members sign in with AT Protocol OAuth against the devnet PDS's authorization server,
driven over HTTP end to end; or with an app password; then write through their session."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from appview.auth.errors import CallbackError, MetadataError, NoOAuth, ServerRefused, SessionExpired
from appview.auth.jose_keys import new_key, private_jwk
from appview.auth.member_auth import MemberAuth, client_config
from appview.auth.oauth_metadata import loopback_client
from appview.auth.session_store import SessionStore, StoredSession
from appview.devnet.clock import DevClock
from appview.settings import Settings, SettingsError
from appview.side_db import side_transaction
from tests.auth_support import (
    POST,
    REDIRECT,
    approve,
    auth_settings,
    member_auth,
    record,
    start_net,
    url_of,
)
from tests.conftest import Backend


async def test_the_whole_oauth_flow_writes_refreshes_and_revokes(backend: Backend,
                                                                aiohttp_server) -> None:
    net = await start_net(aiohttp_server, access_ttl_s=120)
    auth = member_auth(auth_settings(backend, net), net)
    try:
        url = await auth.begin_oauth(net.alice.handle, app_state="/b/general")
        assert url.startswith(net.pds_url + "/oauth/authorize?")
        signed_in = await auth.finish_oauth(await approve(url, net.alice))
        assert (signed_in.did, signed_in.handle, signed_in.kind, signed_in.app_state) == (
            net.alice.did, net.alice.handle, "oauth", "/b/general")

        session = await auth.pds_session(signed_in.session_id)
        assert session is not None and session.pds_url == net.pds_url
        written = await session.create_record(POST, record("hello through OAuth"))
        assert written["uri"].startswith(f"at://{net.alice.did}/{POST}/")
        stored = net.pds.repo(net.alice.did).get(POST, written["uri"].rsplit("/", 1)[1])
        assert stored is not None and stored.value["text"] == "hello through OAuth"

        # the access token expires (the server's clock, and the appview's, move on)
        net.clock.advance(121)
        before = auth.store.get(signed_in.session_id)
        again = await session.create_record(POST, record("after the expiry"))
        assert again["uri"] != written["uri"]
        after = auth.store.get(signed_in.session_id)
        assert before is not None and after is not None and after.version == before.version + 1
        assert after.secret["tokens"]["access_token"] != before.secret["tokens"]["access_token"]

        [grant] = net.pds.oauth.grants_of(net.alice.did)
        assert not grant.revoked
        assert await auth.sign_out(signed_in.session_id)
        assert grant.revoked
        assert await auth.pds_session(signed_in.session_id) is None
        with pytest.raises(SessionExpired):
            await session.create_record(POST, record("after signing out"))
    finally:
        await auth.aclose()


def sessions_of(auth: MemberAuth, did: str) -> list[StoredSession]:
    return auth.store.for_did(did)


def raw_rows(settings: Settings) -> list[str]:
    """Every row of the session tables, as text (opening the store makes them, as any
    process of the appview would)."""
    SessionStore(settings, DevClock(), lifetime_seconds=1.0)
    with side_transaction(settings) as execute:
        rows = execute("SELECT * FROM auth_sessions", ())
        rows += execute("SELECT * FROM auth_pending", ())
    return [" ".join(str(value) for value in row) for row in rows]


async def test_a_token_the_pds_calls_expired_is_refreshed_once_and_the_call_retried(
        backend: Backend, aiohttp_server) -> None:
    net = await start_net(aiohttp_server, access_ttl_s=120)
    # the appview's clock does not see the expiry coming: the PDS's 401 tells it
    auth = MemberAuth(auth_settings(backend, net), DevClock(), client=loopback_client(REDIRECT))
    try:
        url = await auth.begin_oauth(net.alice.did)
        signed_in = await auth.finish_oauth(await approve(url, net.alice))
        session = await auth.pds_session(signed_in.session_id)
        assert session is not None
        net.clock.advance(121)
        written = await session.create_record(POST, record("retried"))
        assert written["uri"].startswith(f"at://{net.alice.did}/")
        stored = auth.store.get(signed_in.session_id)
        assert stored is not None and stored.version == 2
        [grant] = net.pds.oauth.grants_of(net.alice.did)
        assert grant.refresh_token == stored.secret["tokens"]["refresh_token"]
    finally:
        await auth.aclose()


async def test_a_pds_url_is_a_sign_in_input_too(backend: Backend, aiohttp_server) -> None:
    net = await start_net(aiohttp_server)
    auth = member_auth(auth_settings(backend, net), net)
    try:
        url = await auth.begin_oauth(net.pds_url)
        signed_in = await auth.finish_oauth(await approve(url, net.bob))
        assert (signed_in.did, signed_in.handle) == (net.bob.did, net.bob.handle)
    finally:
        await auth.aclose()


@pytest.mark.parametrize("tamper", ["state", "iss", "replay", "deny"])
async def test_a_callback_not_to_accept_is_refused_and_stores_nothing(
        backend: Backend, aiohttp_server, tamper: str) -> None:
    net = await start_net(aiohttp_server)
    settings = auth_settings(backend, net)
    auth = member_auth(settings, net)
    try:
        url = await auth.begin_oauth(net.alice.handle)
        params = await approve(url, net.alice, decision="deny" if tamper == "deny" else
                               "approve")
        if tamper == "state":
            params["state"] = "forged-" + params["state"]
        elif tamper == "iss":
            params["iss"] = "https://evil.example"
        elif tamper == "replay":
            await auth.finish_oauth(params)
            auth.store.delete(auth.store.for_did(net.alice.did)[0].key)
        with pytest.raises(CallbackError) as refused:
            await auth.finish_oauth(params)
        assert {"state": "unknown", "iss": "evil.example", "replay": "unknown",
                "deny": "denied"}[tamper] in str(refused.value)
        assert sessions_of(auth, net.alice.did) == []
        if tamper != "state":  # the pending sign-in was spent with the refusal
            assert raw_rows(settings) == []
    finally:
        await auth.aclose()


async def test_tokens_for_another_account_are_refused_and_revoked(backend: Backend,
                                                                 aiohttp_server) -> None:
    net = await start_net(aiohttp_server)
    settings = auth_settings(backend, net)
    auth = member_auth(settings, net)
    try:
        url = await auth.begin_oauth(net.alice.handle)
        params = await approve(url, net.bob)  # bob signs in on alice's request
        with pytest.raises(CallbackError, match=f"for {net.bob.did}, not for {net.alice.did}"):
            await auth.finish_oauth(params)
        assert raw_rows(settings) == []
        [grant] = net.pds.oauth.grants_of(net.bob.did)
        assert grant.revoked
    finally:
        await auth.aclose()


async def test_an_authorization_server_not_its_own_issuer_is_refused(
        backend: Backend, aiohttp_server) -> None:
    net = await start_net(aiohttp_server)
    impostor = web.Application()

    async def resource(request: web.Request) -> web.Response:
        origin = f"http://{request.host}"
        return web.json_response({"resource": origin, "authorization_servers": [origin]})

    async def server(request: web.Request) -> web.Response:
        return web.json_response({**net.pds.oauth.server_metadata(),
                                  "issuer": net.pds_url})

    impostor.router.add_get("/.well-known/oauth-protected-resource", resource)
    impostor.router.add_get("/.well-known/oauth-authorization-server", server)
    impostor_url = url_of(await aiohttp_server(impostor))
    settings = auth_settings(backend, net)
    auth = member_auth(settings, net)
    try:
        with pytest.raises(MetadataError, match="its issuer"):
            await auth.begin_oauth(impostor_url)
        assert raw_rows(settings) == []
    finally:
        await auth.aclose()


async def test_a_pds_without_oauth_leads_to_app_password_sign_in(backend: Backend,
                                                                aiohttp_server) -> None:
    net = await start_net(aiohttp_server, enabled=False)
    settings = auth_settings(backend, net)
    auth = member_auth(settings, net)
    try:
        with pytest.raises(NoOAuth) as no_oauth:
            await auth.begin_oauth(net.alice.handle)
        assert (no_oauth.value.did, no_oauth.value.handle, no_oauth.value.pds_url) == (
            net.alice.did, net.alice.handle, net.pds_url)
        assert raw_rows(settings) == []
        with pytest.raises(ServerRefused, match="Invalid identifier or password"):
            await auth.sign_in_with_password(net.alice.handle, "wrong")
        assert raw_rows(settings) == []
        signed_in = await auth.sign_in_with_password(net.alice.handle, net.alice.app_password)
        assert (signed_in.did, signed_in.kind) == (net.alice.did, "password")
        session = await auth.pds_session(signed_in.session_id)
        assert session is not None and session.kind == "password"
        written = await session.create_record(POST, record("by app password"))
        fetched = await session.get_record(POST, written["uri"].rsplit("/", 1)[1])
        assert fetched["value"]["text"] == "by app password"
        stored = auth.store.get(signed_in.session_id)
        assert stored is not None
        renewed = await auth.refresh(stored)
        assert renewed.version == 2 and renewed.secret["refresh_jwt"] != \
            stored.secret["refresh_jwt"]
        assert await auth.sign_out(signed_in.session_id)
        assert raw_rows(settings) == []
    finally:
        await auth.aclose()


async def test_sessions_survive_reopening_and_hold_no_secret_in_clear(
        backend: Backend, aiohttp_server) -> None:
    net = await start_net(aiohttp_server)
    settings = auth_settings(backend, net)
    first = member_auth(settings, net)
    try:
        url = await first.begin_oauth(net.alice.handle)
        signed_in = await first.finish_oauth(await approve(url, net.alice))
        also = await first.sign_in_with_password(net.alice.did, net.alice.app_password)
        record_ = first.store.get(signed_in.session_id)
        assert record_ is not None
    finally:
        await first.aclose()
    secrets_ = [record_.secret["tokens"]["access_token"],
                record_.secret["tokens"]["refresh_token"], record_.secret["dpop_jwk"]["d"],
                signed_in.session_id, also.session_id]
    for row in raw_rows(settings):
        for secret in secrets_:
            assert secret not in row
    second = member_auth(settings, net)  # as after a restart
    try:
        assert [s.kind for s in second.store.for_did(net.alice.did)] == ["password", "oauth"]
        session = await second.pds_session(signed_in.session_id)
        assert session is not None
        await session.create_record(POST, record("after a restart"))
    finally:
        await second.aclose()


def test_the_client_follows_public_url_and_its_keys() -> None:
    assert client_config(Settings(port=9000)).client_id.startswith("http://localhost?")
    assert client_config(Settings(port=9000)).redirect_uri == \
        "http://127.0.0.1:9000/oauth/callback"
    assert client_config(Settings(public_url="http://127.0.0.1:7000/")).redirect_uri == \
        "http://127.0.0.1:7000/oauth/callback"
    keys = json.dumps({"keys": [private_jwk(new_key("2025-01"))]})
    production = client_config(Settings(public_url="https://forum.example",
                                        oauth_client_keys=keys))
    assert production.client_id == "https://forum.example/oauth/client-metadata.json"
    assert production.confidential and not production.allow_http
    for settings, problem in [
        (Settings(public_url="https://forum.example"), "needs OAUTH_CLIENT_KEYS"),
        (Settings(public_url="https://forum.example", oauth_client_keys="[1]"),
         "OAUTH_CLIENT_KEYS"),
        (Settings(public_url="http://forum.example"), "loopback"),
    ]:
        with pytest.raises(SettingsError, match=problem):
            client_config(settings)


async def test_a_session_is_read_once_per_few_seconds_and_signing_out_here_ends_it_at_once(
        backend: Backend, aiohttp_server) -> None:
    net = await start_net(aiohttp_server)
    settings = auth_settings(backend, net)
    auth = member_auth(settings, net)
    try:
        first = await auth.sign_in_with_password(net.bob.did, net.bob.app_password)
        second = await auth.sign_in_with_password(net.bob.did, net.bob.app_password)
        assert await auth.pds_session(first.session_id) is not None  # read, remembered
        # another process signs the first out: within the few seconds, this one still
        # knows it (the member's server has revoked its tokens anyway)
        [row] = [s for s in auth.store.for_did(net.bob.did)
                 if s.key == (await auth.pds_session(first.session_id)).key]  # type: ignore[union-attr]
        auth.store.delete(row.key)
        assert await auth.pds_session(first.session_id) is not None
        # signing out in this process ends it at once
        assert await auth.pds_session(second.session_id) is not None
        assert await auth.sign_out(second.session_id)
        assert await auth.pds_session(second.session_id) is None
        assert await auth.pds_session("atbbs_" + "x" * 200) is None  # not even looked up
    finally:
        await auth.aclose()
