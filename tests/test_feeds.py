"""Atom feeds of boards and topics: valid Atom with the required elements, anonymous
content only, conditional GETs; on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest

from appview.bootstrap import Services
from projections import queries_posts, queries_structure
from projections.ids import post_id, record_id
from projections.views import TopicSummary
from tests.conftest import Backend
from tests.web_forum import (
    Extended,
    executable_markup,
    extended_forum,
    page_client,
    scenario,
    seeded_services,
)

A = "{http://www.w3.org/2005/Atom}"
NOW = datetime.now(UTC)


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Extended]]:
    extended = extended_forum(scenario())
    with seeded_services(backend, extended.lines) as services:
        yield services, extended


def check_atom(document: bytes) -> ET.Element:
    """The RFC 4287 elements every feed and entry must have."""
    feed = ET.fromstring(document)
    assert feed.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        element = feed.find(f"{A}{name}")
        assert element is not None and element.text, name
    assert feed.find(f"{A}author/{A}name") is not None
    rels = {link.get("rel"): link.get("href") for link in feed.findall(f"{A}link")}
    assert rels.keys() == {"alternate", "self"}
    assert all(href and href.startswith("http://") for href in rels.values())
    for entry in feed.findall(f"{A}entry"):
        for name in ("id", "title", "updated"):
            element = entry.find(f"{A}{name}")
            assert element is not None and element.text, name
        assert entry.find(f"{A}author/{A}name") is not None
        link = entry.find(f"{A}link")
        assert link is not None and link.get("rel") == "alternate"
        content = entry.find(f"{A}content")
        assert content is not None and content.get("type") == "html"
        findings, scripts = executable_markup(content.text or "")
        assert findings == [] and scripts == []
        datetime.fromisoformat((entry.findtext(f"{A}updated") or "").replace("Z", "+00:00"))
    return feed


async def test_board_feed(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    board_id = record_id(extended.board_uri)
    async with page_client(services) as client:
        response = await client.get(f"/b/{board_id}/feed.atom")
        assert response.status == 200
        assert response.content_type == "application/atom+xml"
        feed = check_atom(await response.read())
        etag = response.headers["ETag"]
        again = await client.get(f"/b/{board_id}/feed.atom", headers={"If-None-Match": etag})
        assert again.status == 304
        assert (await client.get("/b/nope/feed.atom")).status == 404
    topics = services.queries.board_topics(board_id, now=NOW, limit=25)
    assert topics is not None
    assert [e.findtext(f"{A}id") for e in feed.findall(f"{A}entry")] == [
        t.uri for t in topics.items]
    assert feed.findtext(f"{A}id") == extended.board_uri


async def test_topic_feed_newest_first_without_hidden_posts(
    forum: tuple[Services, Extended],
) -> None:
    services, extended = forum
    topic_id = post_id(extended.long_topic_uri)
    async with page_client(services) as client:
        response = await client.get(f"/t/{topic_id}/feed.atom")
        assert response.status == 200
        feed = check_atom(await response.read())
        ids = [e.findtext(f"{A}id") for e in feed.findall(f"{A}entry")]
        assert len(ids) == 25
        whole = services.queries.topic(topic_id, now=NOW, limit=250)
        assert whole is not None
        assert ids == [r.uri for r in reversed(whole.replies.items[-25:])]
        # the hidden reply of the last XSS topic is never in its feed
        hidden_topic = post_id(extended.xss_topic_uris[-1])
        small = check_atom(await (await client.get(f"/t/{hidden_topic}/feed.atom")).read())
        assert [e.findtext(f"{A}id") for e in small.findall(f"{A}entry")] == [
            extended.xss_topic_uris[-1]]


async def test_the_forum_feed_lists_the_newest_topics_of_every_board(
        forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    async with page_client(services) as client:
        response = await client.get("/feed.atom")
        assert response.status == 200 and response.content_type == "application/atom+xml"
        feed = check_atom(await response.read())
        index = await (await client.get("/")).text()
        assert 'href="/feed.atom"' in index
    published = [e.findtext(f"{A}published") or "" for e in feed.findall(f"{A}entry")]
    assert len(published) == 25 and published == sorted(published, reverse=True)
    topics: list[TopicSummary] = []
    with services.queries.snapshot(now=NOW) as ctx:
        for category in queries_structure.categories(ctx, 0, 500).items:
            listed = queries_structure.category_boards(ctx, category.id, 0, 500)
            for board in (listed.items if listed else ()):
                topics += queries_posts.board_topics(ctx, board.uri, 0, 1000).items
    newest = sorted(topics, key=lambda t: (t.created_at or "", t.uri), reverse=True)[:25]
    assert [e.findtext(f"{A}id") for e in feed.findall(f"{A}entry")] == [
        t.uri for t in newest]
    assert feed.findtext(f"{A}title") and extended.board_uri
