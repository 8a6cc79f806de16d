"""The forum in a real browser: Debian's Chromium, headless, driven by Playwright.

Navigation index → board → topic → page 2 → permalink; "load more" with htmx and the same
content without JavaScript; the admin page's progress bar during a rebuild; screenshots of
every page at desktop and phone widths (test-artifacts/screenshots/); and axe-core (the
npm package, vendored in tests/browser_vendor/) finding no serious or critical
accessibility violation. Runs on SQLite: storage is not what is under test here.
Skips when Chromium or Playwright is missing, except under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import Backend
from tests.web_forum import extended_forum, scenario, seeded_services
from web import urls
from web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = Path(__file__).parent / "browser_vendor" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = {"desktop": 1280, "mobile": 360}


def require_browser() -> Any:
    reason = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        reason = "Playwright for Python is not installed"
    if reason is None and not (shutil.which("chromium") or Path(CHROMIUM).exists()):
        reason = f"Debian's Chromium is not installed at {CHROMIUM}"
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return async_playwright


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
    story = scenario()
    extra = extended_forum(story)
    with seeded_services(backend, extra.lines) as services:
        runner = web.AppRunner(create_app(services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"http://127.0.0.1:{port}", (services, extra)
        finally:
            await runner.cleanup()


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    async_playwright = require_browser()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                    args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def topic_id(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


async def test_navigating_from_the_index_to_a_permalink(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, (services, extra)), browser() as chromium:
        page = await chromium.new_page()
        await page.goto(base + urls.index())
        await page.locator("main a[href^='/b/']").first.click()
        assert "/b/" in page.url
        await page.locator("#topic-rows a.title").first.click()
        assert "/t/" in page.url and await page.locator("main h1").count() == 1
        long_topic = None
        topics = services.queries.board_topics(extra.board_uri.rsplit("/", 1)[-1],
                                               limit=100, now=datetime.now(UTC))
        assert topics is not None
        for row in topics.items:
            if row.reply_count > 25:
                long_topic = row
        assert long_topic is not None
        await page.goto(base + urls.topic(long_topic.id))
        await page.locator("a[rel=next]").first.click()
        assert "page=2" in page.url
        anchor = await page.locator("article[id^='p-']").last.get_attribute("id")
        assert anchor is not None
        await page.goto(base + urls.post(anchor.removeprefix("p-")))
        assert page.url.endswith("#" + anchor) and "page=2" in page.url
        assert await page.locator(f"#{anchor}").is_visible()


async def test_load_more_appends_with_htmx_and_is_a_link_without_javascript(
        tmp_path: Path) -> None:
    async with served(tmp_path) as (base, (_services, extra)), browser() as chromium:
        board = base + urls.board(extra.board_uri.rsplit("/", 1)[-1])
        with_js = await chromium.new_page()
        await with_js.goto(board)
        rows = await with_js.locator("#topic-rows tr").count()
        await with_js.locator("#load-more a").click()
        for _ in range(100):  # (wait_for_function would eval a string: the CSP forbids it)
            if await with_js.locator("#topic-rows tr").count() > rows:
                break
            await with_js.wait_for_timeout(50)
        assert await with_js.locator("#topic-rows tr").count() > rows
        assert with_js.url == board  # appended in place
        appended = await with_js.locator("#topic-rows a.title").all_inner_texts()

        context = await chromium.new_context(java_script_enabled=False)
        without_js = await context.new_page()
        await without_js.goto(board)
        first = await without_js.locator("#topic-rows a.title").all_inner_texts()
        await without_js.locator("#load-more a").click()
        assert "page=2" in without_js.url
        second = await without_js.locator("#topic-rows a.title").all_inner_texts()
        assert appended == first + second  # the same topics, reachable either way
        await context.close()


async def test_every_page_screenshots_and_passes_axe(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, (services, extra)), browser() as chromium:
        _, token = services.admin_tokens.issue(services.settings.forum_did, "browser")
        board_id = extra.board_uri.rsplit("/", 1)[-1]
        pages = {"index": urls.index(), "board": urls.board(board_id),
                 "topic": urls.topic(topic_id(extra.long_topic_uri)),
                 "topic-page-2": urls.topic(topic_id(extra.long_topic_uri), page=2),
                 "member": urls.member(services.settings.forum_did),
                 "signin": urls.signin(), "admin": urls.admin(),
                 "modlog": urls.admin_modlog(), "not-found": "/b/nope"}
        SHOTS.mkdir(parents=True, exist_ok=True)
        axe_source = AXE.read_text()
        failures: list[str] = []
        for label, width in WIDTHS.items():
            # bypass_csp only to inject axe; the pages' own CSP is tested elsewhere
            context = await chromium.new_context(viewport={"width": width, "height": 900},
                                                 bypass_csp=True)
            page = await context.new_page()
            await page.goto(base + urls.signin())
            await page.fill("#token", token)
            await page.locator("main button[type=submit]").click()
            for name, path in pages.items():
                await page.goto(base + path)
                await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth > window.innerWidth + 1")
                if overflow and width == 360:
                    failures.append(f"{name}: wider than {width}px")
                await page.evaluate(axe_source)
                result = await page.evaluate(
                    "axe.run(document, {resultTypes: ['violations']})")
                for violation in result["violations"]:
                    if violation["impact"] in ("serious", "critical"):
                        failures.append(f"{name} ({label}): {violation['id']} on "
                                        f"{[n['target'] for n in violation['nodes'][:2]]}: "
                                        f"{violation['nodes'][0].get('failureSummary')}")
            await context.close()
        assert failures == []
        assert len(list(SHOTS.glob("*.png"))) >= len(pages) * len(WIDTHS)


async def test_the_admin_progress_bar_reaches_the_end_of_a_rebuild(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, (services, _extra)), browser() as chromium:
        _, token = services.admin_tokens.issue(services.settings.forum_did, "browser")
        page = await chromium.new_page()
        await page.goto(base + urls.signin(next_path=urls.admin()))
        await page.fill("#token", token)
        await page.locator("main button[type=submit]").click()
        assert page.url.endswith(urls.admin())
        await page.get_by_role("button", name="Rebuild the read models").click()
        assert page.url.endswith("notice=rebuild")
        assert await page.get_by_role("status").first.text_content() == "Rebuild started."
        bar = page.locator("progress[id^='rebuild-']").first
        values = []
        for _ in range(40):  # htmx swaps the status section every two seconds
            values.append((await bar.get_attribute("value"), await bar.get_attribute("max")))
            if values[-1][0] == values[-1][1] and "completed" in await page.content():
                break
            await page.wait_for_timeout(500)
        assert values[-1][0] == values[-1][1], values
        assert int(values[-1][0] or 0) > 0
        assert re.search(r"Rebuild \d+</strong> \(admin page\)", await page.content())


REDIRECT_ATTACKS = ["/\t/evil.example", "/\n/evil.example/", "/\r\n\t/evil.example",
                    "\x00//evil.example", " /\\evil.example", "\t\\\\evil.example",
                    "\x1f/\t/evil.example", "https://evil.example/", "//evil.example"]


async def test_chromium_is_never_sent_off_site(tmp_path: Path) -> None:
    """Chromium's own URL parser as the judge: what it makes of local_path's answers,
    and where it goes when a page elsewhere (without our CSP, whose form-action would
    stop the redirect in this browser) posts the theme form with a hostile ``next``."""
    from playwright.async_api import Error as PlaywrightError

    async with served(tmp_path) as (base, _), browser() as chromium:
        page = await chromium.new_page()
        await page.goto(base + urls.robots())
        hostile = [*REDIRECT_ATTACKS,
                   *(f"{chr(c)}/{chr(c)}/evil.example" for c in range(0x21)),
                   *(f"{chr(c)}//evil.example" for c in range(0x21))]
        origins = await page.evaluate(
            "(paths) => paths.map((p) => new URL(p, location.href).origin)",
            [urls.local_path(h) for h in hostile])
        assert set(origins) == {base}

        visited: list[str] = []
        page.on("request", lambda request: visited.append(request.url))
        await page.route(lambda url: not url.startswith(base), lambda route: route.abort())
        for attack in REDIRECT_ATTACKS:
            await page.goto("about:blank")
            await page.set_content(
                f'<form method="post" action="{base}{urls.theme_choice()}">'
                '<input type="hidden" name="theme" value="dark">'
                '<input type="hidden" name="next"></form>')
            await page.locator("input[name=next]").evaluate("(i, v) => { i.value = v; }",
                                                            attack)
            visited.clear()
            try:
                async with page.expect_navigation(wait_until="load", timeout=10_000):
                    await page.locator("form").evaluate("(f) => f.submit()")
            except PlaywrightError:
                pass  # an aborted navigation off-site: ``visited`` tells
            assert len(visited) >= 2, (attack, visited)  # the post and where it led
            assert all(url.startswith(base + "/") for url in visited), (attack, visited)
