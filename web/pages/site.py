"""Site-wide routes: the static files, ``robots.txt``, the theme stylesheet and the
light/dark choice (a plain form POST setting a cookie, so it works without JavaScript)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from projections.views import Viewer
from web import urls
from web.pages import conditional
from web.pages.common import not_modified as not_modified_response
from web.pages.common import now, read, read_form, services, unchanged, validators
from web.themes import (
    CHOICES,
    DARK_COOKIE,
    LIGHT_COOKIE,
    THEME_COOKIE,
    chosen_themes,
    default_themes,
    theme_css,
)

STATIC_DIR = Path(__file__).parent.parent / "static"
ONE_YEAR = 365 * 24 * 3600

ROBOTS_TXT = """User-agent: *
Disallow: /api/
Disallow: /theme
Disallow: /p/
"""


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_static(urls.STATIC, STATIC_DIR, append_version=False)
    router.add_get(urls.ROBOTS, robots)
    router.add_get(urls.THEME_CSS, theme_stylesheet)
    router.add_post(urls.THEME_CHOICE, choose_theme)


async def robots(request: web.Request) -> web.Response:
    return web.Response(text=ROBOTS_TXT, content_type="text/plain")


async def theme_stylesheet(request: web.Request) -> web.Response:
    light, dark = request.cookies.get(LIGHT_COOKIE), request.cookies.get(DARK_COOKIE)
    if light or dark:
        # a member's own choice: their stylesheet, never stored by a shared cache
        queries = services(request).queries
        css = await read(lambda: theme_css(chosen_themes(queries, light, dark)))
        response = web.Response(text=css, content_type="text/css")
        response.headers["Cache-Control"] = "private, no-cache"
        return response
    viewer = Viewer.anonymous()
    found = await validators(request, viewer, now(request))
    if unchanged(request, found):
        return not_modified_response(found, viewer)
    queries = services(request).queries
    css = await read(lambda: theme_css(default_themes(queries)))
    response = web.Response(text=css, content_type="text/css")
    conditional.apply(response, found, private=False)
    return response


async def choose_theme(request: web.Request) -> web.Response:
    # No CSRF token: the worst a forged POST can do is switch a reader to dark mode.
    form = await read_form(request)
    choice = form.get("theme", "auto")
    response = web.HTTPSeeOther(urls.local_path(form.get("next")))
    if choice in CHOICES and choice != "auto":
        response.set_cookie(THEME_COOKIE, choice, max_age=ONE_YEAR, path="/", samesite="Lax",
                            secure=request.secure)
    else:
        response.del_cookie(THEME_COOKIE, path="/")
    raise response
