"""What every reader page handler shares: the viewer, "now", paging, the cheap state read
behind the ETag, and rendering with the cache validators."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiohttp_jinja2
from aiohttp import web

from appview.bootstrap import Services
from projections import queries_notifications
from projections.views import Viewer
from web.auth import access as auth
from web.keys import SERVICES
from web.markdown import MarkdownRenderer
from web.pages import conditional
from web.pages.cache import PageCache
from web.pages.conditional import Freshness, Validators
from web.pages.state import PageState
from web.params import BadParameter, query_int
from web.past import banner
from web.themes import THEME_COOKIE, theme_choice

T = TypeVar("T")


def notification_count(found: Services, viewer: Viewer, moment: datetime) -> int:
    """The header's count of unread notifications (blocking: from a worker thread)."""
    if viewer.did is None:
        return 0
    through = found.reader_state.notifications_read_through(viewer.did)
    with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
        return queries_notifications.unread_count(ctx, viewer.did, through)


class ViewerResolver(Protocol):
    def __call__(self, request: web.Request) -> Viewer: ...


FRESHNESS = web.AppKey("freshness", Freshness)
PAGE_CACHE = web.AppKey("page_cache", PageCache)
PAGE_STATE = web.AppKey("page_state", PageState)
MARKDOWN = web.AppKey("markdown", MarkdownRenderer)
# Who is reading a page: the signed-in account (web/auth.py); an application may set its
# own resolver (the tests read as a moderator this way).
PAGE_VIEWER = web.AppKey("page_viewer", ViewerResolver)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(services(request).clock.now_us() / 1e6, UTC)


def page_viewer(request: web.Request) -> Viewer:
    resolver = request.app.get(PAGE_VIEWER)
    if resolver is not None:
        return resolver(request)
    return _signed_in_viewer(request)


def _signed_in_viewer(request: web.Request) -> Viewer:
    return auth.page_viewer(request)


async def read(func: Callable[[], T]) -> T:
    # Queries block on the database; keep them off the event loop.
    return await asyncio.to_thread(func)


async def read_form(request: web.Request) -> dict[str, str]:
    """The posted form's fields. The body must arrive within REQUEST_READ_TIMEOUT (the
    server's header timeout ends with the head): a client trickling it gets a 408."""
    seconds = services(request).settings.request_read_timeout
    try:
        async with asyncio.timeout(seconds):
            form = await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"The form did not arrive within {seconds:g} seconds.") from None
    return {key: str(value) for key, value in form.items()}


def page_number(request: web.Request) -> int:
    """The 1-based ``?page=N`` (1 when absent); a 400 when it is no such number (a
    number past the last page is the handler's 404)."""
    try:
        return query_int(request.query, "page", minimum=1) or 1
    except BadParameter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def pages_for(total: int, size: int) -> int:
    return max(1, -(-total // size))


def _state(services: Services, viewer: Viewer, moment: datetime) -> list[str]:
    store = services.read_models
    parts = [f"{p.name}:{p.version}:{store.position(p.name)}" for p in services.projections]
    # Read after the positions, so the page is never older than what the ETag says.
    with services.queries.snapshot(viewer=viewer, now=moment) as ctx:
        parts.append("bans:" + ",".join(ctx.banned))
    return parts


async def validators(request: web.Request, viewer: Viewer, moment: datetime, *,
                     extra: Sequence[str] = ()) -> Validators:
    """``extra``: what else the page shows that the read models do not hold."""
    found = services(request)
    parts = await request.app[PAGE_STATE].parts(
        found.read_models.change_mark(), moment,
        lambda: read(lambda: _state(found, viewer, moment)))
    if viewer.did is not None:
        # what the member has read (notifications, topics) shows on every page
        did = viewer.did
        parts.append(f"read:{await read(lambda: found.reader_state.version(did))}")
    parts += [
        viewer.did or "-",
        # a signed-in reader's pages carry forms with the session's CSRF token
        auth.csrf_token(request) if viewer.did else "-",
        ",".join(sorted(viewer.permissions)),
        str(request.rel_url),
        theme_choice(request.cookies.get(THEME_COOKIE)),
        *extra,
    ]
    return request.app[FRESHNESS].validators(parts)


# Offered on every post (web/pages/writing.py adds what members wrote besides).
REACTIONS = ("👍", "❤️", "😂", "🎉", "🤔")


def writing_context(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    """What a page with writing forms needs: the CSRF token of a signed-in reader (an
    anonymous reader gets no forms, only a link to sign in), the reactions offered."""
    return {"csrf_token": auth.csrf_token(request) if viewer.did else None,
            "reactions_offered": REACTIONS}


def base_context(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    return {
        "theme": theme_choice(request.cookies.get(THEME_COOKIE)),
        "viewer": viewer,
        "current_path": request.path_qs,
        "past": banner(request),
    }


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    found: Validators,
    viewer: Viewer,
    *,
    status: int = 200,
) -> web.Response:
    """The page, rendered in a worker thread: a long page (a topic's 25 posts with their
    forms) takes milliseconds of Python, which on the event loop would hold up every other
    request's I/O meanwhile (a member's write waiting behind readers' pages)."""
    full = {**base_context(request, viewer), **context}
    if viewer.did is not None and "unread_notifications" not in full:
        held, moment = services(request), now(request)
        full["unread_notifications"] = await read(
            lambda: notification_count(held, viewer, moment))
    text = await asyncio.to_thread(aiohttp_jinja2.render_string, template, request, full)
    response = web.Response(text=text, status=status, content_type="text/html",
                            charset="utf-8")
    conditional.apply(response, found, private=viewer.did is not None)
    cache = request.app.get(PAGE_CACHE)
    if cache is not None and status == 200 and isinstance(response.body, bytes):
        cache.put(found.etag, response.body)
    return response


def unchanged(request: web.Request, found: Validators) -> bool:
    return conditional.is_not_modified(request, found)


def answer_early(request: web.Request, found: Validators,
                 viewer: Viewer) -> web.Response | None:
    """A 304 when the client holds the page, the page rendered before for this ETag when
    the server does; None when the handler must render it."""
    if unchanged(request, found):
        return not_modified(found, viewer)
    cache = request.app.get(PAGE_CACHE)
    body = None if cache is None else cache.get(found.etag)
    if body is None:
        return None
    response = web.Response(body=body, content_type="text/html", charset="utf-8")
    conditional.apply(response, found, private=viewer.did is not None)
    return response


def not_modified(found: Validators, viewer: Viewer) -> web.Response:
    return conditional.not_modified(found, private=viewer.did is not None)
