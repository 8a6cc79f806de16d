"""HTML error pages for page routes, JSON errors kept for the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services
from tests.admin_support import admin_app, csrf_from
from tests.conftest import Backend
from tests.web_forum import seeded_services
from web import urls
from web.app import create_app


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    with seeded_services(backend) as seeded:
        yield seeded


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def test_error_pages(services: Services) -> None:
    app = create_app(services)
    app.router.add_get("/boom", _boom)
    app.router.add_get("/api/boom", _boom)
    async with TestClient(TestServer(app)) as client:
        missing = await client.get("/no/such/page")
        assert missing.status == 404 and missing.content_type == "text/html"
        html = await missing.text()
        assert "<h1>404 Not Found</h1>" in html and '<main id="main"' in html
        api = await client.get("/api/no-such")
        assert api.status == 404 and (await api.json())["error"] == "NotFound"
        broken = await client.get("/boom")
        assert broken.status == 500 and broken.content_type == "text/html"
        body = await broken.text()
        assert "500" in body and "secret internals" not in body and "Traceback" not in body
        api_broken = await client.get("/api/boom")
        assert api_broken.status == 500 and (await api_broken.json())["error"]
        wrong_method = await client.post("/")
        assert wrong_method.status == 405 and "GET" in wrong_method.headers["Allow"]
        assert wrong_method.content_type == "text/html"


async def test_a_403_page_says_what_is_missing(backend: Backend) -> None:
    async with admin_app(backend) as app:
        refused = await app.client.get(urls.admin(), headers=app.bearer(app.nobody))
        assert refused.status == 403 and refused.content_type == "text/html"
        assert "manageForum permission" in await refused.text()
        missing = await app.client.post(urls.signout())
        assert missing.status == 403 and missing.content_type == "text/html"
        assert "CSRF token is missing" in await missing.text()
        await app.client.get(urls.signin())  # sets the pre-sign-in CSRF cookie
        forged = await app.client.post(urls.SIGNIN, data={"token": app.operator,
                                                          "csrf_token": "forged"})
        assert forged.status == 403 and "CSRF token is not valid" in await forged.text()


async def test_api_errors_keep_their_reason_and_allow(backend: Backend) -> None:
    async with admin_app(backend) as app:
        rebuild = urls.api_admin_projections_rebuild()
        token = csrf_from(await (await app.client.get(urls.signin())).text())
        await app.client.post(urls.SIGNIN, data={"token": app.operator, "csrf_token": token})
        missing = await app.client.post(rebuild)
        body = await missing.json()
        assert missing.status == 403 and body["error"] == "Forbidden"
        assert "CSRF token is missing" in body["message"] and "X-CSRF-Token" in body["message"]
        forged = await app.client.post(rebuild, headers={"X-CSRF-Token": "forged"})
        assert "CSRF token is not valid" in (await forged.json())["message"]
        wrong_method = await app.client.delete(urls.api_forum())
        assert wrong_method.status == 405
        assert {m.strip() for m in wrong_method.headers["Allow"].split(",")} == {"GET", "HEAD"}
        assert (await wrong_method.json())["error"] == "MethodNotAllowed"
