"""The operator's status page and the moderators' mod log: who may see them, what they
show, the polled fragment, and the CSRF-protected buttons."""

from __future__ import annotations

import asyncio
import re

from tests.admin_support import admin_app, csrf_from
from tests.conftest import Backend
from web import urls


async def test_the_status_page_is_for_operators(backend: Backend) -> None:
    async with admin_app(backend) as app:
        anonymous = await app.client.get(urls.admin(), allow_redirects=False)
        assert anonymous.status == 303
        assert anonymous.headers["Location"].startswith(urls.SIGNIN)
        refused = await app.client.get(urls.admin(), headers=app.bearer(app.nobody))
        assert refused.status == 403
        page = await app.client.get(urls.admin(), headers=app.bearer(app.operator))
        assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
        html = await page.text()
        for text in ("Firehose", "Projections", "Rebuilds", "Backfills", "Start a full_sync",
                     'hx-get="/admin/status"', "<td>forum</td>"):
            assert text in html, text
        fragment = await app.client.get(urls.admin_status(), headers=app.bearer(app.operator))
        body = await fragment.text()
        assert body.startswith('<div id="status"') and "<html" not in body


async def test_the_buttons_need_the_csrf_token_and_start_runs(backend: Backend) -> None:
    async with admin_app(backend, topics=30) as app:
        token = csrf_from(await (await app.client.get(urls.signin())).text())
        await app.client.post(urls.SIGNIN, data={"token": app.operator, "csrf_token": token})
        page = await (await app.client.get(urls.admin())).text()
        csrf = csrf_from(page)
        forged = await app.client.post(urls.admin_action("rebuild"), data={},
                                       allow_redirects=False)
        assert forged.status == 403
        started = await app.client.post(urls.admin_action("rebuild"),
                                        data={"csrf_token": csrf}, allow_redirects=False)
        assert started.status == 303 and started.headers["Location"] == "/admin?notice=rebuild"
        announced = await (await app.client.get(started.headers["Location"])).text()
        assert '<p class="notice" role="status">Rebuild started.</p>' in announced
        # a crafted link cannot put words on the page
        crafted = await app.client.get(f"{urls.admin()}?notice=Sign+in+again+at+evil.example")
        assert '<p class="notice" role="status">' not in await crafted.text()
        rebuilds = app.services.rebuilds
        assert rebuilds is not None
        [run] = rebuilds.recent()
        seen = []
        for _ in range(400):  # the polled fragment shows the bar moving to the end
            fragment = await (await app.client.get(urls.admin_status())).text()
            match = re.search(rf'id="rebuild-{run.id}" max="(\d+)" value="(\d+)"', fragment)
            assert match, fragment
            seen.append((int(match.group(1)), int(match.group(2))))
            if rebuilds.current() is None:
                break
            await asyncio.sleep(0.02)
        final = await (await app.client.get(urls.admin_status())).text()
        done = re.search(rf'id="rebuild-{run.id}" max="(\d+)" value="(\d+)"', final)
        assert done and done.group(1) == done.group(2)
        assert "completed" in final
        unknown = await app.client.post(urls.admin_action("explode"),
                                        data={"csrf_token": csrf})
        assert unknown.status == 404


async def test_the_mod_log_is_for_moderators_and_paged(backend: Backend) -> None:
    async with admin_app(backend, topics=40) as app:
        assert (await app.client.get(urls.admin_modlog(), allow_redirects=False)).status == 303
        refused = await app.client.get(urls.admin_modlog(), headers=app.bearer(app.nobody))
        assert refused.status == 403
        page = await app.client.get(urls.admin_modlog(), headers=app.bearer(app.operator))
        assert page.status == 200
        html = await page.text()
        total = app.services.queries.modlog(limit=1).total
        assert f"{total} actions" in html
        if total:
            assert html.count('class="modlog-entry"') == min(total, 50)
        missing = await app.client.get(urls.admin_modlog(page=999),
                                       headers=app.bearer(app.operator))
        assert missing.status == 404
        for bad in ("²", "0", "9223372036854775808"):
            refused = await app.client.get(f"{urls.admin_modlog()}?page={bad}",
                                           headers=app.bearer(app.operator))
            assert refused.status == 400 and "page must be" in await refused.text()
