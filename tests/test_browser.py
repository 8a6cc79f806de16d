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
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from events.model import RecordEvent
from tests.conftest import Backend
from tests.web_forum import extended_forum, scenario, seeded_services
from tests.web_support import serving
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
        async with serving(create_app(services)) as base:
            yield base, (services, extra)


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


async def sign_in_with_token(page: Any, token: str) -> None:
    """The sign-in page's admin-token form (folded away below the members' forms)."""
    await page.get_by_text("With an admin token", exact=True).click()
    await page.fill("#token", token)
    await page.get_by_role("button", name="Sign in with the token").click()


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
        # appended in place; the address and the pager say how far the reader got
        assert with_js.url == board + "?page=2"
        assert await with_js.locator("#pager-top [aria-current=page]").inner_text() == "2"
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
            await sign_in_with_token(page, token)
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
        await sign_in_with_token(page, token)
        assert page.url.endswith(urls.admin())
        # a rebuild is asked about first (a page: it works without JavaScript)
        await page.get_by_role("link", name="Rebuild the read models…").click()
        assert page.url.endswith(urls.admin_action("rebuild"))
        await page.get_by_role("button", name="Start the rebuild").click()
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


# --- members sign in and write, on the development network ------------------------------


@asynccontextmanager
async def members_network(tmp_path: Path) -> AsyncIterator[tuple[str, Any, Any]]:
    """The devnet (PLC, a PDS with its OAuth server, Jetstream), a Forum account that
    wrote its forum through the appview's writer, alice and bob; the appview following
    the network live on a port of its own (the loopback OAuth client's redirect)."""
    import socket

    from appview.bootstrap import bootstrap
    from appview.devnet.network import DevNetwork
    from appview.live import LiveIngest
    from appview.settings import Settings
    from tests.writes_support import write_forum

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    async with DevNetwork() as network:
        pds = network.pds["pds1"]
        owner = pds.create_account("forum.pds1.test", "forum-pw")
        for name in ("alice", "bob"):
            pds.create_account(f"{name}.pds1.test", f"{name}-pw")
        settings = Settings(data_dir=tmp_path / "data", forum_did=owner.did, port=port,
                            plc_url=network.plc_url, jetstream_url=network.jetstream_url,
                            handle_resolver_dev_urls=pds.url)
        services = bootstrap(settings)
        try:
            agent = await services.member_auth.sign_in_with_password(owner.handle,
                                                                     owner.app_password)
            session = await services.member_auth.pds_session(agent.session_id)
            assert session is not None
            await write_forum(services.writer, session)
            runner = web.AppRunner(create_app(services, live=LiveIngest(
                services, initial_cursor=0)))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                yield f"http://127.0.0.1:{port}", services, pds
            finally:
                await runner.cleanup()
                await services.member_auth.aclose()
        finally:
            services.close()


async def wait_for_text(page: Any, selector: str, text: str, tries: int = 100) -> None:
    for _ in range(tries):  # (wait_for_function would eval a string: the CSP forbids it)
        found = page.locator(selector)
        if await found.count() and text in await found.first.inner_text():
            return
        await page.wait_for_timeout(50)
    raise AssertionError(f"{text!r} never appeared in {selector}")


