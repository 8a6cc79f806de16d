"""A signed-in member's notifications (``projections.notifications``): the page (newest
first, unread marked, "mark all read"), the count in every page's header, and a private
Atom feed whose URL carries a token only that member is shown (an HMAC of the DID with
the session secret: a feed reader cannot sign in, and the URL reveals nothing else)."""

from __future__ import annotations

import hmac
from html import escape
from typing import Any

from aiohttp import web

from appview.bootstrap import Services
from projections import queries_notifications
from projections.queries_notifications import Notification
from web import urls
from web.auth.access import check_csrf
from web.pages.common import (
    now,
    page_viewer,
    read,
    read_form,
    render,
    services,
    validators,
    writing_context,
)
from web.pages.feeds import ATOM_TYPE, Entry, atom

PER_PAGE = 50

REASON_TEXT = {
    "reply-post": "replied to your post",
    "reply-topic": "replied in your topic",
    "quote": "quoted you",
    "mention": "mentioned you",
}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.NOTIFICATIONS, notifications_page)
    router.add_post(urls.NOTIFICATIONS_READ, mark_read)
    router.add_get(urls.NOTIFICATIONS_FEED, notifications_feed)


def feed_token(found: Services, did: str) -> str:
    return found.admin_tokens.sign(f"notifications-feed|{did}")[:32]


async def notifications_page(request: web.Request) -> web.Response:
    viewer, moment = page_viewer(request), now(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    did = viewer.did
    found = services(request)

    def load() -> dict[str, Any]:
        through = found.reader_state.notifications_read_through(did)
        with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
            items = queries_notifications.notifications(ctx, did, PER_PAGE)
        return {"items": items, "read_through": through}

    context = await read(load)
    checked = await validators(request, viewer, moment)
    items: list[Notification] = context["items"]
    context.update(writing_context(request, viewer), reason_text=REASON_TEXT,
                   newest=max((n.created_at for n in items), default=""),
                   feed_url=urls.notifications_feed(did, feed_token(found, did)))
    return await render(request, "notifications.html", context, checked, viewer)


async def mark_read(request: web.Request) -> web.Response:
    viewer = page_viewer(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=urls.notifications()))
    form = await read_form(request)
    check_csrf(request, form)
    through = form.get("through", "")
    if not through or len(through) > 64:
        raise web.HTTPBadRequest(text="through is the time read up to.")
    did = viewer.did
    await read(lambda: services(request).reader_state.read_notifications_through(did, through))
    raise web.HTTPSeeOther(urls.notifications())


async def notifications_feed(request: web.Request) -> web.Response:
    did, token = request.match_info["did"], request.match_info["token"]
    found = services(request)
    if not hmac.compare_digest(feed_token(found, did).encode(),
                               token.encode("utf-8", "surrogatepass")):
        raise web.HTTPNotFound(text="No such feed.")
    moment = now(request)
    base = str(request.url.origin())

    def build() -> bytes:
        viewer = found.queries.viewer(did)
        with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
            items = queries_notifications.notifications(ctx, did, PER_PAGE)
        entries = [Entry(
            id=f"{n.post_uri}#notification-{n.reason}",
            title=f"{n.author.handle or n.author.did} {REASON_TEXT.get(n.reason, n.reason)}"
                  f": {n.topic_title or '(untitled)'}",
            updated=n.created_at or "1970-01-01T00:00:00Z", published=n.created_at,
            author=n.author, link=urls.post(n.post_id), html=_escaped(n.excerpt))
            for n in items]
        return atom(feed_id=base + urls.notifications(), title="Notifications",
                    alternate=urls.notifications(),
                    self_link=urls.notifications_feed(did, token), author=did,
                    entries=entries, base=base, fallback_updated="1970-01-01T00:00:00Z")

    document = await read(build)
    response = web.Response(body=document, content_type=ATOM_TYPE, charset="utf-8")
    # private: a shared cache must not keep it, nor a referrer carry it further
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _escaped(text: str) -> str:
    return f"<p>{escape(text)}</p>"
