"""Live updates over Server-Sent Events: ``/t/{id}/live`` tells a topic page of its new
replies, ``/b/{id}/live`` a board page of its new topics (docs/web.md).

Each event's id is the log position of the post's creation, and after each step the
stream sends a bare ``id:`` of the position it has covered, so a client that reconnects
with ``Last-Event-ID`` (browsers do by themselves) resumes exactly where it stopped:
nothing missed, nothing twice. The first connection starts from the position the page
was rendered at (``?after=``). Streams wait on the process's one notifier
(``appview.notifier``) and share their answers (``web.live_events``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from appview.notifier import PositionNotifier
from projections import queries_posts, queries_structure
from web import urls
from web.keys import SERVICES
from web.live_events import CATCH_UP_SPAN, LiveEvents, Scope
from web.pages.common import now, page_viewer, read, services

NOTIFIER = web.AppKey("live_notifier", PositionNotifier)
LIVE_EVENTS = web.AppKey("live_events", LiveEvents)

RETRY_MS = 3000
# positions read from the log in one step (a client catching up takes several)
STEP_SPAN = 5000


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.TOPIC_LIVE, topic_stream)
    router.add_get(urls.BOARD_LIVE, board_stream)


def setup(app: web.Application) -> None:
    """One notifier and one answer cache per process, fed by the projector."""
    found = app[SERVICES]
    app[NOTIFIER] = PositionNotifier(found.projector.position)
    app[LIVE_EVENTS] = LiveEvents(found)
    app.cleanup_ctx.append(_run_notifier)
    app.on_shutdown.append(_end_streams)


async def _run_notifier(app: web.Application) -> AsyncIterator[None]:
    notifier = app[NOTIFIER]
    projector = app[SERVICES].projector
    await notifier.start()
    projector.subscribe(notifier.advance_threadsafe)
    stop = asyncio.Event()
    watch = asyncio.create_task(notifier.watch(stop), name="live-notifier")
    yield
    projector.unsubscribe(notifier.advance_threadsafe)
    stop.set()
    await watch


async def _end_streams(app: web.Application) -> None:
    # open streams would hold the server's shutdown for its whole timeout
    app[NOTIFIER].close()


def live_position(request: web.Request) -> int:
    """The position a page is rendered at, for its stream's ``?after=``: read before
    the page's queries, so the stream repeats nothing the page shows... at worst what it
    shows too (the script skips a post already on the page)."""
    return request.app[NOTIFIER].position


async def topic_stream(request: web.Request) -> web.StreamResponse:
    viewer, moment = page_viewer(request), now(request)
    queries = services(request).queries
    ref = request.match_info["id"]

    def find() -> str | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            found = queries_posts.post(ctx, ref)
        return found.uri if found is not None and found.kind == "topic" else None

    uri = await read(find)
    if uri is None:
        raise web.HTTPNotFound(text="No such topic.")
    return await _stream(request, Scope("topic", uri))


async def board_stream(request: web.Request) -> web.StreamResponse:
    viewer, moment = page_viewer(request), now(request)
    queries = services(request).queries
    ref = request.match_info["id"]

    def find() -> str | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            found = queries_structure.board(ctx, ref)
        return None if found is None else found.uri

    uri = await read(find)
    if uri is None:
        raise web.HTTPNotFound(text="No such board.")
    return await _stream(request, Scope("board", uri))


def _start(request: web.Request, current: int) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw is None or raw == "":
        return current
    try:
        start = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text="Last-Event-ID and after are log positions.") from None
    if start < 0:
        raise web.HTTPBadRequest(text="Last-Event-ID and after are log positions.")
    return start


async def _stream(request: web.Request, scope: Scope) -> web.StreamResponse:
    notifier = request.app[NOTIFIER]
    live = request.app[LIVE_EVENTS]
    viewer = page_viewer(request)
    position = _start(request, notifier.position)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a proxy in front must pass each event on at once
    })
    await response.prepare(request)
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        while not notifier.closed:
            head = await notifier.wait_past(position)
            if notifier.closed:
                break
            if head <= position:
                await response.write(b": keepalive\n\n")
                continue
            if head - position > CATCH_UP_SPAN:
                # too far behind to read the log for it: the page is that old
                await response.write(f"id: {head}\nevent: reload\ndata: {{}}\n\n".encode())
                position = head
                continue
            until = min(head, position + STEP_SPAN)
            await response.write(await live.chunk(scope, viewer, position, until))
            position = until
    except ConnectionResetError:  # the client went away
        return response
    return response


def stream_context(request: web.Request, url: str) -> dict[str, Any]:
    """What a page with a live stream puts in its markup (``data-live``)."""
    return {"live_url": url, "live_after": live_position(request)}