async def axe_failures(page: Any, name: str) -> list[str]:
    """A screenshot of the page, and axe-core's serious and critical violations on it
    (the page's context must bypass the CSP, only to inject axe)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{name}: {v['id']} on {[n['target'] for n in v['nodes'][:2]]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


async def test_a_member_signs_in_with_oauth_and_writes_in_chromium(tmp_path: Path) -> None:
    async with members_network(tmp_path) as (base, services, pds), browser() as chromium:
        alice = pds.account("alice.pds1.test")
        page = await (await chromium.new_context(bypass_csp=True)).new_page()
        failures: list[str] = []
        await page.goto(base + urls.signin())
        failures += await axe_failures(page, "member-signin")
        await page.fill("#oauth-identifier", alice.handle)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        assert page.url.startswith(pds.url)  # the member's own authorization server
        await page.fill("input[name=password]", "alice-pw")
        await page.get_by_role("button", name="Approve").click()
        assert "/join" in page.url
        failures += await axe_failures(page, "member-join")
        await page.get_by_role("button", name="Join Writers' forum").click()
        assert page.url == base + "/"
        board = services.queries.categories().items  # one category, one board
        assert board
        await page.locator("main a[href^='/b/']").first.click()
        await page.fill("#compose-title", "Hello from Chromium")
        await page.fill("#compose-text", "Written in a **real** browser.")
        assert await page.locator("#compose-text-count").inner_text() == "30 / 10000"
        await page.get_by_role("button", name="Post the topic").click()
        await wait_for_text(page, "main h1", "Hello from Chromium")
        assert "/t/" in page.url
        await page.fill("#compose-text", "A first reply.")
        await page.get_by_role("button", name="Post the reply").click()
        await wait_for_text(page, "ol.posts", "A first reply.")
        reply = page.locator("article", has_text="A first reply.")
        await reply.get_by_role("link", name="Quote").click()
        assert "quote=" in page.url
        failures += await axe_failures(page, "member-quote")
        box = await page.locator("#compose-text").input_value()
        assert box.startswith("[@alice.pds1.test wrote](at://") or box.startswith("[@did:")
        await page.locator("#compose-text").press("Control+End")
        await page.locator("#compose-text").type("Quoting myself.")
        await page.get_by_role("button", name="Post the reply").click()
        await wait_for_text(page, "ol.posts", "Quoting myself.")
        assert await page.locator("ol.posts blockquote").count() == 1
        quoting = page.locator("article", has_text="Quoting myself.")
        assert await quoting.locator("a[href^='/p/']", has_text="wrote").count() == 1
        opening = page.locator("article").first
        await opening.get_by_role("button", name="👍").click()
        await wait_for_text(page, f"#{await opening.get_attribute('id')} .reactions", "👍 1")
        failures += await axe_failures(page, "member-topic")
        await opening.get_by_role("link", name="Edit").click()
        await page.fill("#compose-text", "Edited in a real browser.")
        await page.get_by_role("button", name="Save the edit").click()
        await wait_for_text(page, "ol.posts", "Edited in a real browser.")
        assert "edited" in await page.locator("article").first.inner_text()
        await page.locator("article", has_text="A first reply.").first.get_by_role(
            "link", name="Delete").click()
        before_delete = time.time_ns() // 1000
        failures += await axe_failures(page, "member-delete")
        await page.get_by_role("button", name="Delete it").click()
        await wait_for_text(page, "ol.posts", "Deleted by author.")
        assert failures == []
        await page.goto(base + urls.signin())
        await page.get_by_role("button", name="Sign out").click()
        grants = pds.oauth.grants_of(alice.did)
        assert grants and grants[-1].revoked
        # the network's copies of her writes, once Jetstream delivered them, were
        # duplicates of what the writer logged: every version in the log is the local one
        written = pds.repo(alice.did).rev
        for _ in range(200):
            cursor = services.event_log.cursor("jetstream")
            if cursor is not None and cursor.value >= before_delete:
                break
            await page.wait_for_timeout(50)
        assert cursor is not None and cursor.value >= before_delete
        versions = [logged.event for logged in services.event_log.iter_from()
                    if isinstance(logged.event, RecordEvent) and logged.event.did == alice.did]
        assert versions and {event.source for event in versions} == {"local"}
        assert max(event.rev for event in versions) == written


async def test_a_member_signs_in_with_an_app_password_without_javascript(
        tmp_path: Path) -> None:
    async with members_network(tmp_path) as (base, _services, pds), browser() as chromium:
        bob = pds.account("bob.pds1.test")
        context = await chromium.new_context(java_script_enabled=False)
        page = await context.new_page()
        await page.goto(base + urls.signin())
        await page.get_by_text("With an app password", exact=True).click()
        await page.fill("#password-identifier", bob.handle)
        await page.fill("#app-password", bob.app_password)
        await page.get_by_role("button", name="Sign in with the app password").click()
        assert "/join" in page.url
        await page.get_by_role("link", name="Not now").click()
        await page.locator("main a[href^='/b/']").first.click()
        await page.fill("#compose-title", "No script needed")
        await page.fill("#compose-text", "")
        await page.get_by_role("button", name="Preview").click()  # formnovalidate
        assert "No script needed" in await page.locator("#compose-title").input_value()
        await page.fill("#compose-text", "Plain *forms*.")
        await page.get_by_role("button", name="Preview").click()
        assert await page.locator("#compose-preview em").inner_text() == "forms"
        await page.get_by_role("button", name="Post the topic").click()
        assert "/t/" in page.url
        assert await page.locator("main h1").inner_text() == "No script needed"
        await page.locator("article").first.get_by_role("button", name="🎉").click()
        assert "🎉 1" in await page.locator("article").first.inner_text()
        await context.close()


async def test_searching_from_the_header_with_and_without_javascript(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, _forum), browser() as chromium:
        axe_source = AXE.read_text()
        for javascript in (True, False):
            context = await chromium.new_context(java_script_enabled=javascript,
                                                 viewport={"width": 360, "height": 900},
                                                 bypass_csp=True)
            page = await context.new_page()
            await page.goto(base + urls.index())
            await page.get_by_role("link", name="Search", exact=True).click()
            assert page.url.endswith(urls.search())
            await page.fill("#search-q", "plain topic")
            await page.select_option("#search-sort", "date")
            await page.get_by_role("button", name="Search", exact=True).click()
            await page.wait_for_url(re.compile(r".*/search\?q=plain\+topic.*sort=date.*"))
            assert await page.locator(".search-hit").count() == 20
            assert await page.locator(".search-hit mark").count() >= 20
            assert await page.input_value("#search-q") == "plain topic"
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth > window.innerWidth + 1")
            assert not overflow
            if javascript:
                await page.evaluate(axe_source)
                result = await page.evaluate(
                    "axe.run(document, {resultTypes: ['violations']})")
                serious = [(v["id"], v["nodes"][0].get("failureSummary"))
                           for v in result["violations"]
                           if v["impact"] in ("serious", "critical")]
                assert serious == []
                SHOTS.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(SHOTS / "search-mobile.png"), full_page=True)
            await page.locator(".search-hit a").first.click()
            await page.wait_for_url(re.compile(r".*/t/[^#]+#p-.*"))
            anchor = page.url.rsplit("#", 1)[1]
            assert await page.locator(f"#{anchor}").is_visible()
            # a query that cannot be searched: the message, on the same page
            await page.goto(base + urls.search("-"))
            assert "Nothing to search for" in await page.locator("[role=alert]").inner_text()
            await context.close()
