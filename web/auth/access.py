"""Who is asking, and may they: bearer tokens, the sign-in cookies, permissions, CSRF.

Two credentials. Members sign in with their AT Protocol account (``web.auth.signin``):
the ``atbb_member`` cookie carries only the opaque id of the session the appview keeps
(``appview.auth``), looked up once per request by the ``member_session`` middleware.
Operators use admin tokens (``atbb admin token create``): scripts send one as
``Authorization: Bearer``, people paste it once into the sign-in page, which sets the
signed ``atbb_session`` cookie naming the token (never the token itself). Either way the
DID's role in the read models decides what it may do, on every request. Forms carry a
CSRF token bound to the session (or, before sign-in, to a random cookie); bearer
requests carry no ambient credential and need none.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping

from aiohttp import web

from appview.admin_tokens import AdminToken, AdminTokens
from appview.auth.pds_session import PdsSession
from projections.views import Viewer, permission
from web import urls
from web.errors import ApiError, Handler
from web.keys import SERVICES
from web.params import is_digits

SESSION_COOKIE = "atbb_session"
MEMBER_COOKIE = "atbb_member"
CSRF_COOKIE = "atbb_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 7 * 24 * 3600

MANAGE_FORUM = "space.atbb.permission.manageForum"

# What one request learnt: its credential (looked up once), a CSRF nonce to set.
_TOKEN = web.RequestKey("auth_token", tuple)
_NEW_NONCE = web.RequestKey("auth_new_csrf_nonce", str)
_MEMBER = web.RequestKey("auth_member", tuple)


def _tokens(request: web.Request) -> AdminTokens:
    return request.app[SERVICES].admin_tokens


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def session_value(tokens: AdminTokens, token_id: str, expires: int) -> str:
    return f"{token_id}.{expires}.{tokens.sign(f'session|{token_id}|{expires}')}"


def _session_token(request: web.Request) -> AdminToken | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or raw.count(".") != 2:
        return None
    token_id, expires, signature = raw.split(".")
    tokens = _tokens(request)
    if not is_digits(expires, 12) or int(expires) < time.time():
        return None
    expected = tokens.sign(f"session|{token_id}|{expires}")
    if not _same(expected, signature):
        return None
    return tokens.by_id(token_id)


def request_token(request: web.Request) -> AdminToken | None:
    """The token behind this request (bearer first, then the session cookie), or None.
    A bearer header that does not resolve counts as no credential at all."""
    if _TOKEN in request:
        (cached,) = request[_TOKEN]
        return cached if isinstance(cached, AdminToken) else None
    bearer = _bearer(request)
    token = _tokens(request).resolve(bearer) if bearer else _session_token(request)
    request[_TOKEN] = (token,)
    return token


def request_member(request: web.Request) -> PdsSession | None:
    """The member's session the ``atbb_member`` cookie names (None with a bearer
    header: it is the only credential of its request)."""
    if _bearer(request) is not None or _MEMBER not in request:
        return None
    (session,) = request[_MEMBER]
    return session if isinstance(session, PdsSession) else None


def request_did(request: web.Request) -> str | None:
    """The DID acting: the admin token's (bearer first, then its cookie), else the
    signed-in member's."""
    token = request_token(request)
    if token is not None:
        return token.did
    member = request_member(request)
    return None if member is None else member.did


async def writing_session(request: web.Request) -> PdsSession | None:
    """The session at the acting DID's PDS that writes for this request: the signed-in
    member's own; for an admin token (bearer or its cookie), the newest session the
    appview holds for the token's DID (the member signed in here once). None when there
    is no credential or no such session: ``request_did`` tells which."""
    member = request_member(request)
    if member is not None:
        return member
    token = request_token(request)
    if token is None:
        return None
    return await request.app[SERVICES].member_auth.pds_session_for_did(token.did)


def _plausible_session_id(value: str) -> bool:
    return 0 < len(value) <= 100 and value.isascii() and value.isprintable()


