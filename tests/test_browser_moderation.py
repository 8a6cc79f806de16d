"""A moderator in Chromium: on a topic page they lock, pin, hide a reply and ban its
author through the dialog (htmx), each with a reason, see each effect on the page and
the entries in the mod log; without JavaScript the same links lead to the confirmation
page. The topic page and the mod log at phone width pass axe and do not overflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Backend
from tests.mod_support import mod_forum
from tests.test_browser import AXE, SHOTS, browser, sign_in_with_token
from web import urls


async def _act_in_dialog(page: Any, link: str, reason: str, duration: str | None = None,
                         nth: int = 0) -> None:
    await page.locator("a.mod-link", has_text=link).nth(nth).click()
    dialog = page.locator("#mod-dialog")
    await dialog.locator("textarea[name=reason]").wait_for(state="visible")
    await dialog.locator("textarea[name=reason]").fill(reason)
    if duration is not None:
        await dialog.locator("select[name=duration]").select_option(label=duration)
    async with page.expect_navigation():
        await dialog.locator("button[type=submit]").click()


async def test_a_moderator_acts_from_the_topic_page_and_reads_the_mod_log(
        tmp_path: Path) -> None:
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
    async with mod_forum(backend) as forum, browser() as chromium:
        base = str(forum.client.make_url("")).rstrip("/")
        page = await chromium.new_page()
        await page.goto(base + urls.signin())
        await sign_in_with_token(page, forum.tokens["mod"])
        topic = base + urls.topic(forum.topic_id("member"))
        await page.goto(topic)

        await _act_in_dialog(page, "Lock", "The thread got heated")
        assert await page.locator(".meta .badge", has_text="Locked").count() == 1
        await _act_in_dialog(page, "Pin", "Worth reading")
        assert await page.locator(".meta .badge", has_text="Pinned").count() == 1
        await _act_in_dialog(page, "Hide", "Spam link", nth=1)  # the reply
        assert await page.get_by_text("Hidden by a moderator").count() == 1
        await _act_in_dialog(page, "Ban author", "Spams again", duration="7 days", nth=1)
        assert await page.get_by_text("Author banned").count() >= 1
        assert await page.locator("a.mod-link", has_text="Unlock").count() == 1
        assert await page.locator("a.mod-link", has_text="Unban author").count() >= 1

        await page.locator(".mod-tools a", has_text="Mod log").last.click()
        entries = page.locator(".modlog-entry")
        assert await entries.count() == 4
        texts = await entries.all_inner_texts()
        assert "banned" in texts[0] and "Spams again" in texts[0] and "until" in texts[0]
        assert "locked" in texts[3] and "The thread got heated" in texts[3]
        await page.close()

        # without JavaScript: the confirmation page, then back to the topic
        context = await chromium.new_context(java_script_enabled=False)
        plain = await context.new_page()
        await plain.goto(base + urls.signin())
        await plain.get_by_text("With an admin token", exact=True).click()
        await plain.fill("#token", forum.tokens["mod"])
        await plain.get_by_role("button", name="Sign in with the token").click()
        await plain.goto(topic)
        await plain.locator("a.mod-link", has_text="Unlock").click()
        assert "Unlock the topic?" in await plain.locator("h1").inner_text()
        await plain.fill("textarea[name=reason]", "Calmer now")
        await plain.get_by_role("button", name="Unlock the topic").click()
        assert plain.url == topic
        assert await plain.locator(".meta .badge", has_text="Locked").count() == 0

        # at phone width: no overflow, no serious accessibility violation
        phone = await chromium.new_context(viewport={"width": 390, "height": 844},
                                           bypass_csp=True)
        small = await phone.new_page()
        await small.goto(base + urls.signin())
        await sign_in_with_token(small, forum.tokens["mod"])
        SHOTS.mkdir(parents=True, exist_ok=True)
        failures: list[str] = []
        for name, path in (("moderated-topic", urls.topic(forum.topic_id("member"))),
                           ("modlog-filtered", urls.admin_modlog_filtered(
                               member=forum.did("member"))),
                           ("mod-confirm", urls.mod_confirm("hide", forum.topic_id("member")))):
            await small.goto(base + path)
            await small.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
            if await small.evaluate(
                    "document.documentElement.scrollWidth > window.innerWidth + 1"):
                failures.append(f"{name}: wider than 390px")
            await small.evaluate(AXE.read_text())
            result = await small.evaluate("axe.run(document, {resultTypes: ['violations']})")
            failures += [f"{name}: {v['id']}" for v in result["violations"]
                         if v["impact"] in ("serious", "critical")]
        assert failures == []
