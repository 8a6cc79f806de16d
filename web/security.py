"""Security headers on every response: a Content-Security-Policy allowing only our own
scripts and stylesheets (no inline script or style anywhere), no MIME sniffing, no
framing, and a referrer policy that keeps full URLs on this site."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

from web.errors import Handler


def content_security_policy(form_action: tuple[str, ...] = ("'self'",)) -> str:
    """The policy of every page; ``form_action`` widens where forms may lead only for
    the sign-in page, whose OAuth form redirects to the member's authorization server
    (browsers apply form-action to a form's redirects too)."""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action " + " ".join(form_action),
        "frame-ancestors 'none'",
    ))


CONTENT_SECURITY_POLICY = content_security_policy()

SECURITY_HEADERS: Mapping[str, str] = MappingProxyType({
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
})


def _add_headers(response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # Raised responses (redirects, 304s, errors rendered by aiohttp) get them too.
        _add_headers(exc)
        raise
    if not response.prepared:
        _add_headers(response)
    return response
