"""Member profile pages, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from markupsafe import escape

from appview.bootstrap import Services
from events.jetstream import to_line
from events.model import AccountStatus, AccountStatusChanged
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.web_forum import MODERATOR, get_text, page_client, scenario, seeded_services

NOW = datetime.now(UTC)


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    with seeded_services(backend) as seeded:
        yield seeded


async def test_profile_shows_the_member_and_their_posts(services: Services) -> None:
    members = services.queries.members(now=NOW, limit=100).items
    member = max(members, key=lambda m: m.post_count)
    profile = services.queries.member_profile(member.did, now=NOW)
    assert profile is not None and profile.recent_topics and profile.recent_posts
    async with page_client(services) as client:
        html = await get_text(client, f"/u/{quote(member.did, safe='')}")
        same = await get_text(client, f"/u/{member.did}")
        await get_text(client, "/u/did:plc:nobody", 404)
    assert html == same
    assert member.handle is not None and f"<h1>{member.handle}</h1>" in html
    assert f"<code>{member.did}</code>" in html
    assert f"<dt>Posts</dt><dd>{member.post_count}</dd>" in html
    for topic in profile.recent_topics:
        assert f'href="/t/{topic.id}"' in html
    for post in profile.recent_posts:
        assert f'href="/p/{post.id}"' in html
    # replies are named by their topic's title, with a short excerpt, not whole bodies
    assert "Reply #" not in html and "Re: " in html
    replies = [p for p in profile.recent_posts if p.kind == "reply"]
    assert replies
    for reply in replies:
        page = services.queries.topic(reply.topic_id, now=NOW, limit=1)
        assert page is not None and page.topic.title
        assert f"Re: {escape(page.topic.title)}</a>" in html


async def test_author_links_reach_the_profile(services: Services) -> None:
    async with page_client(services) as client:
        index = await get_text(client, "/")
    story = scenario()
    assert any(f"/u/{quote(m.did, safe='')}" in index for m in story.members)


async def test_every_reader_sees_why_a_member_is_not_active(services: Services) -> None:
    members = services.queries.members(now=NOW, limit=100).items
    banned = [m for m in members if m.banned]
    assert banned, "the scenario bans its spammer"
    candidates = [m for m in members if not m.banned]
    statuses: dict[str, AccountStatus] = {candidates[0].did: "takendown",
                                          candidates[1].did: "deactivated"}
    appender = services.appender()
    for number, (did, status) in enumerate(statuses.items(), start=1):
        event = AccountStatusChanged(did, False, status, 10**12 + number, None, "jetstream",
                                     None, 0)
        appender.feed(to_line(event, 10**12 + number), number)
    appender.flush()
    project_to_head(services.event_log, services.projections)

    for viewer in (None, MODERATOR):
        async with page_client(services, viewer) as client:
            pages = {did: await get_text(client, f"/u/{did}") for did in statuses}
            pages[banned[0].did] = await get_text(client, f"/u/{banned[0].did}")
        taken, gone = statuses
        assert '<span class="badge badge-warn">Taken down</span>' in pages[taken], viewer
        assert '<span class="badge badge-warn">Deactivated</span>' in pages[gone], viewer
        assert '<span class="badge badge-warn">Banned</span>' in pages[banned[0].did], viewer
        for did in statuses:
            assert "<dt>Status</dt>" in pages[did] and "Banned" not in pages[did]
