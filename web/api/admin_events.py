"""`GET /api/admin/events?after=POS&limit=N[&public=1]`: the log as the export's JSON
lines (``events.export``), streamed page by page, for `atbb events pull` (manageForum).

The answer opens with the export's header (its ``since`` is ``after``, its ``head`` the
log's head when the answer began) and holds up to ``limit`` events after ``after``, in
log order, each with its position in this log. An answer with no event means the puller
has everything. With ``public=1`` or EVENTS_API_PUBLIC, each event is its public view
(``events.public``): events with nothing public are left out, and the answer still holds
``limit`` events when the log has them.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from events.export import ExportHeader, to_line
from events.public import public_logged
from web import urls
from web.auth.access import MANAGE_FORUM, require_permission
from web.errors import bad_request
from web.keys import SERVICES
from web.params import BadParameter, query_int

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 1_000_000
PAGE = 5_000  # events read (and written to the socket) at a time


def add_routes(app: web.Application) -> None:
    app.router.add_get(urls.API_ADMIN_EVENTS, events_stream)


def _public(request: web.Request) -> bool:
    raw = request.query.get("public", "")
    if raw not in ("", "0", "1", "true", "false"):
        raise bad_request(f"public must be 1 or 0, got {raw[:20]!r}")
    return raw in ("1", "true") or request.app[SERVICES].settings.events_api_public


async def events_stream(request: web.Request) -> web.StreamResponse:
    await asyncio.to_thread(require_permission, request, MANAGE_FORUM)
    try:
        after = query_int(request.query, "after") or 0
        limit = query_int(request.query, "limit", minimum=1, maximum=MAX_LIMIT)
    except BadParameter as exc:
        raise bad_request(str(exc)) from None
    public = _public(request)
    limit = DEFAULT_LIMIT if limit is None else limit
    services = request.app[SERVICES]
    log = services.event_log
    head = await asyncio.to_thread(log.head)
    response = web.StreamResponse(headers={"Content-Type": "application/jsonl",
                                           "Cache-Control": "no-store"})
    response.enable_compression()
    await response.prepare(request)
    header = ExportHeader(services.settings.forum_did, after, None, head)
    await response.write(header.to_line().encode() + b"\n")
    sent = 0
    # the next page is read (in a thread: the store releases the GIL) while this one is
    # encoded and written
    reading = asyncio.ensure_future(asyncio.to_thread(log.read, after, min(PAGE, limit)))
    try:
        while True:
            page = await reading
            if not page:
                break
            lines = []
            for logged in page:
                shown = public_logged(logged) if public else logged
                if shown is not None:
                    lines.append(to_line(shown))
            sent += len(lines)
            if sent >= limit:
                lines = lines[:len(lines) - (sent - limit)]
            else:
                reading = asyncio.ensure_future(asyncio.to_thread(
                    log.read, page[-1].position, min(PAGE, limit - sent)))
            if lines:
                await response.write(("\n".join(lines) + "\n").encode())
            if sent >= limit:
                break
    finally:
        if not reading.done():
            reading.cancel()
    await response.write_eof()
    return response
