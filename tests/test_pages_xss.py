"""The XSS corpus through every field that reaches a page (post titles and bodies, quotes,
forum, category and board names and descriptions, theme tokens), read as an anonymous
reader and as a moderator: no executable markup survives anywhere; on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from xml.etree import ElementTree as ET

import pytest

from appview.bootstrap import Services
from projections.ids import post_id, record_id
from tests.conftest import Backend
from tests.web_forum import (
    MODERATOR,
    Extended,
    executable_markup,
    extended_forum,
    get_text,
    page_client,
    scenario,
    seeded_services,
)


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Extended]]:
    extended = extended_forum(scenario())
    with seeded_services(backend, extended.lines) as services:
        yield services, extended


class Hrefs(HTMLParser):
    """Every href attribute (parsed, so text that merely looks like one is not counted)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if name == "href" and value is not None]


def assert_inert(path: str, html: str) -> None:
    findings, scripts = executable_markup(html)
    assert findings == [], (path, findings)
    assert set(scripts) <= {"/static/vendor/htmx.min.js", "/static/theme.js",
                            "/static/compose.js", "/static/mod.js", "/static/live.js",
                            "/static/time.js"}, path
    assert "<script>alert" not in html.lower()
    assert "<svg" not in html.lower() and "<iframe" not in html.lower()


async def test_no_executable_markup_on_any_page(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    board_id = record_id(extended.board_uri)
    story = scenario()
    for viewer in (None, MODERATOR):
        async with page_client(services, viewer) as client:
            paths = ["/", f"/b/{board_id}", f"/b/{board_id}?page=2", f"/b/{board_id}?page=3",
                     f"/u/{story.forum.did}"]
            paths += [f"/t/{post_id(uri)}" for uri in extended.xss_topic_uris]
            for path in paths:
                html = await get_text(client, path)
                assert_inert(path, html)
            index = await get_text(client, "/")
            # the hostile names did reach the page, as text
            assert "Forum &lt;img src=x onerror=alert(1)&gt;" in index
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
            topic = await get_text(client, f"/t/{post_id(extended.xss_topic_uris[0])}")
            assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;" in topic


async def test_feeds_carry_only_inert_html(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    async with page_client(services) as client:
        paths = [f"/b/{record_id(extended.board_uri)}/feed.atom"]
        paths += [f"/t/{post_id(uri)}/feed.atom" for uri in extended.xss_topic_uris]
        for path in paths:
            response = await client.get(path)
            assert response.status == 200
            feed = ET.fromstring(await response.read())
            for element in feed.iter():
                if element.tag.endswith("content"):
                    assert_inert(path, element.text or "")
                for name, value in element.attrib.items():
                    assert not re.match(r"\s*(javascript|data|vbscript):", value, re.I), name


async def test_links_in_posts_are_only_safe_schemes(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    async with page_client(services) as client:
        for uri in extended.xss_topic_uris:
            html = await get_text(client, f"/t/{post_id(uri)}")
            collector = Hrefs()
            collector.feed(html)
            for href in collector.hrefs:
                assert href.startswith(("https://", "http://", "/", "mailto:", "#")), href
                assert not href.startswith("//"), href
