"""The operator's status page (manageForum) and the moderators' mod log.

The status page shows the firehose, each projection's generation, position and lag, and
the backfill runs and rebuilds with progress bars; its status section is also served
alone (``/admin/status``), which htmx polls every two seconds; without JavaScript a
refresh link does the same. Its buttons are POST forms with the CSRF token.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from appview.backfill.manager import BackfillInProgress
from appview.rebuilds import RebuildInProgress
from web import urls
from web.auth.access import MANAGE_FORUM, check_csrf, csrf_token, require_page_permission
from web.keys import LIVE, SERVICES
from web.pages.common import base_context, page_number, page_viewer, pages_for, read_form

MODLOG_PAGE = 50
# What an action's redirect may announce: a code in the URL, never its text, so that a
# crafted link cannot put words of its choosing on the operator's page.
NOTICES = {
    "rebuild": "Rebuild started.",
    "catch_up": "Backfill (catch_up) started.",
    "full_sync": "Backfill (full_sync) started.",
    "busy": "a rebuild or a backfill is already running (below).",
}
ERROR_NOTICES = frozenset({"busy"})  # shown as errors (red, role alert)
_RATE = web.AppKey("admin_rate_sample", list)  # [(monotonic, stored)] of the firehose


def add_routes(app: web.Application) -> None:
    app[_RATE] = []
    app.router.add_get(urls.ADMIN, admin)
    app.router.add_get(urls.ADMIN_STATUS, status_fragment)
    app.router.add_get(urls.ADMIN_ACTION, confirm_action)
    app.router.add_post(urls.ADMIN_ACTION, action)
    app.router.add_get(urls.ADMIN_MODLOG, modlog)


def _iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="seconds")


def _firehose(request: web.Request) -> dict[str, Any] | None:
    live = request.app.get(LIVE)
    if live is None:
        return None
    status = live.consumer.status
    now_us = request.app[SERVICES].clock.now_us()
    samples = request.app[_RATE]
    samples.append((time.monotonic(), status.stored))
    del samples[:-30]
    first = next((s for s in samples if samples[-1][0] - s[0] <= 60), samples[-1])
    elapsed = samples[-1][0] - first[0]
    return {"connected": status.connected, "cursor": status.cursor,
            "last_event_at": _iso(status.last_event_at),
            "lag_seconds": status.lag_seconds(now_us), "stored": status.stored,
            "rate": (samples[-1][1] - first[1]) / elapsed if elapsed > 0 else None,
            "breaker": status.breaker, "last_error": status.last_error,
            "role": live.role, "leader_lock": live.leader_description,
            "projector_error": live.projector.last_error,
            "projector_failures": live.projector.failures_in_a_row,
            "projector_retry_in": live.projector.retry_in}


def _status(request: web.Request) -> dict[str, Any]:
    services = request.app[SERVICES]
    rebuilds, backfills = services.rebuilds, services.backfills
    return {
        "firehose": _firehose(request),
        "projections": services.projection_status(),
        "rebuild": None if rebuilds is None else rebuilds.current(),
        "rebuilds": [] if rebuilds is None else rebuilds.recent(5),
        "backfills": [] if backfills is None else backfills.recent(5),
        "backfill_errors": {} if backfills is None else {
            run.id: backfills.errors(run.id, 20) for run in backfills.recent(5)
            if run.error_count},
        "can_rebuild": rebuilds is not None,
        "can_backfill": backfills is not None,
        "forum_agent": services.forum_agent.health(),
    }


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


async def admin(request: web.Request) -> web.StreamResponse:
    viewer = await asyncio.to_thread(require_page_permission, request, MANAGE_FORUM)
    context = {**base_context(request, viewer), **await asyncio.to_thread(_status, request),
               "forum": request.app[SERVICES].queries.forum(),
               "csrf_token": csrf_token(request),
               "notice": NOTICES.get(request.query.get("notice", "")),
               "notice_is_error": request.query.get("notice") in ERROR_NOTICES}
    return _no_store(aiohttp_jinja2.render_template("admin/status.html", request, context))


async def status_fragment(request: web.Request) -> web.StreamResponse:
    await asyncio.to_thread(require_page_permission, request, MANAGE_FORUM)
    context = {**await asyncio.to_thread(_status, request), "urls": urls}
    return _no_store(aiohttp_jinja2.render_template("admin/_status.html", request, context))


# The long or heavy actions, asked about first: (question, what it does, button).
CONFIRMATIONS = {
    "full_sync": ("Start a full_sync?", "Every member's repository is fetched again from"
                  " their PDS: minutes to hours of requests on a large forum.",
                  "Start the full_sync"),
    "rebuild": ("Rebuild the read models?", "Every projection is built again from the"
                " event log into a fresh generation, then switched to; the forum stays"
                " readable meanwhile.", "Start the rebuild"),
    "catch_up": ("Start a catch_up?", "The events missed since the last cursor are"
                 " fetched again.", "Start the catch_up"),
}


async def confirm_action(request: web.Request) -> web.StreamResponse:
    """The confirmation page of an action (the status page links here; works without
    JavaScript)."""
    viewer = await asyncio.to_thread(require_page_permission, request, MANAGE_FORUM)
    name = request.match_info["action"]
    if name not in CONFIRMATIONS:
        raise web.HTTPNotFound(text="No such action.")
    question, explanation, label = CONFIRMATIONS[name]
    context = {**base_context(request, viewer), "action": name, "question": question,
               "explanation": explanation, "label": label,
               "csrf_token": csrf_token(request),
               "forum": request.app[SERVICES].queries.forum()}
    return _no_store(aiohttp_jinja2.render_template("admin/confirm_action.html", request,
                                                    context))


async def action(request: web.Request) -> web.StreamResponse:
    await asyncio.to_thread(require_page_permission, request, MANAGE_FORUM)
    check_csrf(request, await read_form(request))
    name = request.match_info["action"]
    services = request.app[SERVICES]
    try:
        if name == "rebuild" and services.rebuilds is not None:
            await asyncio.to_thread(services.rebuilds.start, reason="admin page")
        elif name in ("catch_up", "full_sync") and services.backfills is not None:
            await asyncio.to_thread(services.backfills.start, name)
        else:
            raise web.HTTPNotFound(text="No such action.")
        notice = name
    except (RebuildInProgress, BackfillInProgress):
        notice = "busy"
    raise web.HTTPSeeOther(f"{urls.admin()}?{urlencode({'notice': notice})}")


# The mod log in words: what each action did to its subject.
ACTION_WORDS = {"ban": "banned", "unban": "lifted the ban on", "lock": "locked",
                "unlock": "unlocked", "pin": "pinned", "unpin": "unpinned", "delete": "hid",
                "undelete": "unhid"}
ACTION_CHOICES = (("ban", "Ban"), ("unban", "Unban"), ("lock", "Lock"), ("unlock", "Unlock"),
                  ("pin", "Pin"), ("unpin", "Unpin"), ("delete", "Hide"),
                  ("undelete", "Unhide"))


async def modlog(request: web.Request) -> web.StreamResponse:
    viewer = page_viewer(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    if not viewer.is_moderator:
        raise web.HTTPForbidden(text="The mod log is for moderators.")
    page = page_number(request)
    filters = {name: (request.query.get(name) or "").strip()[:300] or None
               for name in ("moderator", "action", "member")}
    if filters["action"] not in (None, *ACTION_WORDS):
        raise web.HTTPBadRequest(text="action must be one of " + ", ".join(ACTION_WORDS))
    queries = request.app[SERVICES].queries
    for name in ("moderator", "member"):  # people type handles; the log holds DIDs
        value = filters[name]
        if value is not None and not value.startswith("did:"):
            filters[name] = await asyncio.to_thread(queries.did_for_handle, value) or value
    entries = await asyncio.to_thread(queries.modlog, offset=(page - 1) * MODLOG_PAGE,
                                      limit=MODLOG_PAGE, **filters)
    last_page = pages_for(entries.total, MODLOG_PAGE)
    if page > last_page:
        raise web.HTTPNotFound(text="No such page.")

    def page_url(number: int) -> str:
        return urls.admin_modlog_filtered(number, **filters)

    context = {**base_context(request, viewer), "entries": entries, "page": page,
               "last_page": last_page, "forum": queries.forum(), "filters": filters,
               "words": ACTION_WORDS, "action_choices": ACTION_CHOICES,
               "modlog_page_url": page_url}
    return _no_store(aiohttp_jinja2.render_template("admin/modlog.html", request, context))