@web.middleware
async def member_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Looks up the member's session once, before the handler (the lookup reads the
    database: pages and checks then read it without waiting)."""
    session_id = request.cookies.get(MEMBER_COOKIE, "")
    if _plausible_session_id(session_id) and _bearer(request) is None:
        found = await request.app[SERVICES].member_auth.pds_session(session_id)
        request[_MEMBER] = (found,)
    return await handler(request)


def viewer_for(request: web.Request, did: str | None) -> Viewer:
    if did is None:
        return Viewer.anonymous()
    return request.app[SERVICES].queries.viewer(did)


def page_viewer(request: web.Request) -> Viewer:
    """The signed-in reader's permissions, for what pages show (anonymous if none)."""
    return viewer_for(request, request_did(request))


def require_permission(request: web.Request, name: str) -> str:
    """The DID of a caller holding ``name`` through its role; 401 / 403 (JSON) if not."""
    did = request_did(request)
    if did is None:
        raise ApiError(401, "Unauthorized", "Sign in, or send an admin token as "
                       "'Authorization: Bearer <token>'.")
    if not viewer_for(request, did).has(name):
        raise ApiError(403, "Forbidden",
                       f"This account lacks the {permission(name)} permission.")
    return did


def require_page_permission(request: web.Request, name: str) -> Viewer:
    """For HTML pages: a redirect to sign-in when anonymous, 403 without ``name``."""
    viewer = page_viewer(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    if not viewer.has(name):
        raise web.HTTPForbidden(text=f"This account lacks the {permission(name)} permission.")
    return viewer


def _same(expected: str, sent: str) -> bool:
    """A constant-time comparison that takes any text: ``hmac.compare_digest`` raises on
    non-ASCII ``str`` (a 500 for a cookie or form field anyone can write)."""
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "surrogatepass"))


# -- CSRF ----------------------------------------------------------------------------------

def _csrf_basis(request: web.Request, *, create: bool) -> str | None:
    token = None if _bearer(request) else request_token(request)
    if token is not None:
        return f"session:{token.id}"
    member = request_member(request)
    if member is not None:
        return f"member:{member.key}"
    nonce = request.cookies.get(CSRF_COOKIE) or request.get(_NEW_NONCE)
    if nonce is None and create:
        nonce = secrets.token_urlsafe(24)
        request[_NEW_NONCE] = nonce
    return None if nonce is None else f"nonce:{nonce}"


def csrf_token(request: web.Request) -> str:
    """The token a form of this page must send back (hidden field ``csrf_token``)."""
    basis = _csrf_basis(request, create=True)
    assert basis is not None
    return _tokens(request).sign(f"csrf|{basis}")


def check_csrf(request: web.Request, form: Mapping[str, str] | None = None) -> None:
    """Accept the token from the ``X-CSRF-Token`` header or the form field; a bearer
    request is exempt. Anything else is 403."""
    if _bearer(request) is not None:
        return
    sent = request.headers.get(CSRF_HEADER) or (form or {}).get(CSRF_FIELD, "")
    basis = _csrf_basis(request, create=False)
    remedy = (f"send the {CSRF_HEADER} header of a signed-in page, or a bearer token"
              if request.path.startswith("/api/") else "reload the page and try again")
    if basis is None or not sent:
        raise web.HTTPForbidden(text=f"The CSRF token is missing: {remedy}.")
    expected = _tokens(request).sign(f"csrf|{basis}")
    if not _same(expected, str(sent)):
        raise web.HTTPForbidden(text=f"The CSRF token is not valid: {remedy}.")


@web.middleware
async def csrf_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sets the pre-sign-in CSRF cookie when a page handed out a token based on it."""
    response = await handler(request)
    nonce = request.get(_NEW_NONCE)
    if nonce is not None and not response.prepared:
        response.set_cookie(CSRF_COOKIE, str(nonce), httponly=True, samesite="Lax",
                            secure=request.secure, path="/")
    return response
