"""Signing in and out, and joining the forum.

Members sign in with their AT Protocol account: a handle, DID or PDS URL starts AT
Protocol OAuth (``/signin/oauth`` → the member's authorization server →
``/oauth/callback``); a PDS without OAuth, or a member who prefers it, signs in with an
app password (``/signin/password``). The ``atbb_member`` cookie then carries only the
opaque id of the session the appview keeps (HttpOnly, SameSite=Lax, Secure behind https).
Operators may still paste an admin token (``POST /signin``): a signed cookie naming the
token. Signing out revokes the member's grant at their server.

A member's first sign-in here offers to join the forum (``/join``: a
``space.atbb.membership`` in their repo, through the record writer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appview.auth.errors import AuthError, CallbackError, IdentityError, MetadataError, NoOAuth
from appview.auth.member_auth import SignedIn
from appview.writes.errors import WriteError
from web import urls
from web.auth.access import (
    MEMBER_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    check_csrf,
    csrf_token,
    page_viewer,
    request_member,
    session_value,
)
from web.keys import SERVICES
from web.pages.common import base_context, read_form
from web.security import content_security_policy

log = logging.getLogger(__name__)


def add_routes(app: web.Application) -> None:
    app.router.add_get(urls.SIGNIN, signin_form)
    app.router.add_post(urls.SIGNIN, signin)
    app.router.add_post(urls.SIGNIN_OAUTH, signin_oauth)
    app.router.add_post(urls.SIGNIN_PASSWORD, signin_password)
    app.router.add_get(urls.OAUTH_CALLBACK, oauth_callback)
    app.router.add_get(urls.OAUTH_CLIENT_METADATA, client_metadata)
    app.router.add_get(urls.OAUTH_JWKS, jwks)
    app.router.add_post(urls.SIGNOUT, signout)
    app.router.add_get(urls.JOIN, join_form)
    app.router.add_post(urls.JOIN, join)


def _form_targets(request: web.Request) -> tuple[str, ...]:
    """Where the sign-in page's forms may lead (the CSP's form-action): our own pages,
    and the member's authorization server, which the OAuth form redirects to and which
    may be any https origin (any plain-http one for the development client)."""
    client = request.app[SERVICES].member_auth.client
    return ("'self'", "https:", "http:") if client.allow_http else ("'self'", "https:")


def _no_store(response: web.StreamResponse) -> None:
    response.headers["Cache-Control"] = "no-store"


async def _render(request: web.Request, *, error: str | None = None, status: int = 200,
                  next_path: str | None = None, identifier: str = "",
                  password_form: bool = False, notice: str | None = None) -> web.Response:
    services = request.app[SERVICES]
    viewer = await asyncio.to_thread(page_viewer, request)
    member = request_member(request)
    context = {
        **base_context(request, viewer),
        "forum": await asyncio.to_thread(services.queries.forum),
        "csrf_token": csrf_token(request),
        "next_path": urls.local_path(next_path or request.query.get("next")),
        "error": error,
        "notice": notice,
        "identifier": identifier,
        "password_form": password_form,
        "member": member,
    }
    response = aiohttp_jinja2.render_template("signin.html", request, context, status=status)
    _no_store(response)
    response.headers["Content-Security-Policy"] = content_security_policy(
        form_action=_form_targets(request))
    return response


async def signin_form(request: web.Request) -> web.Response:
    return await _render(request)


# -- the admin token ---------------------------------------------------------------------

async def signin(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    tokens = request.app[SERVICES].admin_tokens
    token = await asyncio.to_thread(tokens.resolve, fields.get("token", "").strip())
    if token is None:
        return await _render(request, error="That token is not valid (unknown or revoked).",
                             status=401, next_path=fields.get("next"))
    expires = int(time.time()) + SESSION_SECONDS
    response = web.HTTPSeeOther(urls.local_path(fields.get("next")))
    response.set_cookie(SESSION_COOKIE, session_value(tokens, token.id, expires),
                        max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
                        secure=request.secure, path="/")
    response.del_cookie(MEMBER_COOKIE, path="/")
    raise response


# -- members: OAuth and app passwords --------------------------------------------------

def _refusal_status(exc: AuthError) -> int:
    return 400 if isinstance(exc, IdentityError | CallbackError) else 502


async def signin_oauth(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    text = fields.get("identifier", "").strip()
    next_path = urls.local_path(fields.get("next"))
    if not text:
        return await _render(
            request, error="Type your handle (like alice.example.com), your DID or your"
            " PDS's address.", status=400, next_path=next_path)
    auth = request.app[SERVICES].member_auth
    try:
        url = await auth.begin_oauth(text, app_state=next_path)
    except NoOAuth as exc:
        return await _render(
            request, notice=f"{exc.pds_url} does not offer OAuth sign-in: sign in with an"
            " app password made in your account's settings.", next_path=next_path,
            identifier=exc.handle or exc.did or text, password_form=True)
    except AuthError as exc:
        return await _render(
            request, error=f"Could not start signing in: {exc}",
            status=_refusal_status(exc), next_path=next_path, identifier=text)
    response = web.HTTPSeeOther(url)
    _no_store(response)
    raise response


async def signin_password(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    identifier = fields.get("identifier", "").strip()
    password = fields.get("password", "")
    next_path = urls.local_path(fields.get("next"))
    if not identifier or not password:
        return await _render(
            request, error="Type your handle (or DID) and an app password.", status=400,
            next_path=next_path, identifier=identifier, password_form=True)
    try:
        signed = await request.app[SERVICES].member_auth.sign_in_with_password(
            identifier, password)
    except AuthError as exc:
        return await _render(
            request, error=f"Could not sign in: {exc}",
            status=401 if _refused_credentials(exc) else _refusal_status(exc),
            next_path=next_path, identifier=identifier, password_form=True)
    raise await _signed_in(request, signed, next_path)


def _refused_credentials(exc: AuthError) -> bool:
    return getattr(exc, "status", None) == 401


async def oauth_callback(request: web.Request) -> web.Response:
    auth = request.app[SERVICES].member_auth
    try:
        signed = await auth.finish_oauth(dict(request.query))
    except AuthError as exc:
        return await _render(request, error=f"Signing in did not complete: {exc}",
                             status=_refusal_status(exc))
    raise await _signed_in(request, signed, urls.local_path(signed.app_state))


async def _signed_in(request: web.Request, signed: SignedIn, next_path: str) -> web.HTTPSeeOther:
    """The redirect after a member signed in, carrying the cookie: to ``next_path``, or
    first to the offer to join when this forum holds no membership of theirs."""
    services = request.app[SERVICES]
    # before the redirect: the member's first page names them by their handle
    await services.member_handles.signed_in(signed.did)
    target = next_path
    forum = await asyncio.to_thread(services.queries.forum)
    if forum is not None and await services.forum_writes.membership(signed.did) is None:
        target = urls.join(next_path)
    response = web.HTTPSeeOther(target)
    response.set_cookie(MEMBER_COOKIE, signed.session_id,
                        max_age=int(services.settings.member_session_days * 86400),
                        httponly=True, samesite="Lax", secure=request.secure, path="/")
    response.del_cookie(SESSION_COOKIE, path="/")
    _no_store(response)
    return response


async def signout(request: web.Request) -> web.Response:
    check_csrf(request, await read_form(request))
    session_id = request.cookies.get(MEMBER_COOKIE)
    if session_id:
        try:
            await request.app[SERVICES].member_auth.sign_out(session_id)
        except AuthError as exc:  # revocation is best effort; the session is gone anyway
            log.info("sign-out could not revoke at the member's server: %s", exc)
    response = web.HTTPSeeOther(urls.index())
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(MEMBER_COOKIE, path="/")
    raise response


# -- the client's documents ------------------------------------------------------------

def _document(body: Mapping[str, Any]) -> web.Response:
    response = web.json_response(dict(body))
    response.headers["Cache-Control"] = "public, max-age=600"
    return response


async def client_metadata(request: web.Request) -> web.Response:
    try:
        return _document(request.app[SERVICES].member_auth.client_metadata())
    except MetadataError:
        raise web.HTTPNotFound(text="The development (loopback) OAuth client has no"
                               " metadata document: set PUBLIC_URL for one.") from None


async def jwks(request: web.Request) -> web.Response:
    return _document(request.app[SERVICES].member_auth.jwks())


# -- joining the forum -----------------------------------------------------------------

async def _render_join(request: web.Request, *, error: str | None = None,
                       status: int = 200) -> web.Response:
    services = request.app[SERVICES]
    context = {
        **base_context(request, await asyncio.to_thread(page_viewer, request)),
        "forum": await asyncio.to_thread(services.queries.forum),
        "csrf_token": csrf_token(request),
        "next_path": urls.local_path(request.query.get("next")),
        "error": error,
    }
    response = aiohttp_jinja2.render_template("join.html", request, context, status=status)
    _no_store(response)
    return response


async def join_form(request: web.Request) -> web.Response:
    member = request_member(request)
    if member is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    next_path = urls.local_path(request.query.get("next"))
    if await request.app[SERVICES].forum_writes.membership(member.did) is not None:
        raise web.HTTPSeeOther(next_path)
    return await _render_join(request)


async def join(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    member = request_member(request)
    next_path = urls.local_path(fields.get("next"))
    if member is None:
        raise web.HTTPSeeOther(urls.signin(next_path=urls.join(next_path)))
    try:
        await request.app[SERVICES].forum_writes.join(member)
    except WriteError as exc:
        return await _render_join(request, error=f"Could not join: {exc}", status=exc.status)
    raise web.HTTPSeeOther(next_path)
