"""Unread tracking (web/pages/unread.py, appview/reader_state.py): the board page's and
the index's unread marks equal a reference recomputed from scratch from what the member
did (viewed a topic, marked a board or the forum read) and what others posted; jump to
first unread; marks kept across a rebuild; on both backends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.bootstrap import Services
from projections.ids import post_id, record_id
from projections.views import Viewer
from tests.conftest import Backend
from tests.live_support import ForumWriter
from tests.web_forum import get_text, page_client, scenario, seeded_services
from web import urls


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, ForumWriter]]:
    story = scenario()
    with seeded_services(backend) as services:
        yield services, ForumWriter.after(services, story)


async def _post(client: TestClient[Any, Any], path: str, form_page: str,
                **fields: str) -> None:
    page = await get_text(client, form_page)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    response = await client.post(path, data={"csrf_token": token.group(1), **fields},
                                 allow_redirects=False)
    assert response.status == 303, await response.text()


def _board_unread(page: str) -> set[str]:
    return set(re.findall(r'href="/t/([^"/]+)/unread"', page))


def _index_count(page: str, board_id: str) -> int:
    found = re.search(rf'href="/b/{re.escape(board_id)}">[^<]*</a>'
                      r'(?: <span class="badge unread-mark">(\d+)\+? new</span>)?', page)
    assert found is not None
    return int(found.group(1) or 0)


Operation = tuple[str, int, int]
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("topic"), st.just(0), st.integers(1, 3)),
    st.tuples(st.just("reply"), st.integers(0, 5), st.integers(1, 3)),
    st.tuples(st.just("view"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("board"), st.just(0), st.just(0)),
    st.tuples(st.just("forum"), st.just(0), st.just(0)),
), min_size=1, max_size=10)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_unread_marks_equal_a_reference_recomputed_from_scratch(
        forum: tuple[Services, ForumWriter], operations: list[Operation]) -> None:
    services, writer = forum
    reader = writer.story.members[0]
    board_id = record_id(writer.board_uri())

    async def run() -> None:
        topics: list[tuple[str, str]] = []
        posts: dict[str, list[str]] = {}  # topic id -> its posts' uris, in order
        seen: set[str] = set()  # the reference: every post the member has seen
        async with page_client(services, Viewer(reader.did, frozenset())) as client:
            # the forum so far is read: each example starts from there
            await _post(client, urls.forum_read(), urls.index())
            for kind, index, author in operations:
                if kind == "topic":
                    topic = writer.topic(writer.story.members[author].did,
                                         f"Topic {len(topics)}")
                    topics.append(topic)
                    posts[post_id(topic[0])] = [topic[0]]
                elif kind == "reply" and topics:
                    topic = topics[index % len(topics)]
                    reply, _ = writer.reply(writer.story.members[author].did, topic, "Hi.")
                    posts[post_id(topic[0])].append(reply)
                await asyncio.to_thread(services.projector.project)
                if kind == "view" and topics:
                    topic_id = post_id(topics[index % len(topics)][0])
                    await get_text(client, urls.topic(topic_id))
                    seen.update(posts[topic_id])
                elif kind == "board":
                    await _post(client, urls.board_read(board_id), urls.board(board_id))
                    seen.update(uri for uris in posts.values() for uri in uris)
                elif kind == "forum":
                    await _post(client, urls.forum_read(), urls.index())
                    seen.update(uri for uris in posts.values() for uri in uris)
            expected = {topic for topic, uris in posts.items() if set(uris) - seen}
            assert _board_unread(await get_text(client, urls.board(board_id))) == expected
            assert _index_count(await get_text(client, urls.index()), board_id) == \
                len(expected)

    asyncio.run(run())


async def test_jump_to_first_unread_and_marks_survive_a_rebuild(
        forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    reader, other = writer.story.members[0], writer.story.members[1]
    topic = writer.topic(other.did, "Jumping")
    first = writer.reply(other.did, topic, "Seen.")
    await asyncio.to_thread(services.projector.project)
    topic_id = post_id(topic[0])
    async with page_client(services, Viewer(reader.did, frozenset())) as client:
        response = await client.get(urls.topic_unread(topic_id), allow_redirects=False)
        assert response.headers["Location"] == urls.topic(topic_id)  # never read: page 1
        await get_text(client, urls.topic(topic_id))
        response = await client.get(urls.topic_unread(topic_id), allow_redirects=False)
        assert response.headers["Location"] == urls.topic(topic_id)  # all read: last page
        assert services.rebuilds is not None
        run = await asyncio.to_thread(services.rebuilds.run, reason="test")
        assert run.status == "completed"
        second = writer.reply(other.did, topic, "Not seen.")
        writer.reply(other.did, topic, "Not seen either.")
        await asyncio.to_thread(services.projector.project)
        response = await client.get(urls.topic_unread(topic_id), allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == urls.post(post_id(second[0]))
        assert post_id(first[0]) != post_id(second[0])
        await get_text(client, urls.topic_unread("no-such-topic"), 404)
    async with page_client(services) as client:  # anonymous: the topic, nothing marked
        response = await client.get(urls.topic_unread(topic_id), allow_redirects=False)
        assert response.headers["Location"] == urls.topic(topic_id)
        board = await get_text(client, urls.board(record_id(writer.board_uri())))
        assert "unread-mark" not in board and "Mark this board read" not in board
        response = await client.post(urls.forum_read(), allow_redirects=False)
        assert response.status == 303 and "/signin" in response.headers["Location"]
