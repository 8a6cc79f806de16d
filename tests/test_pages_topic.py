"""Topic pages and post permalinks: paging, numbering, anchors, quotes, tombstones and
moderation visibility per role, on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from appview.bootstrap import Services
from projections.ids import post_id
from projections.views import Post, Viewer
from tests.conftest import Backend
from tests.web_forum import (
    MODERATOR,
    Extended,
    extended_forum,
    get_text,
    page_client,
    scenario,
    seeded_services,
)

NOW = datetime.now(UTC)
ARTICLE = re.compile(r'<article id="p-([^"]+)"')


@pytest.fixture
def forum(backend: Backend) -> Iterator[tuple[Services, Extended]]:
    extended = extended_forum(scenario())
    with seeded_services(backend, extended.lines) as services:
        yield services, extended


async def test_topic_pages_partition_the_posts(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    topic_id = post_id(extended.long_topic_uri)
    whole = services.queries.topic(topic_id, now=NOW, limit=250)
    assert whole is not None and whole.replies.total == 60
    async with page_client(services) as client:
        pages = [await get_text(client, f"/t/{topic_id}?page={n}") for n in (1, 2, 3)]
        await get_text(client, f"/t/{topic_id}?page=4", 404)
        await get_text(client, "/t/no-such-topic", 404)
    seen = [anchor for html in pages for anchor in ARTICLE.findall(html)]
    assert seen == [topic_id, *(r.id for r in whole.replies.items)]
    assert len(set(seen)) == len(seen), "every post on exactly one page"
    numbers = [int(n) for html in pages
               for n in re.findall(r'class="post-number" href="#p-[^"]+">#(\d+)<', html)]
    assert numbers == list(range(0, 61))
    assert "A long topic" in pages[0] and "The opening post of a long topic." in pages[0]
    assert "The opening post" not in pages[1]
    assert "This topic is locked" in pages[0]
    assert f'href="/t/{topic_id}/feed.atom"' in pages[0]


async def test_permalinks_land_on_the_right_page(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    topic_id = post_id(extended.long_topic_uri)
    whole = services.queries.topic(topic_id, now=NOW, limit=250)
    assert whole is not None
    replies = whole.replies.items
    async with page_client(services) as client:
        for index in (0, 24, 25, 49, 50, 59):
            reply = replies[index]
            page = index // 25 + 1
            for path in (f"/p/{reply.id}", f"/t/{topic_id}?post={reply.id}"):
                response = await client.get(path, allow_redirects=False)
                assert response.status == 302
                location = response.headers["Location"]
                expected = f"/t/{topic_id}" + ("" if page == 1 else f"?page={page}")
                assert location == f"{expected}#p-{reply.id}"
                html = await get_text(client, location.split("#", 1)[0])
                assert f'id="p-{reply.id}"' in html
        topic_link = await client.get(f"/p/{topic_id}", allow_redirects=False)
        assert topic_link.headers["Location"] == f"/t/{topic_id}#p-{topic_id}"
        await get_text(client, "/p/no-such-post", 404)


async def test_quotes_link_to_the_quoted_post(forum: tuple[Services, Extended]) -> None:
    services, extended = forum
    quoted = extended.xss_topic_uris[0]
    topic_id = post_id(quoted)
    async with page_client(services) as client:
        html = await get_text(client, f"/t/{topic_id}")
    assert f'<a href="/p/{topic_id}" class="post-link"' in html
    assert "<blockquote>" in html


def _thread_posts(services: Services, viewer: Viewer) -> dict[str, list[Post]]:
    """Every topic's posts (opening and replies) as ``viewer`` gets them."""
    threads: dict[str, list[Post]] = {}
    for category in services.queries.categories().items:
        boards = services.queries.category_boards(category.id, viewer=viewer, now=NOW)
        assert boards is not None
        for board in boards.items:
            topics = services.queries.board_topics(board.id, viewer=viewer, now=NOW, limit=100)
            assert topics is not None
            for summary in topics.items:
                page = services.queries.topic(summary.id, viewer=viewer, now=NOW, limit=250)
                assert page is not None
                threads[summary.id] = [page.topic, *page.replies.items]
    return threads


async def _all_pages(services: Services, viewer: Viewer | None, topic_id: str) -> str:
    async with page_client(services, viewer) as client:
        first = await get_text(client, f"/t/{topic_id}")
        last = re.search(r"Page 1 of (\d+)", first)
        pages = [first]
        for number in range(2, int(last.group(1)) + 1 if last else 2):
            pages.append(await get_text(client, f"/t/{topic_id}?page={number}"))
    return "\n".join(pages)


