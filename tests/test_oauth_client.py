"""The OAuth client as a confidential client (private_key_jwt, its metadata and JWKS
served the way the web serves them), and its DPoP nonce handling."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from appview.auth.errors import ServerRefused
from appview.auth.jose_keys import new_key
from appview.auth.member_auth import MemberAuth
from appview.auth.oauth_metadata import CLIENT_METADATA_PATH, JWKS_PATH, confidential_client
from appview.auth.transport import DpopNonces, send_with_dpop
from appview.devnet.clock import DevClock
from tests.auth_support import POST, approve, auth_settings, record, start_net, url_of
from tests.conftest import Backend


async def client_site(aiohttp_server, served: dict[str, MemberAuth]) -> str:
    """A stand-in for the web's two routes, serving what ``MemberAuth`` builds."""
    app = web.Application()

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response(served["auth"].client_metadata())

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(served["auth"].jwks())

    app.router.add_get(CLIENT_METADATA_PATH, metadata)
    app.router.add_get(JWKS_PATH, jwks)
    return url_of(await aiohttp_server(app))


@pytest.mark.parametrize("published", [True, False])
async def test_a_confidential_client_signs_in_with_its_key(backend: Backend, aiohttp_server,
                                                           published: bool) -> None:
    net = await start_net(aiohttp_server)
    served: dict[str, MemberAuth] = {}
    base = await client_site(aiohttp_server, served)
    signing = new_key("k2")
    config = confidential_client(base, (signing, new_key("k1")), client_name="a test forum",
                                 allow_http=True)
    auth = MemberAuth(auth_settings(backend, net), net.clock, client=config)
    # the site publishes the configured keys, or (the mistake) only an old one
    served["auth"] = auth if published else MemberAuth(
        auth_settings(backend, net), net.clock,
        client=confidential_client(base, (new_key("k1"),), client_name="old",
                                   allow_http=True))
    try:
        assert auth.client_metadata()["token_endpoint_auth_method"] == "private_key_jwt"
        assert [k["kid"] for k in auth.jwks()["keys"]] == ["k2", "k1"]
        assert all("d" not in k for k in auth.jwks()["keys"])
        if not published:
            with pytest.raises(ServerRefused, match="no client key with kid 'k2'"):
                await auth.begin_oauth(net.alice.handle)
            return
        url = await auth.begin_oauth(net.alice.handle)
        assert "a test forum" in await page_text(url)
        signed_in = await auth.finish_oauth(await approve(url, net.alice))
        session = await auth.pds_session(signed_in.session_id)
        assert session is not None
        await session.create_record(POST, record("from a confidential client"))
        [grant] = net.pds.oauth.grants_of(net.alice.did)
        assert (grant.client_id, grant.auth_method) == (config.client_id, "private_key_jwt")
    finally:
        await auth.aclose()
        await served["auth"].aclose()


async def page_text(url: str) -> str:
    async with aiohttp.ClientSession() as browser, browser.get(url) as page:
        return await page.text()


async def test_a_new_nonce_is_asked_for_once_and_then_remembered(aiohttp_server) -> None:
    seen: list[str | None] = []
    app = web.Application()

    async def picky(request: web.Request) -> web.Response:
        # a server that wants a new nonce every time: the client must not loop
        seen.append(request.headers.get("DPoP"))
        return web.json_response({"error": "use_dpop_nonce"}, status=400,
                                 headers={"DPoP-Nonce": f"n{len(seen)}"})

    app.router.add_post("/token", picky)
    url = url_of(await aiohttp_server(app)) + "/token"
    nonces = DpopNonces()
    async with aiohttp.ClientSession() as http:
        answer = await send_with_dpop(http, new_key(), nonces, DevClock(), "POST", url,
                                      auth_server=True, form={"a": "b"})
    assert answer.status == 400 and len(seen) == 2
    assert nonces.get(url.removesuffix("/token")) == "n2"
