"""The administration pages in Chromium (headless, Playwright; skipped as
tests/test_browser.py skips): an admin creates a category and a board, assigns a role,
edits a theme (the live preview follows the fields), offers it as the default and sees
the forum in it. Runs on SQLite: storage is not what is under test here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.admin_writes_support import AdminForum, admin_forum
from tests.conftest import Backend
from tests.test_browser import axe_failures, browser, sign_in_with_token, wait_for_text
from tests.writes_support import did_for
from web import urls
from web.app import create_app


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, AdminForum]]:
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
    async with admin_forum(backend) as built:
        runner = web.AppRunner(create_app(built.services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}", built
        finally:
            await runner.cleanup()


async def background(page: Any, selector: str) -> str:
    value: str = await page.locator(selector).first.evaluate(
        "element => getComputedStyle(element).backgroundColor")
    return value


async def test_an_admin_shapes_the_forum_in_chromium(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, built), browser() as chromium:
        page = await (await chromium.new_context()).new_page()
        await page.goto(base + urls.signin())
        await sign_in_with_token(page, built.tokens["admin1"])
        await page.goto(base + urls.index())
        await page.get_by_role("link", name="Admin").click()
        assert page.url.endswith(urls.admin_structure())

        # a category, then a board in it
        new_category = page.locator("form[action='/admin/structure/categories']")
        await new_category.locator("input[name=name]").fill("Announcements")
        await new_category.get_by_role("button", name="Create category").click()
        await wait_for_text(page, ".notice", "Created.")
        await page.get_by_text("Add a board to Announcements").click()
        card = page.locator("section.admin-card", has_text="Announcements")
        await card.locator("form[action='/admin/structure/boards'] input[name=name]").fill(
            "News")
        await card.get_by_role("button", name="Create board").click()
        await wait_for_text(page, "main", "News")
        await page.goto(base + urls.index())
        await wait_for_text(page, "main", "News")

        # a role
        await page.goto(base + urls.admin_members())
        row = page.locator("tr").filter(
            has=page.locator(f"form[action='{urls.admin_member_role(did_for('bob'))}']"))
        await row.locator("select").select_option(label="Moderator")
        await row.get_by_role("button", name="Assign").click()
        await wait_for_text(page, ".notice", "Role assigned.")
        assert built.services.queries.member_permissions(did_for("bob")).role is not None

        # a theme, edited with its live preview, then offered as the default
        await page.goto(base + urls.admin_themes())
        create = page.locator("form[action='/admin/themes']")
        await create.locator("input[name=name]").fill("Harbour")
        await create.locator("select[name=preset]").select_option("clean-light")
        await create.get_by_role("button", name="Create theme").click()
        await wait_for_text(page, ".notice", "Theme created.")
        await page.fill("input[name='token-color-bg']", "#123456")
        for _ in range(100):  # htmx swaps the pane in after the fields settle
            if await background(page, ".preview-pane-inner") == "rgb(18, 52, 86)":
                break
            await page.wait_for_timeout(50)
        assert await background(page, ".preview-pane-inner") == "rgb(18, 52, 86)"
        await page.get_by_role("button", name="Save", exact=True).click()
        await wait_for_text(page, ".notice", "Theme saved.")
        await page.goto(base + urls.admin_themes())
        await page.locator("input[name=available]").first.check()
        await page.get_by_role("button", name="Save the policy").click()
        await wait_for_text(page, ".notice", "Theme policy saved.")
        await page.goto(base + urls.index())
        assert await background(page, "body") == "rgb(18, 52, 86)"


async def test_the_admin_pages_pass_axe(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, built), browser() as chromium:
        for width, name in ((1280, "desktop"), (390, "phone")):
            context = await chromium.new_context(viewport={"width": width, "height": 900},
                                                 bypass_csp=True)  # only to inject axe
            page = await context.new_page()
            await page.goto(base + urls.signin())
            await sign_in_with_token(page, built.tokens["admin1"])
            await page.goto(base + urls.admin_themes())
            create = page.locator("form[action='/admin/themes']")
            await create.locator("input[name=name]").fill("Axe")
            await create.get_by_role("button", name="Create theme").click()
            await wait_for_text(page, ".notice", "Theme created.")
            editor = page.url
            failures: list[str] = []
            for label, path in (("structure", base + urls.admin_structure()),
                                ("members", base + urls.admin_members()),
                                ("themes", base + urls.admin_themes()),
                                ("theme-editor", editor),
                                ("settings", base + urls.settings())):
                await page.goto(path)
                failures += await axe_failures(page, f"admin-{label}-{name}")
            assert failures == []
            await context.close()

