"""Member profile pages, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.web_forum import get_text, page_client, scenario, seeded_services

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


async def test_author_links_reach_the_profile(services: Services) -> None:
    async with page_client(services) as client:
        index = await get_text(client, "/")
    story = scenario()
    assert any(f"/u/{quote(m.did, safe='')}" in index for m in story.members)
