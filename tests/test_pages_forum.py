"""The forum index and board pages on a seeded forum, on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from appview.bootstrap import Services
from projections.ids import post_id, record_id
from projections.runner import project_to_head
from projections.views import Viewer
from tests.conftest import Backend
from tests.web_forum import (
    Extended,
    Writer,
    extended_forum,
    get_text,
    page_client,
    scenario,
    seeded_services,
)

NOW = datetime.now(UTC)


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Extended]]:
    extended = extended_forum(scenario())
    with seeded_services(backend, extended.lines) as services:
        yield services, extended


def topic_links(html: str) -> list[str]:
    body = html.split('<tbody id="topic-rows">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'class="title" href="/t/([^"?#]+)"', body)


async def test_index_lists_categories_in_order_with_board_counts(
    forum: tuple[Services, Extended],
) -> None:
    services, _ = forum
    async with page_client(services) as client:
        html = await get_text(client, "/")
    categories = services.queries.categories().items
    positions = [html.index(f'id="cat-{c.id}"') for c in categories]
    assert positions == sorted(positions) and len(positions) == 3
    for category in categories:
        boards = services.queries.category_boards(category.id, now=NOW)
        assert boards is not None
        for board in boards.items:
            row = html.split(f'href="/b/{board.id}"', 1)[1].split("</tr>", 1)[0]
            counts = re.findall(r'<td class="num">(\d+)</td>', row)
            assert counts == [str(board.topic_count), str(board.post_count)]
            if board.last_post is not None:
                assert f'href="/p/{board.last_post.id}"' in row
                assert "<time datetime=" in row


async def test_board_pages_partition_the_topics(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    board_id = record_id(extended.board_uri)
    expected = services.queries.board_topics(board_id, now=NOW, limit=100)
    assert expected is not None and expected.total > 50
    async with page_client(services) as client:
        pages = [await get_text(client, f"/b/{board_id}?page={n}") for n in (1, 2, 3)]
        await get_text(client, f"/b/{board_id}?page=4", 404)  # past the last page
        for bad in ("0", "abc", "-1", "²", "9223372036854775808", "1000000001"):
            refused = await get_text(client, f"/b/{board_id}?page={quote(bad)}", 400)
            assert "page must be a whole number from 1 to" in refused, bad
        await get_text(client, f"/b/{board_id}?page=")  # empty: the first page
        await get_text(client, "/b/no-such-board", 404)
    seen = [topic for html in pages for topic in topic_links(html)]
    assert seen == [t.id for t in expected.items], "every topic on exactly one page, in order"
    # "load more": a plain link to the next page, enhanced by htmx to append its rows
    assert f'href="/b/{board_id}?page=2" hx-get="/b/{board_id}?page=2"' in pages[0]
    assert 'hx-select="#topic-rows &gt; tr"' in pages[0] or 'hx-select="#topic-rows > tr"' \
        in pages[0]
    assert "Load more topics" not in pages[2]
    assert 'rel="next" href="/b/' in pages[0] and 'rel="prev"' in pages[1]


async def test_pinned_first_and_badges(forum: tuple[Services, Extended]) -> None:
    services, _ = forum
    found_pinned = found_locked = False
    async with page_client(services) as client:
        for category in services.queries.categories().items:
            boards = services.queries.category_boards(category.id, now=NOW)
            assert boards is not None
            for board in boards.items:
                topics = services.queries.board_topics(board.id, viewer=Viewer.anonymous(),
                                                       now=NOW, limit=25)
                assert topics is not None
                html = await get_text(client, f"/b/{board.id}")
                rows = html.split('<tbody id="topic-rows">', 1)[-1].split("<tr")[1:]
                for topic, row in zip(topics.items, rows, strict=False):
                    assert f"/t/{topic.id}" in row
                    assert ('<span class="badge">Pinned</span>' in row) == topic.pinned
                    assert ('<span class="badge">Locked</span>' in row) == topic.locked
                    found_pinned |= topic.pinned
                    found_locked |= topic.locked
                pinned = [t.pinned for t in topics.items]
                assert pinned == sorted(pinned, reverse=True)
    assert found_pinned and found_locked, "the scenario pins and locks topics"


async def test_unchanged_pages_cost_a_304(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    board_id = record_id(extended.board_uri)
    async with page_client(services) as client:
        for path in ("/", f"/b/{board_id}"):
            first = await client.get(path)
            etag = first.headers["ETag"]
            assert first.headers["Cache-Control"] == "public, no-cache"
            again = await client.get(path, headers={"If-None-Match": etag})
            assert again.status == 304 and again.headers["ETag"] == etag
            dark = await client.get(path, headers={"If-None-Match": etag},
                                    cookies={"theme": "dark"})
            assert dark.status == 200, "the theme choice changes the page"
        etag = (await client.get("/")).headers["ETag"]
        # A new event projected: the same URL has a new ETag.
        story = scenario()
        writer = Writer(max(op.at_us for op in story.operations()) + 10_000_000_000)
        forum_record = {"$type": "space.atbb.forum.forum", "createdAt": writer.now(),
                        "description": "Changed.", "name": "Renamed forum"}
        line, _uri, _cid = writer.write(story.forum.did, "space.atbb.forum.forum", "self",
                                        forum_record, "update")
        appender = services.appender()
        appender.feed(line, 10_000)
        appender.flush()
        project_to_head(services.event_log, services.projections)
        changed = await client.get("/", headers={"If-None-Match": etag})
        assert changed.status == 200 and "Renamed forum" in await changed.text()


async def test_board_rows_name_the_last_replier_and_link_the_last_reply(
        backend: Backend) -> None:
    from tests.live_support import ForumWriter

    story = scenario()
    with seeded_services(backend) as services:
        writer = ForumWriter.after(services, story)
        first, second = story.members[0], story.members[1]
        topic = writer.topic(first.did, "Who replied last")
        writer.reply(first.did, topic, "Early.")
        last = writer.reply(second.did, topic, "Latest.")
        hidden = writer.reply(first.did, topic, "Hidden, so not the last one shown.")
        writer.moderate("delete", {"post": {"uri": hidden[0], "cid": hidden[1]}})
        services.projector.project()
        async with page_client(services) as client:
            html = await get_text(client, f"/b/{record_id(writer.board_uri())}")
    row = html[html.index("Who replied last"):]
    row = row[:row.index("</tr>")]
    assert f'<a class="last-reply" href="/p/{post_id(last[0])}">Last reply</a> by' in row
    assert f'href="/u/{quote(second.did, safe="")}"' in row
