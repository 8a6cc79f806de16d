"""HTML error pages (404, 500, ...) for every page route; the JSON API (``/api/``) keeps
its JSON errors (web/errors.py). A 500 page never shows a stack trace and needs no
database (the failure may be the database)."""

from __future__ import annotations

import logging

import aiohttp_jinja2
from aiohttp import web

from projections.views import Viewer
from web.errors import Handler, explanation
from web.pages.common import base_context

log = logging.getLogger(__name__)

_MESSAGES = {
    404: "There is nothing here. The page may have moved, or the link may be mistyped.",
    500: "Something went wrong on our side. Please try again in a moment.",
}


def error_page(request: web.Request, status: int, reason: str,
               message: str | None = None) -> web.Response:
    """The site's error page; ``message`` says why (which permission is missing, what
    was wrong with the request), else a general sentence for the status."""
    context = {
        **base_context(request, Viewer.anonymous()),
        "status": status,
        "reason": reason,
        "message": message or _MESSAGES.get(status, reason),
        "forum": None,
    }
    response = aiohttp_jinja2.render_template("error.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_page(request, exc.status, exc.reason, explanation(exc))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        # json_errors (inside this middleware) has already logged it with its traceback.
        log.debug("rendering the 500 page for %s %s", request.method, request.path)
        return error_page(request, 500, "Internal Server Error")
