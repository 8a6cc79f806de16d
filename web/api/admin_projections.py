"""`/api/admin/projections`: each projection's live generation, position and lag, and
rebuilds started and watched through the API (manageForum)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from appview.rebuilds import RebuildInProgress, RebuildManager, UnknownProjection
from web import urls
from web.auth.access import MANAGE_FORUM, check_csrf, require_permission
from web.errors import ApiError
from web.keys import SERVICES


def add_routes(app: web.Application) -> None:
    app.router.add_get(urls.API_ADMIN_PROJECTIONS, projections)
    app.router.add_post(urls.API_ADMIN_PROJECTIONS_REBUILD, start_rebuild)
    app.router.add_get(urls.API_ADMIN_REBUILD, rebuild_run)


def _manager(request: web.Request) -> RebuildManager:
    manager = request.app[SERVICES].rebuilds
    if manager is None:
        raise ApiError(503, "ServiceUnavailable",
                       "Rebuilds are not available: these read models have no generations.")
    return manager


async def projections(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    services = request.app[SERVICES]
    statuses = await asyncio.to_thread(services.projection_status)
    manager = services.rebuilds
    current = None if manager is None else manager.current()
    return web.json_response({
        "projections": [status.as_dict() for status in statuses],
        "rebuild": None if current is None else current.as_dict(),
        "recentRebuilds": [] if manager is None else [r.as_dict() for r in manager.recent()],
    })


async def start_rebuild(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    check_csrf(request)
    manager = _manager(request)
    name = request.query.get("projection") or None
    try:
        run = await asyncio.to_thread(manager.start, name, reason="api")
    except UnknownProjection as exc:
        raise ApiError(400, "InvalidRequest", str(exc)) from None
    except RebuildInProgress:
        raise ApiError(409, "Conflict", "A rebuild is already in progress.") from None
    return web.json_response({"message": "Rebuild started", **run.as_dict(),
                              "statusUrl": urls.api_admin_rebuild(run.id)}, status=202)


async def rebuild_run(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    run = _manager(request).get(request.match_info["id"])
    if run is None:
        raise ApiError(404, "NotFound", "No such rebuild.")
    return web.json_response(run.as_dict())
