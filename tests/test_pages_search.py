"""The search page: query and filters in the URL, marked excerpts that carry no markup of
the posts, moderation per viewer, paging, and a message (never a 500) for a query that
cannot be searched; on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from appview.bootstrap import Services
from projections.ids import post_id, record_id
from tests.conftest import Backend
from tests.test_pages_xss import assert_inert
from tests.web_forum import (
    MODERATOR,
    Extended,
    extended_forum,
    get_text,
    page_client,
    scenario,
    seeded_services,
)
from web import urls

TOTAL = re.compile(r'role="status">(\d+) results? for')
HIT = re.compile(
    r'<li class="search-hit[^"]*">\s*<h2 class="search-hit-title"><a href="/p/([^"]+)"')


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Extended]]:
    extended = extended_forum(scenario())
    with seeded_services(backend, extended.lines) as services:
        yield services, extended


async def test_the_header_links_to_an_empty_search_form(forum) -> None:
    services, _extended = forum
    async with page_client(services) as client:
        index = await get_text(client, urls.index())
        assert f'href="{urls.search()}"' in index
        page = await get_text(client, urls.search())
        assert '<form class="search-form" method="get" action="/search"' in page
        assert "search-hit" not in page


async def test_hits_are_marked_and_inert(forum) -> None:
    services, extended = forum
    async with page_client(services) as client:
        for words in ("alert", "onerror", "script", "svg onload"):
            path = urls.search(words)
            html = await get_text(client, path)
            assert_inert(path, html)
            assert "<mark>" in html, words
            # every mark is ours: only <mark>, around text
            for marked in re.findall(r"<mark>(.*?)</mark>", html):
                assert "<" not in marked
        html = await get_text(client, urls.search("alert"))
        found = set(HIT.findall(html))
        assert post_id(extended.xss_topic_uris[0]) in found


async def test_the_query_and_filters_stay_in_the_url_and_the_form(forum) -> None:
    services, extended = forum
    board_id = record_id(extended.board_uri)
    async with page_client(services) as client:
        path = urls.search("plain topic", board=board_id, sort="date", type="topics")
        assert path.startswith("/search?q=plain+topic&")
        html = await get_text(client, path)
        assert 'value="plain topic"' in html
        assert f'<option value="{board_id}" selected>' in html
        assert '<option value="date" selected>' in html
        hits = HIT.findall(html)
        assert len(hits) == 20 and "30 results" in html
        second = await get_text(client, urls.search("plain topic", 2, board=board_id,
                                                    sort="date", type="topics"))
        more = HIT.findall(second)
        assert len(more) == 10 and not set(hits) & set(more)
        await get_text(client, urls.search("plain topic", 3, board=board_id), 404)


async def test_hidden_posts_are_found_by_moderators_only(forum) -> None:
    services, _extended = forum
    # the replies quoting the XSS topics; the last of them is hidden by a moderator
    words = "quoted wrote"
    async with page_client(services) as client:
        public = await get_text(client, urls.search(words, sort="date"))
    async with page_client(services, MODERATOR) as client:
        moderated = await get_text(client, urls.search(words, sort="date"))
    assert "Hidden by a moderator" in moderated and "Hidden by a moderator" not in public
    assert TOTAL.findall(moderated) == [str(int(TOTAL.findall(public)[0]) + 1)]
    newest = HIT.findall(moderated)[0]
    assert newest not in HIT.findall(public)


@pytest.mark.parametrize("query", [
    '"unbalanced', "x" * 8_000, "%00nul", "AND OR NOT", "NEAR(a b)", "-", "(((", "*",
    "title:alert", "' OR 1=1 --", "%E2%80%AE", "%ED%A0%80",
])
async def test_bad_queries_answer_a_page(forum, query) -> None:
    services, _extended = forum
    async with page_client(services) as client:
        response = await client.get(f"/search?q={query if '%' in query else quote(query)}")
        text = await response.text()
        assert response.status in (200, 400), text[:300]
        if response.status == 400:
            assert 'class="notice notice-error" role="alert"' in text


async def test_bad_filters_answer_a_message(forum) -> None:
    services, _extended = forum
    async with page_client(services) as client:
        for path in (urls.search("alert", since="yesterday"), urls.search("alert", sort="x"),
                     "/search?q=alert&page=0", "/search?q=alert&page=x"):
            response = await client.get(path)
            assert response.status == 400, path
