"""`/api/admin/backfill`: gap detection and backfills started and watched through the
API, exactly as the original appview's request file specifies (manageForum)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from appview.backfill.manager import NOT_NEEDED, BackfillInProgress, BackfillManager
from appview.backfill.progress import KINDS
from web import urls
from web.auth.access import MANAGE_FORUM, check_csrf, require_permission
from web.errors import ApiError
from web.keys import SERVICES
from web.params import is_digits

log = logging.getLogger(__name__)


def add_routes(app: web.Application) -> None:
    app.router.add_post(urls.API_ADMIN_BACKFILL, start)
    app.router.add_get(urls.API_ADMIN_BACKFILL, recent)
    app.router.add_get(urls.API_ADMIN_BACKFILL_RUN, run_status)
    app.router.add_get(urls.API_ADMIN_BACKFILL_ERRORS, run_errors)


def _manager(request: web.Request) -> BackfillManager:
    manager = request.app[SERVICES].backfills
    if manager is None:
        raise ApiError(503, "ServiceUnavailable", "BackfillManager not available.")
    return manager


def _run_id(request: web.Request) -> str:
    run_id = request.match_info["id"]
    if not is_digits(run_id, 18):
        raise ApiError(400, "InvalidRequest", "The backfill id must be an integer.")
    return run_id


async def start(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    check_csrf(request)
    manager = _manager(request)
    force = request.query.get("force")
    try:
        # an unrecognised force falls through to gap detection, as the original does
        kind = force if force in KINDS else await asyncio.to_thread(manager.detect)
    except Exception as exc:
        log.exception("backfill gap detection failed")
        raise ApiError(500, "InternalServerError",
                       "Failed to check backfill status.") from exc
    if kind is None:
        return web.json_response({"message": NOT_NEEDED})
    try:
        run = await asyncio.to_thread(manager.start, kind)
    except BackfillInProgress:
        raise ApiError(409, "Conflict", "A backfill is already in progress.") from None
    except Exception as exc:
        log.exception("could not start a backfill")
        raise ApiError(500, "InternalServerError",
                       "Failed to create the backfill progress row.") from exc
    return web.json_response({"message": "Backfill started", "type": kind,
                              "status": "in_progress", "id": run.id}, status=202)


async def run_status(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    run_id = _run_id(request)
    run = await asyncio.to_thread(_manager(request).get, run_id)
    if run is None:
        raise ApiError(404, "NotFound", "No such backfill.")
    return web.json_response(run.as_dict())


async def run_errors(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    run_id = _run_id(request)
    manager = _manager(request)
    if await asyncio.to_thread(manager.get, run_id) is None:
        raise ApiError(404, "NotFound", "No such backfill.")
    errors = await asyncio.to_thread(manager.errors, run_id)
    return web.json_response({"errors": [error.as_dict() for error in errors]})


async def recent(request: web.Request) -> web.Response:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    runs = await asyncio.to_thread(_manager(request).recent)
    return web.json_response({"backfills": [run.as_dict() for run in runs]})
