"""Members report posts; moderators work through the queue.

``GET``/``POST /p/{id}/report``: a signed-in member says what is wrong with a post (the
report is the appview's own, ``appview.reports``: nothing is written to any repo).
``GET /mod/reports``: for moderators, every post with open reports, oldest first, with
its topic and text in context, who reported it and why, the moderation links of the
topic page (hide, ban the author, lock the topic; each comes back here) and a form that
closes the post's reports as resolved or dismissed (``POST /mod/reports/close``)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from appview.reports import ReportError
from projections.views import Author, Viewer
from web import urls
from web.auth.access import check_csrf
from web.pages.common import now, page_viewer, read, read_form, services
from web.pages.writing import _done, _page


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.REPORT_POST, report_form)
    router.add_post(urls.REPORT_POST, report)
    router.add_get(urls.MOD_REPORTS, queue)
    router.add_post(urls.MOD_REPORTS_CLOSE, close)


async def _member(request: web.Request) -> Viewer:
    viewer = await asyncio.to_thread(page_viewer, request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    return viewer


async def _post(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    queries = services(request).queries
    moment = now(request)

    def load() -> dict[str, Any]:
        return {"post": queries.post(request.match_info["id"], viewer=viewer, now=moment),
                "forum": queries.forum()}

    found = await read(load)
    if found["post"] is None or found["post"].deleted_by_author:
        raise web.HTTPNotFound(text="No such post.")
    return found


async def report_form(request: web.Request) -> web.Response:
    viewer = await _member(request)
    found = await _post(request, viewer)
    return _page(request, "report.html", {**found, "reason": "", "error": None,
                                          "done": False}, viewer)


async def report(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    viewer = await _member(request)
    found = await _post(request, viewer)
    assert viewer.did is not None
    reason = fields.get("reason", "")
    try:
        await asyncio.to_thread(services(request).reports.report, found["post"].uri,
                                viewer.did, reason)
    except ReportError as exc:
        return _page(request, "report.html", {**found, "reason": reason, "error": str(exc),
                                              "done": False}, viewer, status=400)
    return _page(request, "report.html", {**found, "reason": reason, "error": None,
                                          "done": True}, viewer)


async def _moderator(request: web.Request) -> Viewer:
    viewer = await _member(request)
    if not viewer.is_moderator:
        raise web.HTTPForbidden(text="The report queue is for moderators.")
    return viewer


async def queue(request: web.Request) -> web.Response:
    viewer = await _moderator(request)
    svc = services(request)
    moment = now(request)

    def load() -> dict[str, Any]:
        items = []
        for reported in svc.reports.open_queue():
            post = svc.queries.post(reported.post_uri, viewer=viewer, now=moment)
            topic = None
            if post is not None and post.kind == "reply":
                topic = svc.queries.post(post.topic_uri, viewer=viewer, now=moment)
            reporters = []
            for entry in reported.reports:
                member = svc.queries.member(entry.reporter, now=moment)
                reporters.append((Author(entry.reporter, None if member is None
                                         else member.handle), entry))
            items.append({"uri": reported.post_uri, "post": post, "topic": topic,
                          "reports": reporters})
        return {"items": items, "forum": svc.queries.forum()}

    context = await read(load)
    return _page(request, "reports.html", {**context, "here": urls.mod_reports()}, viewer)


async def close(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    viewer = await _moderator(request)
    assert viewer.did is not None
    try:
        await asyncio.to_thread(services(request).reports.close, fields.get("post_uri", ""),
                                viewer.did, fields.get("outcome", ""))
    except ReportError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _done(request, urls.mod_reports())
