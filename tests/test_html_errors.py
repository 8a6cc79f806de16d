"""HTML error pages for page routes, JSON errors kept for the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.web_forum import seeded_services
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
