"""Security headers on every kind of response."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.web_forum import page_client, seeded_services
from web.security import SECURITY_HEADERS


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    with seeded_services(backend) as seeded:
        yield seeded


async def test_every_response_carries_the_headers(services: Services) -> None:
    async with page_client(services) as client:
        for path, status in (("/", 200), ("/api/forum", 200), ("/static/style.css", 200),
                             ("/theme.css", 200), ("/robots.txt", 200), ("/nope", 404),
                             ("/api/nope", 404), ("/p/nope", 404)):
            response = await client.get(path, allow_redirects=False)
            assert response.status == status, path
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.get(name) == value, (path, name)
        redirect = await client.post("/theme", data={"theme": "dark"}, allow_redirects=False)
        assert redirect.status == 303 and "Content-Security-Policy" in redirect.headers
        etag = (await client.get("/")).headers["ETag"]
        cached = await client.get("/", headers={"If-None-Match": etag})
        assert cached.status == 304 and cached.headers["X-Frame-Options"] == "DENY"


def test_the_policy_forbids_inline_script_and_framing() -> None:
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
