"""A member's appearance settings, as the original's ``/settings``:

- ``GET /settings`` (signed in; a redirect to sign-in otherwise): a light-theme and a
  dark-theme ``<select>`` of the themes the policy offers, when it lets members choose
  (an info notice otherwise), each with a swatch preview htmx refreshes on change;
- ``GET /settings/preview?lightThemeUri=…`` (or ``darkThemeUri``): that swatch alone,
  for anyone (it shows only what the theme list shows);
- ``POST /settings/appearance``: the choices as the cookies ``atbb-light-theme`` and
  ``atbb-dark-theme`` (a year; an empty choice forgets it), then ``/settings?saved=1``.

``/theme.css`` honours the cookies while the policy offers the theme and lets members
choose (``web.themes.chosen_themes``)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from projections.views import Theme, ThemePolicy
from web import urls
from web.auth.access import check_csrf, csrf_token
from web.pages.common import base_context, page_viewer, read_form, services
from web.themes import DARK_COOKIE, LIGHT_COOKIE, offered_themes

ONE_YEAR = 365 * 24 * 3600
SWATCH_TOKENS = ("color-bg", "color-surface", "color-text", "color-primary", "color-border")
ERRORS = {"choice": "That theme is not one the forum offers.",
          "closed": "This forum does not let members choose their themes."}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.SETTINGS, settings_page)
    router.add_get(urls.SETTINGS_PREVIEW, preview)
    router.add_post(urls.SETTINGS_APPEARANCE, appearance)


def _offer(request: web.Request) -> tuple[ThemePolicy | None, list[Theme]]:
    return offered_themes(services(request).queries)


async def settings_page(request: web.Request) -> web.StreamResponse:
    viewer = page_viewer(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))
    policy, themes = await asyncio.to_thread(_offer, request)
    light = request.cookies.get(LIGHT_COOKIE) or (policy.default_light_theme if policy else None)
    dark = request.cookies.get(DARK_COOKIE) or (policy.default_dark_theme if policy else None)
    context: dict[str, Any] = {
        **base_context(request, viewer), "policy": policy, "themes": themes,
        "light": light, "dark": dark, "csrf_token": csrf_token(request),
        "swatch_tokens": SWATCH_TOKENS,
        "notice": "Preferences saved." if request.query.get("saved") == "1" else None,
        "error": ERRORS.get(request.query.get("error", "")),
        "forum": services(request).queries.forum()}
    response = aiohttp_jinja2.render_template("settings.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def preview(request: web.Request) -> web.StreamResponse:
    uri = request.query.get("lightThemeUri") or request.query.get("darkThemeUri") or ""
    _policy, themes = await asyncio.to_thread(_offer, request)
    chosen = next((theme for theme in themes if theme.uri == uri), None)
    field = "light" if "lightThemeUri" in request.query else "dark"
    return aiohttp_jinja2.render_template("_settings_swatch.html", request, {
        "theme": chosen, "field": field, "swatch_tokens": SWATCH_TOKENS})


async def appearance(request: web.Request) -> web.StreamResponse:
    viewer = page_viewer(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=urls.settings()))
    form = await read_form(request)
    check_csrf(request, form)
    policy, themes = await asyncio.to_thread(_offer, request)
    if policy is None or not policy.allow_user_choice:
        raise web.HTTPSeeOther(f"{urls.settings()}?error=closed")
    offered = {theme.uri for theme in themes}
    choices = {LIGHT_COOKIE: form.get("lightThemeUri", ""),
               DARK_COOKIE: form.get("darkThemeUri", "")}
    if any(value and value not in offered for value in choices.values()):
        raise web.HTTPSeeOther(f"{urls.settings()}?error=choice")
    response = web.HTTPSeeOther(f"{urls.settings()}?saved=1")
    for cookie, value in choices.items():
        if value:
            response.set_cookie(cookie, value, max_age=ONE_YEAR, path="/", samesite="Lax",
                                secure=request.secure, httponly=True)
        else:
            response.del_cookie(cookie, path="/")
    raise response
