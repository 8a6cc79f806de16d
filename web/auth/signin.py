"""The sign-in page: paste an admin token once, get a signed session cookie.

The cookie names the token (its id), never the token itself, and is HttpOnly and
SameSite=Lax; revoking the token (`atbb admin token revoke ID`) ends every session made
with it.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp_jinja2
from aiohttp import web

from web import urls
from web.auth.access import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    check_csrf,
    csrf_token,
    page_viewer,
    session_value,
)
from web.keys import SERVICES
from web.pages.common import base_context, read_form


def add_routes(app: web.Application) -> None:
    app.router.add_get(urls.SIGNIN, signin_form)
    app.router.add_post(urls.SIGNIN, signin)
    app.router.add_post(urls.SIGNOUT, signout)


def _render(request: web.Request, *, error: str | None = None, status: int = 200,
            next_path: str | None = None) -> web.Response:
    viewer = page_viewer(request)
    context = {
        **base_context(request, viewer),
        "forum": request.app[SERVICES].queries.forum(),
        "csrf_token": csrf_token(request),
        "next_path": urls.local_path(next_path or request.query.get("next")),
        "error": error,
    }
    response = aiohttp_jinja2.render_template("signin.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def signin_form(request: web.Request) -> web.Response:
    return _render(request)


async def signin(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    tokens = request.app[SERVICES].admin_tokens
    token = await asyncio.to_thread(tokens.resolve, fields.get("token", "").strip())
    if token is None:
        return _render(request, error="That token is not valid (unknown or revoked).",
                       status=401, next_path=fields.get("next"))
    expires = int(time.time()) + SESSION_SECONDS
    response = web.HTTPSeeOther(urls.local_path(fields.get("next")))
    response.set_cookie(SESSION_COOKIE, session_value(tokens, token.id, expires),
                        max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
                        secure=request.secure, path="/")
    raise response


async def signout(request: web.Request) -> web.Response:
    check_csrf(request, await read_form(request))
    response = web.HTTPSeeOther(urls.index())
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
