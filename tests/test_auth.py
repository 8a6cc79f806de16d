"""Who is asking and may they: bearer tokens, the sign-in cookie, permissions, CSRF."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from appview.auth.session_store import SESSION_ID_PREFIX
from tests.admin_support import admin_app, csrf_from
from tests.auth_support import approve
from tests.conftest import Backend
from tests.writes_support import member_app
from web import urls
from web.auth.access import MEMBER_COOKIE

ADMIN = urls.api_admin_projections()


async def test_bearer_tokens_answer_401_403_200(backend: Backend) -> None:
    async with admin_app(backend) as app:
        assert (await app.client.get(ADMIN)).status == 401
        bad = await app.client.get(ADMIN, headers=app.bearer("atbb_nope_nope"))
        assert bad.status == 401
        assert (await bad.json())["error"] == "Unauthorized"
        refused = await app.client.get(ADMIN, headers=app.bearer(app.nobody))
        assert refused.status == 403
        assert "manageForum" in (await refused.json())["message"]
        assert (await app.client.get(ADMIN, headers=app.bearer(app.operator))).status == 200
        [record] = [t for t in app.services.admin_tokens.list() if t.label == "operator"]
        app.services.admin_tokens.revoke(record.id)
        assert (await app.client.get(ADMIN, headers=app.bearer(app.operator))).status == 401


async def test_signing_in_sets_a_session_that_acts_as_the_token(backend: Backend) -> None:
    async with admin_app(backend) as app:
        form = await app.client.get(urls.signin(next_path="/api/admin/projections"))
        assert form.status == 200
        token = csrf_from(await form.text())
        wrong = await app.client.post(urls.SIGNIN, data={"token": "atbb_x_y", "next": ADMIN,
                                                         "csrf_token": token})
        again = await wrong.text()
        assert wrong.status == 401 and "not valid" in again
        assert f'name="next" value="{ADMIN}"' in again  # the second try goes there too
        forged = await app.client.post(urls.SIGNIN, data={"token": app.operator,
                                                          "csrf_token": "forged"},
                                       allow_redirects=False)
        assert forged.status == 403
        signed = await app.client.post(
            urls.SIGNIN, allow_redirects=False,
            data={"token": app.operator, "csrf_token": token, "next": ADMIN})
        assert signed.status == 303 and signed.headers["Location"] == ADMIN
        cookie = signed.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert app.operator not in cookie  # the cookie names the token, never holds it
        assert (await app.client.get(ADMIN)).status == 200
        account = await app.client.get(urls.signin())
        assert app.services.settings.forum_did in await account.text()
        # a session's forms need its CSRF token: as the header or as the form field
        session_token = csrf_from(await account.text())
        assert (await app.client.post(urls.signout())).status == 403
        out = await app.client.post(urls.signout(), data={"csrf_token": session_token},
                                    allow_redirects=False)
        assert out.status == 303
        assert (await app.client.get(ADMIN)).status == 401


async def test_a_signed_in_session_posts_with_the_csrf_header(backend: Backend) -> None:
    async with admin_app(backend) as app:
        token = csrf_from(await (await app.client.get(urls.signin())).text())
        await app.client.post(urls.SIGNIN, data={"token": app.operator, "csrf_token": token})
        page = await app.client.get(urls.signin())
        header = {"X-CSRF-Token": csrf_from(await page.text())}
        rebuild = urls.api_admin_projections_rebuild()
        assert (await app.client.post(rebuild)).status == 403
        assert (await app.client.post(rebuild, headers={"X-CSRF-Token": "x"})).status == 403
        started = await app.client.post(rebuild, headers=header)
        assert started.status == 202, await started.text()
        run = app.services.rebuilds.wait((await started.json())["id"], timeout=60)  # type: ignore[union-attr]
        assert run is not None and run.status == "completed"


async def test_sign_in_never_redirects_off_site(backend: Backend) -> None:
    async with admin_app(backend) as app:
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil", "javascript:x",
                       "/\t/evil.example", "\r\n//evil.example", "/\n\\evil.example"):
            app.client.session.cookie_jar.clear()  # signed out: the form's token again
            token = csrf_from(await (await app.client.get(urls.signin())).text())
            response = await app.client.post(
                urls.SIGNIN, allow_redirects=False,
                data={"token": app.operator, "csrf_token": token, "next": target})
            assert response.status == 303 and response.headers["Location"] == "/", target


async def test_a_forged_session_cookie_is_no_session(backend: Backend) -> None:
    async with admin_app(backend) as app:
        for forged in ("a.².b", "a.١٢.b", "a." + "9" * 5000 + ".b", "a..b", "..",
                       "a.1.b.c", "a.99999999999.x", "a.99999999999.\u00e9"):
            app.client.session.cookie_jar.update_cookies({"atbb_session": forged})
            page = await app.client.get(urls.signin())
            assert page.status == 200, forged  # read as signed out, never a 500
            assert "Sign out" not in await page.text()
            assert (await app.client.get(ADMIN)).status == 401


async def test_a_csrf_token_of_any_text_is_a_403(backend: Backend) -> None:
    async with admin_app(backend) as app:
        await app.client.get(urls.signin())
        for sent in ("\u00e9", "\u2603" * 64, "\x00", "a" * 5000):
            refused = await app.client.post(urls.signout(), data={"csrf_token": sent})
            assert refused.status == 403, sent
            assert "CSRF token is not valid" in await refused.text()


# --- members: OAuth and app passwords (the devnet PDS and its authorization server) ------


def member_cookie(response: Any) -> str:
    [cookie] = [str(c) for c in response.headers.getall("Set-Cookie", [])
                if str(c).startswith(f"{MEMBER_COOKIE}=")]
    return cookie


async def test_a_member_signs_in_with_oauth_joins_and_signing_out_revokes(
        backend: Backend, aiohttp_server: Any) -> None:
    async with member_app(backend, aiohttp_server) as app:
        alice = app.net.alice
        signed = await app.oauth_sign_in(alice, next_path="/b/x?page=2")
        assert signed.status == 303
        location = urlsplit(signed.headers["Location"])  # first time: join?
        assert (location.path, parse_qs(location.query)) == (urls.JOIN, {"next": ["/b/x?page=2"]})
        cookie = member_cookie(signed)
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        value = cookie.split(";", 1)[0].split("=", 1)[1]
        assert value.startswith(SESSION_ID_PREFIX) and "." not in value  # opaque, no token
        account = await (await app.client.get(urls.signin())).text()
        assert f"@{alice.handle}" in account and "AT Protocol OAuth" in account
        join_page = await app.client.get(urls.join("/b/x?page=2"))
        joining = await join_page.text()
        assert "Join Writers" in joining
        joined = await app.client.post(urls.join(), allow_redirects=False, data={
            "csrf_token": csrf_from(joining), "next": "/b/x?page=2"})
        assert joined.status == 303 and joined.headers["Location"] == "/b/x?page=2"
        assert await app.services.forum_writes.membership(alice.did) is not None
        assert "space.atbb.membership" in app.net.pds.repo(alice.did).collections()
        # a second sign-in goes straight where it was going
        again = await app.oauth_sign_in(alice, next_path="/")
        assert again.headers["Location"] == "/"
        out = await app.client.post(urls.signout(), allow_redirects=False,
                                    data={"csrf_token": csrf_from(account)})
        assert out.status == 403  # the token of the first session, which was replaced
        page = await (await app.client.get(urls.signin())).text()
        out = await app.client.post(urls.signout(), allow_redirects=False,
                                    data={"csrf_token": csrf_from(page)})
        assert out.status == 303
        assert f"{MEMBER_COOKIE}=\"\"" in member_cookie(out) or "Max-Age=0" in member_cookie(out)
        grants = app.net.pds.oauth.grants_of(alice.did)
        assert grants and grants[-1].revoked
        assert "Sign in" in await (await app.client.get(urls.signin())).text()


async def test_an_app_password_signs_in_and_a_wrong_one_keeps_the_form(
        backend: Backend, aiohttp_server: Any) -> None:
    async with member_app(backend, aiohttp_server) as app:
        bob = app.net.bob
        wrong = await app.password_sign_in(bob, "not-the-password")
        text = await wrong.text()
        assert wrong.status == 401 and "Could not sign in" in text
        assert f'value="{bob.handle}"' in text  # what was typed stays
        signed = await app.password_sign_in(bob)
        assert signed.status == 303 and signed.headers["Location"].startswith(urls.JOIN)
        assert "through an app password" in await (await app.client.get(urls.signin())).text()


async def test_a_pds_without_oauth_offers_the_app_password_form(
        backend: Backend, aiohttp_server: Any) -> None:
    async with member_app(backend, aiohttp_server, net={"enabled": False}) as app:
        token = await app.csrf()
        answer = await app.client.post(urls.signin_oauth(), data={
            "identifier": app.net.alice.handle, "csrf_token": token})
        text = await answer.text()
        assert answer.status == 200 and "does not offer OAuth" in text
        assert "<details class=\"signin-section\" open>" in text
        assert f'value="{app.net.alice.handle}"' in text


@pytest.mark.parametrize("tamper", ["state", "iss"])
async def test_a_callback_with_a_wrong_state_or_issuer_signs_nobody_in(
        backend: Backend, aiohttp_server: Any, tamper: str) -> None:
    async with member_app(backend, aiohttp_server) as app:
        token = await app.csrf()
        started = await app.client.post(urls.signin_oauth(), allow_redirects=False, data={
            "identifier": app.net.alice.handle, "csrf_token": token})
        query = await approve(started.headers["Location"], app.net.alice)
        query[tamper] = "https://evil.example" if tamper == "iss" else "forged"
        answer = await app.client.get(urls.OAUTH_CALLBACK, params=query,
                                      allow_redirects=False)
        assert answer.status == 400 and "did not complete" in await answer.text()
        assert not [c for c in answer.headers.getall("Set-Cookie", [])
                    if c.startswith(MEMBER_COOKIE)]
        assert app.services.member_auth.store.for_did(app.net.alice.did) == []


async def test_the_member_cookie_is_secure_behind_a_trusted_https_proxy(
        backend: Backend, aiohttp_server: Any) -> None:
    async with member_app(backend, aiohttp_server, trusted_proxies="127.0.0.1") as app:
        token = await app.csrf()
        signed = await app.client.post(urls.signin_password(), allow_redirects=False, data={
            "identifier": app.net.bob.handle, "password": app.net.bob.app_password,
            "csrf_token": token}, headers={"X-Forwarded-Proto": "https"})
        assert signed.status == 303
        assert "Secure" in member_cookie(signed)


async def test_the_oauth_documents_and_the_sign_in_pages_csp(
        backend: Backend, aiohttp_server: Any) -> None:
    async with member_app(backend, aiohttp_server) as app:
        assert (await app.client.get(urls.OAUTH_CLIENT_METADATA)).status == 404  # loopback
        keys = await app.client.get(urls.OAUTH_JWKS)
        assert keys.status == 200 and (await keys.json()) == {"keys": []}
        page = await app.client.get(urls.signin())
        assert "form-action 'self' https: http:" in page.headers["Content-Security-Policy"]
        other = await app.client.get("/")
        assert "form-action 'self';" in other.headers["Content-Security-Policy"]
