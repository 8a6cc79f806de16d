"""Site-wide routes: static files (vendored htmx), robots.txt, the theme stylesheet and the
no-JavaScript theme choice; on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.web_forum import (
    CSS_PAYLOADS,
    extended_forum,
    get_text,
    page_client,
    scenario,
    seeded_services,
)


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    with seeded_services(backend) as seeded:
        yield seeded


async def test_static_files_and_robots(services: Services) -> None:
    async with page_client(services) as client:
        htmx = await client.get("/static/vendor/htmx.min.js")
        assert htmx.status == 200 and "javascript" in htmx.content_type
        assert "htmx" in (await htmx.text())[:2000]
        css = await client.get("/static/style.css")
        assert css.status == 200 and css.content_type == "text/css"
        assert (await client.get("/static/theme.js")).status == 200
        assert (await client.get("/static/../pages.py")).status == 404
        robots = await get_text(client, "/robots.txt")
    assert "User-agent: *" in robots and "Disallow: /api/" in robots


async def test_theme_stylesheet_follows_the_policy(services: Services) -> None:
    async with page_client(services) as client:
        response = await client.get("/theme.css")
        css = await response.text()
        assert response.content_type == "text/css"
        again = await client.get("/theme.css", headers={"If-None-Match": response.headers["ETag"]})
        assert again.status == 304
    assert "--color-bg: #fbfaf7;" in css and "--color-bg: #16181c;" in css
    assert "prefers-color-scheme: dark" in css
    assert "border-radius" not in css, "cssOverrides are never rendered"


async def test_theme_choice_without_javascript(services: Services) -> None:
    async with page_client(services) as client:
        response = await client.post("/theme", data={"theme": "dark", "next": "/robots.txt"},
                                     allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/robots.txt"
        assert "theme=dark" in response.headers["Set-Cookie"]
        html = await get_text(client, "/")
        assert '<html lang="en" data-theme="dark">' in html
        assert '<option value="dark" selected>' in html
        reset = await client.post("/theme", data={"theme": "auto", "next": "/"},
                                  allow_redirects=False)
        assert reset.status == 303
        client.session.cookie_jar.clear()
        assert "data-theme" not in (await get_text(client, "/")).split(">", 2)[1]
        evil = await client.post("/theme", data={"theme": "<x>", "next": "//evil.example/"},
                                 allow_redirects=False)
        assert evil.headers["Location"] == "/"


async def test_the_theme_form_never_redirects_off_site(services: Services) -> None:
    async with page_client(services) as client:
        for attack, location in (("/\t/evil.example", "/"), ("/\n/evil.example", "/"),
                                 ("\x00//evil.example", "/"), (" /\\evil.example", "/"),
                                 ("https://evil.example/", "/"), ("javascript:alert(1)", "/"),
                                 ("/x\r\nSet-Cookie: a=b", "/xSet-Cookie:%20a=b")):
            response = await client.post("/theme", data={"theme": "dark", "next": attack},
                                         allow_redirects=False)
            assert response.status == 303, attack
            assert response.headers["Location"] == location, attack
        kept = await client.post("/theme", data={"theme": "dark", "next": "/b/x?page=2"},
                                 allow_redirects=False)
        assert kept.headers["Location"] == "/b/x?page=2"
        assert "Secure" not in kept.headers["Set-Cookie"]  # plain HTTP: no Secure cookie


async def test_hostile_theme_tokens_never_reach_the_stylesheet(backend: Backend) -> None:
    extended = extended_forum(scenario())
    with seeded_services(backend, extended.lines) as services:
        async with page_client(services) as client:
            css = await get_text(client, "/theme.css")
    for value in CSS_PAYLOADS.values():
        if value != "6px":
            assert value not in css
    for needle in ("url(", "expression", "javascript", "@import", "evil", "<"):
        assert needle not in css.lower()
