"""The forum as it was: `atbb serve --at TIME` / `--until POS` serves read models
projected up to a past position of the log, read only, under a banner saying when.

Read only: no ingest runs, and every request that would write (a post, a sign-in, an
admin's rebuild) is refused with 403 before its handler; only the reader's colour
theme, a cookie, may still be chosen. The banner is on every page (``base.html``).
"""

from __future__ import annotations

from aiohttp import web

from web import urls
from web.errors import ApiError, Handler

PAST = web.AppKey("past", str)  # the banner: what moment the forum is shown at

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_STILL_ALLOWED = frozenset({urls.THEME_CHOICE})


@web.middleware
async def read_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _SAFE or request.path in _STILL_ALLOWED:
        return await handler(request)
    message = (f"This forum is shown {request.app[PAST]}, read only: nothing can be "
               "written to it.")
    if request.path.startswith("/api/"):
        raise ApiError(403, "ReadOnly", message)
    raise web.HTTPForbidden(text=message)


def banner(request: web.Request) -> str | None:
    """The banner of a page (None: the forum as it is)."""
    return request.app.get(PAST)
