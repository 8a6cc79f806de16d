"""Live streams (web/pages/live.py, web/live_events.py): new replies and topics pushed
with their log positions as ids, moderation applied to what is pushed, and resuming
with Last-Event-ID missing nothing and repeating nothing, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.bootstrap import Services
from projections.ids import post_id, record_id
from tests.conftest import Backend
from tests.live_support import ForumWriter, SseReader
from tests.web_forum import MODERATOR, get_text, page_client, scenario, seeded_services
from web import urls


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, ForumWriter]]:
    story = scenario()
    with seeded_services(backend) as services:
        yield services, ForumWriter.after(services, story)


def _member(writer: ForumWriter, index: int = 0) -> str:
    return writer.story.members[index].did


async def _project(services: Services) -> int:
    await asyncio.to_thread(services.projector.project)
    return services.event_log.head()


async def test_a_new_reply_reaches_an_open_topic_stream(
        forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    topic = writer.topic(_member(writer), "Live topic")
    start = await _project(services)
    async with page_client(services) as client:
        page = await get_text(client, urls.topic(post_id(topic[0])))
        assert f'data-live-url="{urls.topic_live(post_id(topic[0]))}"' in page
        assert f'data-live-after="{start}"' in page
        response = await client.get(urls.topic_live(post_id(topic[0])) + f"?after={start}")
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert (await response.content.readuntil(b"\n\n")).startswith(b"retry:")
        reply = writer.reply(_member(writer, 1), topic, "A live reply.")
        head = await _project(services)
        block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        response.close()
    text = block.decode()
    assert f"id: {head}\nevent: reply\n" in text
    assert f'"id":"{post_id(reply[0])}"' in text
    assert f'"url":"{urls.post(post_id(reply[0]))}"' in text


async def test_board_streams_announce_new_topics(
        forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    start = await _project(services)
    topic = writer.topic(_member(writer), "Fresh <b>topic</b>")
    writer.reply(_member(writer), topic, "Not a topic: not on the board's stream.")
    head = await _project(services)
    reader = SseReader()
    async with page_client(services) as client:
        board_id = record_id(writer.board_uri())
        assert await reader.read(client, urls.board_live(board_id) + f"?after={start}",
                                 until=head)
    assert [(kind, data["title"], data["url"]) for _, kind, data in reader.events] == [
        ("topic", "Fresh <b>topic</b>", urls.topic(post_id(topic[0])))]


async def test_moderation_applies_to_what_is_pushed(
        forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    topic = writer.topic(_member(writer), "Moderated topic")
    start = await _project(services)
    hidden = writer.reply(_member(writer, 1), topic, "Hidden at once.")
    writer.moderate("delete", {"post": {"uri": hidden[0], "cid": hidden[1]}})
    banned = writer.reply(_member(writer, 2), topic, "By someone banned.")
    writer.moderate("ban", {"did": _member(writer, 2)})
    shown = writer.reply(_member(writer, 3), topic, "Fine.")
    head = await _project(services)
    path = urls.topic_live(post_id(topic[0])) + f"?after={start}"
    seen = {}
    for viewer in (None, MODERATOR):
        reader = SseReader()
        async with page_client(services, viewer) as client:
            assert await reader.read(client, path, until=head)
        seen[viewer] = {data["id"] for _, _, data in reader.events}
        assert reader.last_id == str(head)
    assert seen[None] == {post_id(shown[0])}
    assert seen[MODERATOR] == {post_id(u) for u, _ in (hidden, banned, shown)}


async def test_bad_positions_and_unknown_pages(forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    async with page_client(services) as client:
        for bad in ("x", "-1"):
            response = await client.get(urls.topic_live("nope") + f"?after={bad}")
            assert response.status == 404  # the topic first
        topic = writer.topic(_member(writer), "T")
        await _project(services)
        path = urls.topic_live(post_id(topic[0]))
        response = await client.get(path, headers={"Last-Event-ID": "soon"})
        assert response.status == 400
        assert (await client.get(urls.board_live("no-board"))).status == 404


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reconnecting_with_the_last_id_sees_every_event_once(
        forum: tuple[Services, ForumWriter], data: st.DataObject) -> None:
    """Whatever byte the connection drops at, however often, the replies of the topic
    each arrive exactly once across the reconnections."""
    services, writer = forum
    topic = writer.topic(_member(writer), "Resumed topic")
    other = writer.topic(_member(writer), "Another topic")
    asyncio.run(_project(services))
    start = services.event_log.head()
    expected = []
    for number in range(data.draw(st.integers(1, 6), label="replies")):
        if data.draw(st.booleans(), label="elsewhere"):
            writer.reply(_member(writer), other, f"Elsewhere {number}.")
        uri, _cid = writer.reply(_member(writer, number % 3), topic, f"Reply {number}.")
        expected.append(post_id(uri))
    cuts = data.draw(st.lists(st.integers(1, 400), max_size=6), label="cuts")

    async def run() -> list[dict[str, Any]]:
        head = await _project(services)
        reader = SseReader()
        path = urls.topic_live(post_id(topic[0])) + f"?after={start}"
        async with page_client(services) as client:
            for cut in [*cuts, None]:
                if await reader.read(client, path, until=head, cut_after=cut):
                    break
        return [event for _, _, event in reader.events]

    events = asyncio.run(run())
    assert [event["id"] for event in events] == expected
