"""`/api/admin/projections`: status, rebuilds started and polled, 202/409/401/403/400."""

from __future__ import annotations

import asyncio

from appview.leader import LeaderLock
from projections.forum import ForumProjection
from tests.admin_support import admin_app
from tests.conftest import Backend
from web import urls


async def test_the_status_lists_each_projection_and_its_generation(backend: Backend) -> None:
    async with admin_app(backend) as app:
        response = await app.client.get(urls.api_admin_projections(),
                                        headers=app.bearer(app.operator))
        body = await response.json()
        forum, notifications, search = body["projections"]
        assert notifications["name"] == "notifications" and notifications["lag"] == 0
        assert search["name"] == "search" and search["lag"] == 0
        head = app.services.event_log.head()
        version = ForumProjection.VERSION
        assert forum == {"name": "forum", "version": version, "builtVersion": version,
                         "generation": 1,
                         "position": head, "head": head, "lag": 0}
        assert search["name"] == "search" and search["lag"] == 0
        assert body["rebuild"] is None and body["recentRebuilds"] == []


async def test_a_rebuild_is_started_polled_and_swapped_in(backend: Backend) -> None:
    async with admin_app(backend, topics=40) as app:
        auth = app.bearer(app.operator)
        started = await app.client.post(urls.api_admin_projections_rebuild("forum"),
                                        headers=auth)
        assert started.status == 202
        body = await started.json()
        assert body["message"] == "Rebuild started" and body["status"] == "in_progress"
        status_url = body["statusUrl"]
        assert status_url == urls.api_admin_rebuild(body["id"])
        for _ in range(600):
            run = await (await app.client.get(status_url, headers=auth)).json()
            if run["status"] != "in_progress":
                break
            await asyncio.sleep(0.05)
        assert run["status"] == "completed" and run["generation"] == 2
        assert run["eventsDone"] == run["eventsTotal"]
        listing = await (await app.client.get(urls.api_admin_projections(),
                                              headers=auth)).json()
        assert listing["projections"][0]["generation"] == 2
        assert listing["recentRebuilds"][0]["id"] == body["id"]
        missing = await app.client.get(urls.api_admin_rebuild("999"), headers=auth)
        assert missing.status == 404


async def test_conflicts_bad_names_and_missing_permissions(backend: Backend) -> None:
    async with admin_app(backend) as app:
        rebuild = urls.api_admin_projections_rebuild()
        assert (await app.client.post(rebuild)).status == 401
        assert (await app.client.post(rebuild, headers=app.bearer(app.nobody))).status == 403
        bad = await app.client.post(urls.api_admin_projections_rebuild("nope"),
                                    headers=app.bearer(app.operator))
        assert bad.status == 400
        elsewhere = LeaderLock(app.services.settings, purpose="rebuild")
        assert elsewhere.acquire()
        try:
            busy = await app.client.post(rebuild, headers=app.bearer(app.operator))
            assert busy.status == 409
            assert (await busy.json())["error"] == "Conflict"
        finally:
            elsewhere.release()
