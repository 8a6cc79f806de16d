"""Moderation from the topic page: lock/unlock and pin/unpin a topic, hide/unhide a
post, ban/unban its author, each with a confirmation and a reason.

``GET /mod/{action}?subject=…&next=…`` is the confirmation page (works without
JavaScript): what is about to happen, the post in context, a reason, for a ban how long;
its form posts to ``POST /mod/{action}``, which acts through
``appview.writes.forum_actions`` (the same checks as the API) and goes back to ``next``
(the topic page, where the effect shows). With htmx the topic page loads the same form
into a ``<dialog>`` (``web/static/mod.js`` opens it). A refusal shows the page again with
the reason in words and the status of the refusal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from appview.writes.errors import WriteError
from appview.writes.forum import record_time
from appview.writes.forum_actions import ACTIONS
from projections.views import Viewer
from web import urls
from web.auth.access import check_csrf
from web.pages.common import now, page_viewer, read, read_form, services
from web.pages.writing import _done, _page

# The page's names for the actions (the records say delete/undelete for hide/unhide).
PAGE_ACTIONS: Final = {"ban": "ban", "unban": "unban", "lock": "lock", "unlock": "unlock",
                       "pin": "pin", "unpin": "unpin", "hide": "delete",
                       "unhide": "undelete"}
VERBS: Final = {"ban": "Ban the author", "unban": "Lift the ban", "lock": "Lock the topic",
                "unlock": "Unlock the topic", "pin": "Pin the topic",
                "unpin": "Unpin the topic", "hide": "Hide the post",
                "unhide": "Show the post again"}
EFFECTS: Final = {
    "ban": "Their posts are hidden from everyone but moderators, and they cannot post,"
           " until the ban ends or is lifted.",
    "unban": "Their posts show again and they may post.",
    "lock": "Nobody but moderators can reply to it.",
    "unlock": "Members can reply to it again.",
    "pin": "It is listed first on its board.",
    "unpin": "It is listed by its last activity again.",
    "hide": "Only moderators see it, marked \"Hidden by a moderator\".",
    "unhide": "Everyone sees it again.",
}
DURATIONS: Final = (("", "Until lifted"), ("1d", "1 day"), ("7d", "7 days"),
                    ("30d", "30 days"))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.MOD_ACTION, confirm)
    router.add_post(urls.MOD_ACTION, act)


def _action(request: web.Request) -> str:
    name = request.match_info["action"]
    if name not in PAGE_ACTIONS:
        raise web.HTTPNotFound(text="No such moderation action.")
    return name


async def _moderator(request: web.Request, name: str) -> Viewer:
    viewer = await asyncio.to_thread(page_viewer, request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    permission = ACTIONS[PAGE_ACTIONS[name]].permission
    if not viewer.has(permission):
        raise web.HTTPForbidden(text=f"Your role in this forum does not grant {permission}.")
    return viewer


async def _context(request: web.Request, viewer: Viewer, name: str, fields: dict[str, str],
                   ) -> dict[str, Any]:
    """The subject shown: the post (and for a ban, the member) in context."""
    subject = fields.get("subject", "").strip()
    post_ref = fields.get("post", "").strip() or (subject if not subject.startswith("did:")
                                                  else "")
    if not subject:
        raise web.HTTPBadRequest(text="Say what to act on: ?subject=<post id or DID>.")
    queries = services(request).queries
    moment = now(request)

    def load() -> dict[str, Any]:
        post = queries.post(post_ref, viewer=viewer, now=moment) if post_ref else None
        member = queries.member(subject, now=moment) if subject.startswith("did:") else None
        return {"post": post, "member": member, "forum": queries.forum()}

    found = await read(load)
    if found["post"] is None and found["member"] is None:
        raise web.HTTPNotFound(text="No such post or member.")
    back = urls.local_path(fields.get("next"), urls.post(found["post"].id)
                           if found["post"] is not None else urls.member(subject))
    return {**found, "action": name, "subject": subject, "verb": VERBS[name],
            "effect": EFFECTS[name], "durations": DURATIONS if name == "ban" else (),
            "next": back, "reason": fields.get("reason", ""),
            "duration": fields.get("duration", ""), "error": None}


async def confirm(request: web.Request) -> web.Response:
    name = _action(request)
    viewer = await _moderator(request, name)
    context = await _context(request, viewer, name, dict(request.query))
    return _page(request, "moderate.html", context, viewer)


def _expires(duration: str, moment: datetime) -> str | None:
    days = {"1d": 1, "7d": 7, "30d": 30}.get(duration)
    if days is None:
        return None
    until = moment + timedelta(days=days)
    return record_time(int(until.astimezone(UTC).timestamp() * 1e6))


async def act(request: web.Request) -> web.Response:
    name = _action(request)
    fields = await read_form(request)
    check_csrf(request, fields)
    viewer = await _moderator(request, name)
    context = await _context(request, viewer, name, fields)
    assert viewer.did is not None
    subject = context["subject"]
    try:
        await services(request).forum_actions.moderate(
            viewer.did, PAGE_ACTIONS[name], subject, fields.get("reason", ""),
            expires_at=_expires(fields.get("duration", ""), now(request))
            if name == "ban" else None)
    except WriteError as exc:
        context["error"] = str(exc)
        return _page(request, "moderate.html", context, viewer, status=exc.status)
    return _done(request, context["next"])
