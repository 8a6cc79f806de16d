"""Notifications pages (web/pages/notifications.py): the header's count, the page with
unread marks, marking read (kept beside the log, so across a rebuild), moderation, and
the private Atom feed, on both backends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from appview.bootstrap import Services
from projections.ids import post_id
from projections.views import Viewer
from tests.conftest import Backend
from tests.live_support import ForumWriter
from tests.web_forum import get_text, page_client, scenario, seeded_services
from web import urls
from web.pages.notifications import feed_token


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, ForumWriter]]:
    story = scenario()
    with seeded_services(backend) as services:
        yield services, ForumWriter.after(services, story)


def _count(html: str) -> int:
    found = re.search(r'class="notifications-link">Notifications(?: <span class="count"'
                      r'[^>]*>(\d+)</span>)?</a>', html)
    assert found is not None, "no notifications link"
    return int(found.group(1) or 0)


async def test_replies_quotes_and_mentions_notify_until_read(
        forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    alice, bob, carol = (writer.story.members[n] for n in range(3))
    for member in (alice, bob):  # what the scenario told them is read
        services.reader_state.read_notifications_through(member.did, writer.writer.now())
    topic = writer.topic(alice.did, "Alice topic")
    reply = writer.reply(bob.did, topic, "Bob replies.")
    writer.reply(carol.did, topic, f"Carol quotes [@bob wrote]({reply[0]}): and greets"
                                   f" @{alice.handle}", parent=reply)
    hidden = writer.reply(carol.did, topic, "Hidden later.")
    writer.moderate("delete", {"post": {"uri": hidden[0], "cid": hidden[1]}})
    writer.reply(alice.did, topic, "Alice answers herself.")
    await asyncio.to_thread(services.projector.project)
    as_alice = Viewer(alice.did, frozenset())
    async with page_client(services, as_alice) as client:
        index = await get_text(client, urls.index())
        assert _count(index) == 2  # Bob's reply, Carol's reply (hidden: not counted)
        page = await get_text(client, urls.notifications())
        assert page.count("is-unread") == 2
        assert "replied in your topic" in page and "Alice topic" in page
        assert "Hidden later." not in page and "answers herself" not in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        newest = re.search(r'name="through" value="([^"]+)"', page)
        assert token and newest
        response = await client.post(urls.notifications_read(), allow_redirects=False,
                                     data={"csrf_token": token.group(1),
                                           "through": newest.group(1)})
        assert response.status == 303
        assert _count(await get_text(client, urls.index())) == 0
        page = await get_text(client, urls.notifications())
        assert "is-unread" not in page and "Bob replies." in page
        forged = await client.post(urls.notifications_read(), data={"through": "99"},
                                   allow_redirects=False)
        assert forged.status == 403
    async with page_client(services, Viewer(bob.did, frozenset())) as client:
        page = await get_text(client, urls.notifications())
        assert "quoted you" in page or "replied to your post" in page
        assert page.count("is-unread") == 1  # one per post, the first reason
    async with page_client(services) as client:
        response = await client.get(urls.notifications(), allow_redirects=False)
        assert response.status == 303 and "/signin" in response.headers["Location"]


async def test_the_private_feed_needs_its_token(forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    alice, bob = writer.story.members[0], writer.story.members[1]
    topic = writer.topic(alice.did, "Feed topic")
    reply = writer.reply(bob.did, topic, "A <b>reply</b> for the feed.")
    await asyncio.to_thread(services.projector.project)
    token = feed_token(services, alice.did)
    async with page_client(services) as client:
        feed = await get_text(client, urls.notifications_feed(alice.did, token))
        assert urls.post(post_id(reply[0])) in feed
        assert "&lt;b&gt;reply" in feed or "&amp;lt;b&amp;gt;" in feed
        await get_text(client, urls.notifications_feed(alice.did, "0" * 32), 404)
        await get_text(client, urls.notifications_feed(bob.did, token), 404)
        response = await client.get(urls.notifications_feed(alice.did, token))
        assert response.headers["Cache-Control"] == "private, no-store"


async def test_read_state_survives_a_rebuild(forum: tuple[Services, ForumWriter]) -> None:
    services, writer = forum
    alice, bob = writer.story.members[0], writer.story.members[1]
    topic = writer.topic(alice.did, "Rebuilt topic")
    before = writer.writer.now()  # the time the next post says it was created
    writer.reply(bob.did, topic, "Before the rebuild.")
    await asyncio.to_thread(services.projector.project)
    services.reader_state.read_notifications_through(alice.did, before)
    assert services.rebuilds is not None
    run = await asyncio.to_thread(services.rebuilds.run, reason="test")
    assert run.status == "completed"
    writer.reply(bob.did, topic, "After the rebuild.")
    await asyncio.to_thread(services.projector.project)
    async with page_client(services, Viewer(alice.did, frozenset())) as client:
        page = await get_text(client, urls.notifications())
    assert "Before the rebuild." in page and page.count("is-unread") == 1
    assert "After the rebuild." in page
