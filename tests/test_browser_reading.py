"""Reading in a real browser (Debian's Chromium, headless, Playwright): times shown
relative with the exact local time on hover; a live reply appears on an open topic page
and loads in place; a board's unread mark leads to the
topic and is gone after reading it; the header's notification count, the notifications
page and "mark all read". The app reads as a signed-in member through its PAGE_VIEWER
resolver (sign-in itself is test_browser.py's). SQLite: storage is not under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from appview.bootstrap import Services
from appview.devnet.clock import DevClock
from appview.devnet.network import DevNetwork
from projections.ids import post_id, record_id
from projections.views import Viewer
from tests.conftest import Backend
from tests.live_support import ForumWriter
from tests.test_avatars import appview, avatar_settings, png, with_avatar
from tests.test_browser import browser
from tests.web_forum import scenario, seeded_services
from tests.web_support import serving
from web import urls
from web.app import create_app
from web.pages.common import PAGE_VIEWER


@asynccontextmanager
async def served_as_member(tmp_path: Path) -> AsyncIterator[tuple[str, Services, ForumWriter]]:
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
    story = scenario()
    with seeded_services(backend) as services:
        writer = ForumWriter.after(services, story)
        reader = Viewer(story.members[0].did, frozenset())
        # what the scenario told the member is read
        services.reader_state.read_notifications_through(reader.did or "",
                                                         writer.writer.now())
        app = create_app(services)

        def resolve(request: web.Request) -> Viewer:
            return reader

        app[PAGE_VIEWER] = resolve
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}", services, writer
        finally:
            await runner.cleanup()


async def _project(services: Services) -> None:
    await asyncio.to_thread(services.projector.project)


async def test_a_live_reply_appears_and_loads_in_place(tmp_path: Path) -> None:
    async with served_as_member(tmp_path) as (base, services, writer), \
            browser() as chromium:
        other = writer.story.members[1].did
        topic = writer.topic(other, "Watched live")
        await _project(services)
        page: Any = await chromium.new_page()
        await page.goto(base + urls.topic(post_id(topic[0])))
        assert await page.locator("#live-notice").is_hidden()
        when = page.locator("article time[datetime]").first
        await page.wait_for_function(
            "() => document.querySelector('article time[data-exact]') !== null")
        exact = await when.get_attribute("data-exact")
        assert exact and exact.endswith("UTC") and await when.get_attribute("title")
        assert (await when.inner_text()) != exact  # "2 months ago", "in 3 hours"...
        await page.wait_for_timeout(500)  # the stream is open
        reply = writer.reply(other, topic, "Arrived while you were reading.")
        await _project(services)
        notice = page.locator("#live-notice")
        await notice.wait_for(state="visible", timeout=10_000)
        assert "1 new reply" in await notice.inner_text()
        await page.get_by_role("button", name="Show").click()
        article = page.locator(f"#p-{post_id(reply[0])}")
        await article.wait_for(state="visible", timeout=10_000)
        assert "Arrived while you were reading." in await article.inner_text()
        await notice.wait_for(state="hidden", timeout=5_000)


async def test_unread_marks_and_notifications(tmp_path: Path) -> None:
    async with served_as_member(tmp_path) as (base, services, writer), \
            browser() as chromium:
        me, other = writer.story.members[0].did, writer.story.members[1].did
        board_id = record_id(writer.board_uri())
        page: Any = await chromium.new_page()
        await page.goto(base + urls.index())
        await page.get_by_role("button", name="Mark the whole forum read").click()
        mine = writer.topic(me, "My own topic")
        writer.reply(other, mine, "A reply to you.")
        fresh = writer.topic(other, "Something new")
        await _project(services)
        await page.goto(base + urls.board(board_id))
        new_mark = page.locator(f"a.unread-mark[href='{urls.topic_unread(post_id(fresh[0]))}']")
        assert await new_mark.count() == 1
        await new_mark.click()
        await page.wait_for_url(f"**{urls.topic(post_id(fresh[0]))}*")
        await page.goto(base + urls.board(board_id))
        assert await page.locator(
            f"a.unread-mark[href='{urls.topic_unread(post_id(fresh[0]))}']").count() == 0
        count = page.locator(".notifications-link .count")
        assert (await count.inner_text()).strip() == "1"
        await page.locator(".notifications-link").click()
        await page.wait_for_url(f"**{urls.notifications()}")
        item = page.locator("li.notification.is-unread")
        assert await item.count() == 1 and "A reply to you." in await item.inner_text()
        await page.get_by_role("button", name="Mark all read").click()
        await page.wait_for_url(f"**{urls.notifications()}")
        assert await page.locator("li.notification.is-unread").count() == 0
        assert await page.locator(".notifications-link .count").count() == 0


async def test_an_avatar_renders_in_the_post_header_after_it_is_fetched(
        tmp_path: Path) -> None:
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
    async with DevNetwork() as network:
        pds = network.pds["pds1"]
        alice = pds.create_account("alice.test", "password-123")
        with_avatar(pds, alice.did, png(3, width=8), "image/png")
        async with appview(backend, avatar_settings(backend, network.plc_url),
                           DevClock()) as services, browser() as chromium:
            writer = ForumWriter.after(services, scenario())
            topic = writer.topic(alice.did, "With a face")
            await _project(services)
            async with serving(create_app(services)) as base:
                page: Any = await chromium.new_page()
                url = base + urls.topic(post_id(topic[0]))
                await page.goto(url)
                header = page.locator("article .post-author").first
                assert await header.locator("span.avatar").count() == 1
                await services.avatars.settled()
                await page.reload()
                image = header.locator("img.avatar")
                await image.wait_for(state="visible")
                loaded = await image.evaluate(
                    "img => img.complete && img.naturalWidth === 8")
                assert loaded, "the browser decoded the image the appview served"
                box = await image.bounding_box()
                initials_size = 32  # 2rem at the default 16px: the circle of the initials
                assert box is not None and round(box["width"]) == initials_size
                assert round(box["height"]) == initials_size
                radius = await image.evaluate("img => getComputedStyle(img).borderRadius")
                assert radius == "50%"