async def test_moderation_visibility_per_role(forum: tuple[Services, Extended]) -> None:
    services, _ = forum
    moderated = {
        topic_id: [p for p in posts if p.hidden_by_moderator or p.author_banned]
        for topic_id, posts in _thread_posts(services, MODERATOR).items()
    }
    moderated = {topic: posts for topic, posts in moderated.items() if posts}
    assert moderated, "the scenario hides posts and bans a member"
    marks = {"hidden": False, "banned": False}
    for topic_id, posts in moderated.items():
        anonymous = await _all_pages(services, None, topic_id)
        as_moderator = await _all_pages(services, MODERATOR, topic_id)
        for post in posts:
            anchor = f'id="p-{post.id}"'
            assert anchor in as_moderator
            article = as_moderator.split(anchor, 1)[1].split("</article>", 1)[0]
            if post.hidden_by_moderator:
                assert "Hidden by a moderator" in article
                marks["hidden"] = True
            if post.author_banned:
                assert "Author banned" in article
                marks["banned"] = True
            if post.kind == "reply":
                assert anchor not in anonymous, "hidden and banned posts never reach readers"
        assert "Hidden by a moderator" not in anonymous and "Author banned" not in anonymous
    assert marks == {"hidden": True, "banned": True}


async def test_tombstones_keep_their_place(forum: tuple[Services, Extended]) -> None:
    services, _ = forum
    deleted = [
        (topic_id, post)
        for topic_id, posts in _thread_posts(services, Viewer.anonymous()).items()
        for post in posts if post.deleted_by_author
    ]
    assert deleted, "the scenario has author-deleted posts"
    topic_id, post = deleted[0]
    html = await _all_pages(services, None, topic_id)
    article = html.split(f'id="p-{post.id}"', 1)[1].split("</article>", 1)[0]
    assert "Deleted by author." in article and "post-body" not in article


async def test_every_post_is_on_exactly_one_page_and_its_permalink_finds_it(
    forum: tuple[Services, Extended],
) -> None:
    services, _ = forum
    threads = _thread_posts(services, Viewer.anonymous())
    async with page_client(services) as client:
        for topic_id, posts in threads.items():
            pages: dict[str, int] = {}
            number = 1
            while True:
                response = await client.get(f"/t/{topic_id}?page={number}")
                if response.status == 404:
                    break
                for anchor in ARTICLE.findall(await response.text()):
                    assert anchor not in pages, "a post on two pages"
                    pages[anchor] = number
                number += 1
            assert set(pages) == {p.id for p in posts}
            for post in posts:
                response = await client.get(f"/p/{post.id}", allow_redirects=False)
                location = response.headers["Location"]
                page = int(location.split("page=", 1)[1].split("#", 1)[0]) \
                    if "page=" in location else 1
                assert page == pages[post.id] and location.endswith(f"#p-{post.id}")


async def test_nested_replies_name_their_parent_and_the_breadcrumb_its_category(
        backend: Backend) -> None:
    from tests.live_support import ForumWriter

    story = scenario()
    with seeded_services(backend) as services:
        writer = ForumWriter.after(services, story)
        author = story.members[0].did
        topic = writer.topic(author, "Nested")
        first = writer.reply(author, topic, "First.")
        writer.reply(author, topic, "Second, to the topic.")
        nested = writer.reply(author, topic, "Third, to the first.", parent=first)
        services.projector.project()
        async with page_client(services) as client:
            html = await get_text(client, f"/t/{post_id(topic[0])}")
    article = html[html.index(f'id="p-{post_id(nested[0])}"'):]
    link = f'<a class="in-reply-to" href="/p/{post_id(first[0])}">in reply to #1</a>'
    assert link in article[:3000]
    assert html.count('class="in-reply-to"') == 1  # replies to the topic name no parent
    start = html.index('class="breadcrumbs"')
    breadcrumbs = html[start:html.index("</nav>", start)]
    assert breadcrumbs.count("<li>") == 4 and "#cat-" in breadcrumbs


async def test_each_post_header_names_its_author_first_with_a_role_badge(
        backend: Backend) -> None:
    from tests.live_support import ForumWriter

    story = scenario()
    with seeded_services(backend) as services:
        writer = ForumWriter.after(services, story)
        staff = services.settings.forum_did  # holds every permission: badge "Forum"
        topic = writer.topic(staff, "From the staff")
        writer.reply(story.members[0].did, topic, "Thanks.")
        services.projector.project()
        badges = services.queries.role_badges([staff, story.members[0].did])
        async with page_client(services) as client:
            html = await get_text(client, f"/t/{post_id(topic[0])}")
    headers = [part.split("</header>", 1)[0] for part in html.split('class="post-header"')[1:]]
    assert len(headers) == 2
    for header in headers:  # the author before the post's number and time
        assert header.index('class="post-author"') < header.index('class="post-heading"')
        assert '<span class="avatar" aria-hidden="true">' in header
    assert badges[staff] == "Forum"
    assert '<span class="role-badge">Forum</span>' in headers[0]
    member_badge = badges.get(story.members[0].did)
    assert (member_badge is None) == ('class="role-badge"' not in headers[1])
