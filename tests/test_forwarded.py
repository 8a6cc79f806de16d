"""Forwarded headers believed from trusted proxies only: the scheme decides `Secure`
cookies, the host the feeds' links; every request's host is a host name."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.web_forum import seeded_services
from web import urls
from web.app import create_app
from web.forwarded import Hop, TrustedProxies, parse_address, valid_host


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    with seeded_services(backend) as seeded:
        yield seeded


@asynccontextmanager
async def client_behind(services: Services, trusted: str) -> AsyncIterator[TestClient[Any, Any]]:
    """A client whose connections come from 127.0.0.1, with TRUSTED_PROXIES=``trusted``."""
    settings = services.settings.with_overrides(trusted_proxies=trusted)
    app = create_app(dataclasses.replace(services, settings=settings))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _csrf_cookie(client: TestClient[Any, Any], **headers: str) -> str:
    """The Set-Cookie of the pre-sign-in CSRF cookie the sign-in form sets."""
    client.session.cookie_jar.clear()
    response = await client.get(urls.signin(), headers=headers)
    assert response.status == 200, await response.text()
    return response.headers["Set-Cookie"]


TLS_SAYINGS = [
    {"X-Forwarded-Proto": "https"},
    {"Forwarded": "for=203.0.113.7;proto=https"},
    {"Forwarded": 'for="[2001:db8::7]:4711";proto=HTTPS;host=forum.example'},
    {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
]


async def test_a_trusted_proxy_saying_https_makes_cookies_secure(services: Services) -> None:
    async with client_behind(services, "127.0.0.1") as client:
        assert "Secure" not in await _csrf_cookie(client)  # no saying: plain HTTP
        for headers in TLS_SAYINGS:
            assert "Secure" in await _csrf_cookie(client, **headers), headers
        theme = await client.post("/theme", data={"theme": "dark", "next": "/"},
                                  headers={"X-Forwarded-Proto": "https"},
                                  allow_redirects=False)
        assert "Secure" in theme.headers["Set-Cookie"]
        assert "Secure" not in await _csrf_cookie(client, **{"X-Forwarded-Proto": "http"})


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8, ::1", "192.0.2.1"])
async def test_anybody_else_saying_https_is_ignored(services: Services, trusted: str) -> None:
    async with client_behind(services, trusted) as client:
        for headers in TLS_SAYINGS:
            assert "Secure" not in await _csrf_cookie(client, **headers), headers


async def test_feed_links_follow_the_forwarded_host(services: Services) -> None:
    category = services.queries.categories().items[0]
    boards = services.queries.category_boards(category.id, now=datetime.now(UTC))
    assert boards is not None
    feed = urls.board_feed(boards.items[0].id)
    async with client_behind(services, "127.0.0.0/8") as client:
        proxied = await client.get(feed, headers={"X-Forwarded-Proto": "https",
                                                  "X-Forwarded-Host": "forum.example"})
        assert 'href="https://forum.example/b/' in await proxied.text()
        # a host that is no host name is not believed, even from a trusted proxy
        smuggled = await client.get(feed, headers={"X-Forwarded-Host": "evil.example/x?"})
        assert "evil.example" not in await smuggled.text()
    async with client_behind(services, "") as client:
        direct = await client.get(feed, headers={"X-Forwarded-Host": "forum.example"})
        assert "forum.example" not in await direct.text()


@pytest.mark.parametrize("host", ["x:y:z", "evil.example/x", "a b", "evil.example:99999",
                                  "[::g]", "a@b", ""])
async def test_a_host_header_that_is_no_host_is_a_400(services: Services, host: str) -> None:
    async with client_behind(services, "") as client:
        page = await client.get("/", headers={"Host": host})
        assert page.status == 400 and page.content_type == "text/html"
        assert "Host header" in await page.text()
        api = await client.get("/api/forum", headers={"Host": host})
        assert api.status == 400 and "Host header" in (await api.json())["message"]
        assert (await client.get("/", headers={"Host": "forum.example:8443"})).status == 200


# -- the chain ------------------------------------------------------------------------------

PROXIES = TrustedProxies([ipaddress.ip_network("10.0.0.0/8"),
                          ipaddress.ip_network("2001:db8::/32")])


def test_the_chain_is_read_from_the_nearest_proxy_while_it_is_trusted() -> None:
    outer = Hop("203.0.113.7", "https", "forum.example")
    inner = Hop("10.0.0.2", "http", "appview.internal")
    assert PROXIES.client_view("10.0.0.1", [outer, inner]) == outer
    # a hop sent by an untrusted client ends the walk: what it says of its own client
    # (a forgery, perhaps) is not believed
    forged = Hop("198.51.100.1", "https", "evil.example")
    nearest = Hop("198.51.100.9", "http", None)
    assert PROXIES.client_view("10.0.0.1", [forged, nearest]) == nearest
    assert PROXIES.client_view("198.51.100.9", [outer]) is None
    assert PROXIES.client_view(None, [outer]) is None
    assert PROXIES.client_view("10.0.0.1", []) is None
    # a hop stating no scheme keeps the nearer one's
    assert PROXIES.client_view("10.0.0.1", [Hop("203.0.113.7"), Hop("10.0.0.2", "https")]) \
        == Hop("203.0.113.7", "https", None)


def test_addresses_and_hosts_are_parsed_strictly() -> None:
    assert str(parse_address("203.0.113.7:443")) == "203.0.113.7"
    assert str(parse_address('"[2001:db8::1]:4711"')) == "2001:db8::1"
    assert str(parse_address("::ffff:10.0.0.1")) == "10.0.0.1"
    for junk in ("unknown", "_hidden", "", None, "1.2.3.4.5", "[::1"):
        assert parse_address(junk) is None
    assert PROXIES.trusts("::ffff:10.1.2.3") and not PROXIES.trusts("11.0.0.1")
    for good in ("forum.example", "forum.example:8080", "127.0.0.1:1", "[::1]:80", "app_1",
                 "localhost", "forum.example."):
        assert valid_host(good), good
    for bad in ("", "a/b", "a?b", "a#b", "a@b", "a b", "[::1", "[zz::1]", ":80", "a:0",
                "a:65536", "a:b", "-a.example", "a" * 64):
        assert not valid_host(bad), bad


@given(st.text())
def test_a_valid_host_makes_an_origin_with_that_host_and_nothing_more(value: str) -> None:
    if valid_host(value):
        from yarl import URL

        url = URL.build(scheme="https", authority=value)
        assert url.path in ("", "/") and not url.query_string and not url.fragment
        assert url.user is None and url.raw_host is not None
