"""Who is asking and may they: bearer tokens, the sign-in cookie, permissions, CSRF."""

from __future__ import annotations

from tests.admin_support import admin_app, csrf_from
from tests.conftest import Backend
from web import urls

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
