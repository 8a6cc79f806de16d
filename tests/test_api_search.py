"""``GET /api/search`` and ``GET /api/posts/:id/versions`` (web/api/search.py): JSON as
api.md says, marks escaped, moderation per viewer, bad queries a 400 with a message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from appview.bootstrap import Services
from projections.ids import post_id
from tests.conftest import Backend
from tests.test_history import Edited, edited_forum
from tests.web_forum import MODERATOR, page_client, seeded_services
from web import urls


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Edited]]:
    edited = edited_forum()
    with seeded_services(backend, edited.lines) as services:
        yield services, edited


async def get_json(client: Any, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    body = await response.json()
    assert response.status == status, (path, body)
    return body


async def test_search_answers_marked_hits(forum) -> None:
    services, edited = forum
    async with page_client(services) as client:
        body = await get_json(client, urls.api_search("corrected words", limit=5))
    assert body["query"] == "corrected words" and body["sort"] == "relevance"
    assert body["total"] == 1 and body["totalCapped"] is False
    assert body["offset"] == 0 and body["limit"] == 5
    [hit] = body["results"]
    assert hit["uri"] == edited.topic and hit["kind"] == "topic"
    assert hit["url"] == urls.post(post_id(edited.topic))
    assert hit["title"] == "Final title" and hit["topicTitle"] == "Final title"
    assert "<mark>corrected</mark>" in hit["excerptHtml"]
    # the post's own markup is text: escaped in the HTML, as is in the plain excerpt
    assert "<script>" not in hit["excerptHtml"]
    assert hit["hiddenByModerator"] is False and hit["author"]["did"]


async def test_search_applies_moderation_per_viewer(forum) -> None:
    services, edited = forum
    async with page_client(services) as client:
        public = await get_json(client, urls.api_search("hide"))
    async with page_client(services, MODERATOR) as client:
        response = await client.get(urls.api_search("hide"))
        moderated = await response.json()
        assert response.headers["Cache-Control"] == "private, no-store"
    assert public["results"] == []
    [hit] = moderated["results"]
    assert hit["uri"] == edited.hidden_reply and hit["hiddenByModerator"] is True


@pytest.mark.parametrize("query", ['"open', "(((", "-", "%00", "x" * 300, "a " * 40])
async def test_bad_queries_are_a_400_with_a_message(forum, query) -> None:
    services, _edited = forum
    async with page_client(services) as client:
        response = await client.get(f"/api/search?q={quote(query) if query != '%00' else query}")
        body = await response.json()
    assert response.status in (200, 400), body
    if response.status == 400:
        assert body["error"] in ("BadQuery", "InvalidRequest") and body["message"]


async def test_missing_and_bad_parameters(forum) -> None:
    services, _edited = forum
    async with page_client(services) as client:
        assert (await get_json(client, "/api/search", 400))["error"] == "InvalidRequest"
        await get_json(client, "/api/search?q=a&offset=-1", 400)
        await get_json(client, "/api/search?q=a&limit=x", 400)
        body = await get_json(client, "/api/search?q=a&sort=best", 400)
        assert body["error"] == "BadQuery" and "sort" in body["message"]


async def test_versions_of_a_post(forum) -> None:
    services, edited = forum
    topic_id = post_id(edited.topic)
    async with page_client(services) as client:
        body = await get_json(client, urls.api_post_versions(topic_id))
        await get_json(client, urls.api_post_versions(post_id(edited.hidden_reply)), 404)
        await get_json(client, urls.api_post_versions(post_id(edited.deleted_reply)), 404)
    assert body["post"] == {"id": topic_id, "uri": edited.topic}
    assert [v["number"] for v in body["versions"]] == [1, 2, 3]
    assert [v["title"] for v in body["versions"]] == ["Draft title", "Draft title",
                                                      "Final title"]
    assert set(body["versions"][0]) == {"number", "rev", "cid", "title", "text",
                                        "createdAt", "updatedAt", "observedAt"}
    async with page_client(services, MODERATOR) as client:
        hidden = await get_json(client, urls.api_post_versions(post_id(edited.hidden_reply)))
    assert len(hidden["versions"]) == 2
