"""The public JSON read endpoints on a seeded forum, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services, bootstrap
from appview.devnet.scenario import build_scenario, scenario_to_jetstream_lines
from appview.settings import Settings
from projections.runner import project_to_head
from tests.conftest import Backend
from web.app import create_app


def settings_for(backend: Backend, forum_did: str) -> Settings:
    settings = Settings(data_dir=backend.tmp / "data", forum_did=forum_did)
    if backend.name == "postgresql":
        assert backend.schema is not None
        settings = settings.with_overrides(database_url=backend.url,
                                           database_schema=backend.schema)
    return settings


@pytest.fixture
def seeded(backend: Backend) -> Iterator[Services]:
    scenario = build_scenario(5, "small", real_dids=False)
    services = bootstrap(settings_for(backend, scenario.forum.did))
    try:
        appender = services.appender(batch_size=500)
        for number, line in enumerate(
            scenario_to_jetstream_lines(scenario, start_time_us=scenario.start_us), start=1
        ):
            appender.feed(line, number)
        appender.flush()
        assert appender.stats.errors == 0 and appender.stats.invalid == 0
        project_to_head(services.event_log, services.projections)
        yield services
    finally:
        services.close()


@pytest.fixture
async def client(seeded: Services) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(seeded))) as test_client:
        yield test_client


async def _json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, (path, await response.text())
    return await response.json()


async def test_forum_categories_and_boards(client: TestClient[Any, Any]) -> None:
    forum = await _json(client, "/api/forum")
    assert forum["name"]
    assert {"id", "did", "name", "description", "indexedAt"} <= forum.keys()
    categories = await _json(client, "/api/categories")
    assert categories["total"] == len(categories["categories"]) == 3
    orders = [c["sortOrder"] for c in categories["categories"]]
    assert orders == sorted(orders)
    first = categories["categories"][0]
    assert (await _json(client, f"/api/categories/{first['id']}"))["uri"] == first["uri"]
    boards = await _json(client, f"/api/categories/{first['id']}/boards")
    assert boards["boards"], "every category has boards"
    for board in boards["boards"]:
        assert board["categoryUri"] == first["uri"]
        assert board["postCount"] >= board["topicCount"] >= 0
        assert (await _json(client, f"/api/boards/{board['id']}"))["uri"] == board["uri"]


async def test_board_topics_pages_partition_the_list(client: TestClient[Any, Any]) -> None:
    categories = await _json(client, "/api/categories")
    category_id = categories["categories"][0]["id"]
    board = (await _json(client, f"/api/categories/{category_id}/boards"))["boards"][0]
    everything = await _json(client, f"/api/boards/{board['id']}/topics?limit=100")
    assert everything["total"] == board["topicCount"] == len(everything["topics"])
    seen: list[str] = []
    for offset in range(0, everything["total"], 3):
        page = await _json(client, f"/api/boards/{board['id']}/topics?offset={offset}&limit=3")
        assert page["offset"] == offset and page["limit"] == 3
        seen.extend(t["id"] for t in page["topics"])
    assert seen == [t["id"] for t in everything["topics"]]
    pinned = [t["pinned"] for t in everything["topics"]]
    assert pinned == sorted(pinned, reverse=True), "pinned topics first"
    for topic in everything["topics"]:
        assert {"id", "did", "rkey", "uri", "title", "text", "author", "createdAt",
                "replyCount", "lastReplyAt", "locked", "pinned"} <= topic.keys()


async def test_topic_with_paged_replies(client: TestClient[Any, Any]) -> None:
    category_id = (await _json(client, "/api/categories"))["categories"][0]["id"]
    board = (await _json(client, f"/api/categories/{category_id}/boards"))["boards"][0]
    topics = (await _json(client, f"/api/boards/{board['id']}/topics?limit=100"))["topics"]
    busiest = max(topics, key=lambda t: t["replyCount"])
    whole = await _json(client, f"/api/topics/{busiest['id']}?limit=250")
    assert whole["topicId"] == busiest["id"]
    assert whole["post"]["uri"] == busiest["uri"]
    assert whole["total"] == len(whole["replies"])
    positions = [r["position"] for r in whole["replies"]]
    assert positions == sorted(positions)
    halves = [await _json(client, f"/api/topics/{busiest['id']}?offset={o}&limit=2")
              for o in range(0, whole["total"], 2)]
    assert [r["id"] for h in halves for r in h["replies"]] == [r["id"] for r in whole["replies"]]
    for reply in whole["replies"]:
        # An anonymous reader never receives hidden or banned content.
        assert not reply["hiddenByModerator"] and not reply["authorBanned"]


async def test_bad_input_is_a_clear_error(client: TestClient[Any, Any]) -> None:
    error = await _json(client, "/api/boards/nope/topics", 404)
    assert error["error"] == "NotFound" and error["message"]
    error = await _json(client, "/api/topics/nope?offset=abc", 400)
    assert error["error"] == "InvalidRequest"
    error = await _json(client, "/api/categories?limit=-1", 400)
    assert "limit" in error["message"]
    await _json(client, "/api/nothing-here", 404)


BAD_INTEGERS = ("9223372036854775808", "99999999999999999999999", "-1", "abc", "1e3",
                "١٢", "²", " 1", "1000000001")


async def test_every_integer_parameter_is_range_checked(client: TestClient[Any, Any]) -> None:
    category = (await _json(client, "/api/categories"))["categories"][0]["id"]
    board = (await _json(client, f"/api/categories/{category}/boards"))["boards"][0]["id"]
    topic = (await _json(client, f"/api/boards/{board}/topics"))["topics"][0]["id"]
    listings = ("/api/categories", f"/api/categories/{category}/boards",
                f"/api/boards/{board}/topics", f"/api/topics/{topic}")
    for path in listings:
        for name in ("offset", "limit"):
            for bad in BAD_INTEGERS:
                if (name, bad) == ("offset", "-1"):
                    continue  # clamped to 0, as the original does (below)
                error = await _json(client, f"{path}?{urlencode({name: bad})}", 400)
                assert error["error"] == "InvalidRequest", (path, name, bad)
                assert error["message"].startswith(f"{name} must be a whole number"), error
        assert (await _json(client, f"{path}?offset=-1"))["offset"] == 0
        # the largest accepted values reach the database and come back empty
        page = await _json(client, f"{path}?offset=1000000000&limit=1000000000")
        assert page["offset"] == 1000000000


async def test_theme_policy_and_themes_carry_etags(client: TestClient[Any, Any]) -> None:
    policy_response = await client.get("/api/theme-policy")
    assert policy_response.status == 200
    etag = policy_response.headers["ETag"]
    assert policy_response.headers["Cache-Control"] == "public, max-age=300"
    again = await client.get("/api/theme-policy", headers={"If-None-Match": etag})
    assert again.status == 304
    themes = await _json(client, "/api/themes")
    assert themes["themes"]
    rkey = themes["themes"][0]["id"]
    theme = await client.get(f"/api/themes/{rkey}")
    assert theme.status == 200 and theme.headers["ETag"].strip('"') == themes["themes"][0]["cid"]
    missing = await client.get("/api/themes/nope")
    assert missing.status == 404 and "Cache-Control" not in missing.headers


async def test_health_without_ingest_says_so(client: TestClient[Any, Any]) -> None:
    health = await _json(client, "/api/health")
    assert health["status"] == "healthy"
    assert health["services"]["database"]["status"] == "up"
    assert health["services"]["firehose"]["connected"] is False
    for projection in health["services"]["projections"].values():
        assert projection["lag_events"] == 0


async def test_index_page_lists_the_boards(client: TestClient[Any, Any],
                                           seeded: Services) -> None:
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    forum = seeded.queries.forum()
    assert forum is not None and forum.name is not None
    assert forum.name.replace("&", "&amp;").replace("'", "&#39;") in html


async def test_the_originals_field_names_are_served_too(client: TestClient[Any, Any]) -> None:
    category = (await _json(client, "/api/categories"))["categories"][0]["id"]
    board = (await _json(client, f"/api/categories/{category}/boards"))["boards"][0]["id"]
    listed = (await _json(client, f"/api/boards/{board}/topics"))["topics"][0]
    assert listed["forumUri"].endswith("/space.atbb.forum.forum/self")
    assert listed["did"] and listed["rkey"] == listed["uri"].rsplit("/", 1)[-1]
    thread = await _json(client, f"/api/topics/{listed['id']}?limit=250")
    post = thread["post"]
    assert (post["did"], post["rkey"]) == (post["author"]["did"], listed["rkey"])
    assert post["forumUri"] == listed["forumUri"]
    for reply in thread["replies"]:
        assert reply["parentPostId"] is not None and reply["did"] == reply["author"]["did"]
    policy = await _json(client, "/api/theme-policy")
    assert policy["defaultLightThemeUri"] == policy["defaultLightTheme"]
    assert policy["defaultDarkThemeUri"] == policy["defaultDarkTheme"]
