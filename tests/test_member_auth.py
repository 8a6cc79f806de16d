"""Members sign in with AT Protocol OAuth against the devnet PDS's authorization server,
driven over HTTP end to end; or with an app password; then write through their session."""

from __future__ import annotations

import pytest

from appview.auth.errors import CallbackError, NoOAuth, SessionExpired
from tests.auth_support import POST, approve, auth_settings, member_auth, record, start_net
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
