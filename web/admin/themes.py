"""The themes pages (manageThemes), as the original's ``/admin/themes``:

- ``/admin/themes``: every theme with colour swatches, a create form (name, scheme, the
  preset it starts from), duplicate, export (JSON without ``cssOverrides``), delete
  (through a confirmation page), import (a JSON file, at most 100 KB), and the policy
  form (which themes are offered, the defaults, whether members choose);
- ``/admin/themes/{rkey}``: the token editor, one field per token, with a live
  preview: the preview pane loads ``/admin/themes/preview.css?<tokens>``, the tokens as
  checked for ``/theme.css`` (``web.themes.safe_tokens``) scoped to the pane, so the
  CSP's ``style-src 'self'`` holds; htmx refreshes the pane as fields change, and
  without JavaScript the "Preview" button renders the editor with the values sent.
  "Reset to preset" fills the editor with a preset's tokens (saved only by "Save").

Swatches come from ``/admin/themes/swatches.css`` (a class per theme and colour) for
the same reason. Every change goes through ``ForumAdmin`` to the Forum account's repo."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from appview.writes.admin import MANAGE_THEMES, ForumAdmin
from appview.writes.errors import InvalidRecord, WriteError
from events.records import css_property
from projections.views import Theme, Viewer
from web import urls
from web.auth.access import check_csrf, csrf_token, require_page_permission
from web.keys import SERVICES
from web.pages.common import base_context, read_form
from web.theme_presets import PRESETS, TOKEN_NAMES
from web.themes import safe_tokens

IMPORT_LIMIT = 100 * 1024
SWATCH_TOKENS = ("color-bg", "color-surface", "color-text", "color-primary", "color-border")
_TOKEN_NAME = re.compile(r"^(?:--)?[a-z][a-z0-9-]{0,62}$")
NOTICES = {"created": "Theme created.", "saved": "Theme saved.", "deleted": "Theme deleted.",
           "duplicated": "Theme duplicated.", "imported": "Theme imported.",
           "policy": "Theme policy saved."}


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(urls.ADMIN_THEMES, themes)
    router.add_post(urls.ADMIN_THEMES, create)
    router.add_get(urls.ADMIN_THEME_SWATCHES, swatches_css)
    router.add_get(urls.THEME_PREVIEW_CSS, preview_css)
    router.add_post(urls.ADMIN_THEMES_IMPORT, import_theme)
    router.add_post(urls.ADMIN_THEME_POLICY, policy)
    router.add_get(urls.ADMIN_THEME, editor)
    router.add_post(urls.ADMIN_THEME, save)
    router.add_post(urls.ADMIN_THEME_SAVE, save)
    router.add_post(urls.ADMIN_THEME_PREVIEW, preview)
    router.add_post(urls.ADMIN_THEME_RESET, reset)
    router.add_post(urls.ADMIN_THEME_DUPLICATE, duplicate)
    router.add_get(urls.ADMIN_THEME_DELETE, confirm_delete)
    router.add_post(urls.ADMIN_THEME_DELETE, delete)
    router.add_get(urls.ADMIN_THEME_EXPORT, export)


def _admin(request: web.Request) -> ForumAdmin:
    return request.app[SERVICES].forum_admin


async def _viewer(request: web.Request) -> Viewer:
    return await asyncio.to_thread(require_page_permission, request, MANAGE_THEMES)


def _message(exc: WriteError) -> str:
    return f"{exc.field}: {exc.reason}" if isinstance(exc, InvalidRecord) else str(exc)


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


def swatch_class(theme: Theme, token: str) -> str:
    return f"swatch-{theme.id}-{token}"


# -- the list --------------------------------------------------------------------------

async def _render_list(request: web.Request, viewer: Viewer, *, error: str | None = None,
                       status: int = 200) -> web.StreamResponse:
    queries = request.app[SERVICES].queries

    def read() -> dict[str, Any]:
        listed = queries.themes(limit=100)
        found = queries.theme_policy()
        offered = {ref.uri for ref in found.available_themes} if found else set()
        return {"themes": listed.items, "policy": found, "offered": offered,
                "forum": queries.forum()}

    context = {**base_context(request, viewer), **await asyncio.to_thread(read),
               "presets": PRESETS, "swatch_tokens": SWATCH_TOKENS,
               "swatch_class": swatch_class, "csrf_token": csrf_token(request),
               "error": error, "notice": NOTICES.get(request.query.get("notice", ""))}
    return _no_store(aiohttp_jinja2.render_template("admin/themes.html", request, context,
                                                    status=status))


async def themes(request: web.Request) -> web.StreamResponse:
    return await _render_list(request, await _viewer(request))


def _done(notice: str, path: str | None = None) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path or urls.admin_themes()}?{urlencode({'notice': notice})}")


async def create(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    form = await read_form(request)
    check_csrf(request, form)
    assert viewer.did is not None
    preset = PRESETS.get(form.get("preset", ""), PRESETS["neobrutal-light"])
    scheme = form.get("colorScheme") or preset[0]
    if scheme not in ("light", "dark"):
        return await _render_list(request, viewer, error="The scheme is light or dark.",
                                  status=400)
    try:
        written = await _admin(request).create_theme(
            viewer.did, name=form.get("name", ""), color_scheme=scheme, tokens=preset[1])
    except WriteError as exc:
        return await _render_list(request, viewer, error=_message(exc), status=exc.status)
    raise _done("created", urls.admin_theme(written.rkey))


async def duplicate(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    check_csrf(request, await read_form(request))
    assert viewer.did is not None
    try:
        await _admin(request).duplicate_theme(viewer.did, request.match_info["rkey"])
    except WriteError as exc:
        return await _render_list(request, viewer, error=_message(exc), status=exc.status)
    raise _done("duplicated")


async def confirm_delete(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    found = await asyncio.to_thread(request.app[SERVICES].queries.theme,
                                    request.match_info["rkey"])
    if found is None:
        raise web.HTTPNotFound(text="No such theme.")
    context = {**base_context(request, viewer), "kind": "theme", "record": found,
               "action": urls.admin_theme_delete(found.id), "back": urls.admin_themes(),
               "csrf_token": csrf_token(request),
               "forum": request.app[SERVICES].queries.forum()}
    return aiohttp_jinja2.render_template("admin/confirm_delete.html", request, context)


async def delete(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    check_csrf(request, await read_form(request))
    assert viewer.did is not None
    try:
        await _admin(request).delete_theme(viewer.did, request.match_info["rkey"])
    except WriteError as exc:
        return await _render_list(request, viewer, error=_message(exc), status=exc.status)
    raise _done("deleted")


async def export(request: web.Request) -> web.StreamResponse:
    await _viewer(request)
    found = await asyncio.to_thread(request.app[SERVICES].queries.theme,
                                    request.match_info["rkey"])
    if found is None:
        raise web.HTTPNotFound(text="No such theme.")
    body = {"name": found.name, "colorScheme": found.color_scheme,
            "tokens": dict(found.tokens), "fontUrls": list(found.font_urls)}
    slug = re.sub(r"[^a-z0-9]+", "-", found.name.lower()).strip("-") or "theme"
    scheme = re.sub(r"[^a-z0-9]+", "-", (found.color_scheme or "light").lower())
    response = web.json_response(body, dumps=lambda v: json.dumps(v, indent=2))
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{slug}-{scheme}.json"')
    return _no_store(response)


def imported_fields(raw: bytes) -> dict[str, Any]:
    """A theme file's fields as ``ForumAdmin.create_theme`` takes them: unknown or
    malformed token names dropped, ``cssOverrides`` dropped; ValueError says what is
    wrong with the rest."""
    if len(raw) > IMPORT_LIMIT:
        raise ValueError(f"The file is larger than {IMPORT_LIMIT // 1024} KB.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("The file is not JSON.") from None
    if not isinstance(data, dict):
        raise ValueError("The file must hold a JSON object.")
    name, scheme, tokens = data.get("name"), data.get("colorScheme"), data.get("tokens")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name is missing.")
    if scheme not in ("light", "dark"):
        raise ValueError("colorScheme must be light or dark.")
    if not isinstance(tokens, dict):
        raise ValueError("tokens must be an object.")
    kept = {key.removeprefix("--"): value for key, value in tokens.items()
            if isinstance(key, str) and _TOKEN_NAME.match(key) and isinstance(value, str)}
    fonts = data.get("fontUrls")
    if fonts is not None and (not isinstance(fonts, list) or not all(
            isinstance(u, str) and u.startswith("https://") for u in fonts)):
        raise ValueError("fontUrls must be a list of https URLs.")
    return {"name": name, "color_scheme": scheme, "tokens": kept, "font_urls": fonts}


async def import_theme(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    assert viewer.did is not None
    if request.content_length is not None and request.content_length > IMPORT_LIMIT + 4096:
        return await _render_list(request, viewer, status=413,
                                  error=f"The file is larger than {IMPORT_LIMIT // 1024} KB.")
    form = await request.post()
    check_csrf(request, {k: str(v) for k, v in form.items() if isinstance(v, str)})
    upload = form.get("file")
    raw = upload.file.read(IMPORT_LIMIT + 1) if isinstance(upload, web.FileField) else b""
    try:
        fields = imported_fields(raw)
        written = await _admin(request).create_theme(viewer.did, **fields)
    except ValueError as exc:
        return await _render_list(request, viewer, error=str(exc), status=400)
    except WriteError as exc:
        return await _render_list(request, viewer, error=_message(exc), status=exc.status)
    raise _done("imported", urls.admin_theme(written.rkey))


async def policy(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    form = await request.post()
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, fields)
    assert viewer.did is not None
    offered = [str(v) for v in form.getall("available", []) if isinstance(v, str)]
    try:
        await _admin(request).put_theme_policy(
            viewer.did, available=[(uri, None) for uri in offered],
            default_light=fields.get("defaultLight", ""),
            default_dark=fields.get("defaultDark", ""),
            allow_user_choice=fields.get("allowUserChoice") == "on")
    except WriteError as exc:
        return await _render_list(request, viewer, error=_message(exc), status=exc.status)
    raise _done("policy")


# -- the editor ------------------------------------------------------------------------

def _editor_tokens(theme: Theme, sent: dict[str, str] | None) -> dict[str, str]:
    """The editor's fields: every known token, then the theme's own others; the
    values sent (a preview) over the theme's."""
    own = {name.removeprefix("--"): value for name, value in theme.tokens.items()}
    names = list(TOKEN_NAMES) + sorted(set(own) - set(TOKEN_NAMES))
    values = {name: own.get(name, "") for name in names}
    if sent is not None:
        values.update({name: sent.get(f"token-{name}", values[name]).strip()
                       for name in names})
    return values


def _preview_url(tokens: dict[str, str]) -> str:
    return urls.theme_preview_css({k: v for k, v in tokens.items() if v})


async def _render_editor(request: web.Request, viewer: Viewer, rkey: str, *,
                         sent: dict[str, str] | None = None, error: str | None = None,
                         status: int = 200, notice: str | None = None,
                         template: str = "admin/theme_editor.html") -> web.StreamResponse:
    found = await asyncio.to_thread(request.app[SERVICES].queries.theme, rkey)
    if found is None:
        raise web.HTTPNotFound(text="No such theme.")
    tokens = _editor_tokens(found, sent)
    context = {**base_context(request, viewer), "theme_record": found, "tokens": tokens,
               "name": (sent or {}).get("name", found.name),
               "scheme": (sent or {}).get("colorScheme", found.color_scheme or "light"),
               "preview_url": _preview_url(tokens), "presets": PRESETS,
               "csrf_token": csrf_token(request), "error": error,
               "notice": notice or NOTICES.get(request.query.get("notice", "")),
               "forum": request.app[SERVICES].queries.forum()}
    return _no_store(aiohttp_jinja2.render_template(template, request, context,
                                                    status=status))


async def editor(request: web.Request) -> web.StreamResponse:
    return await _render_editor(request, await _viewer(request), request.match_info["rkey"])


async def preview(request: web.Request) -> web.StreamResponse:
    """The editor with the values sent, unsaved (htmx asks for the pane alone)."""
    viewer = await _viewer(request)
    form = await read_form(request)
    check_csrf(request, form)
    template = ("admin/_theme_preview.html" if request.headers.get("HX-Request")
                else "admin/theme_editor.html")
    return await _render_editor(request, viewer, request.match_info["rkey"], sent=form,
                                template=template, notice="Preview: not saved yet.")


async def reset(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    form = await read_form(request)
    check_csrf(request, form)
    chosen = PRESETS.get(form.get("preset", ""))
    if chosen is None:
        return await _render_editor(request, viewer, request.match_info["rkey"],
                                    error="No such preset.", status=400)
    sent = {f"token-{name}": value for name, value in chosen[1].items()}
    sent["colorScheme"] = chosen[0]
    return await _render_editor(request, viewer, request.match_info["rkey"], sent=sent,
                                notice=f"Reset to {form['preset']}: not saved yet.")


async def save(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request)
    form = await read_form(request)
    check_csrf(request, form)
    assert viewer.did is not None
    rkey = request.match_info["rkey"]
    found = await asyncio.to_thread(request.app[SERVICES].queries.theme, rkey)
    if found is None:
        raise web.HTTPNotFound(text="No such theme.")
    tokens = {name: value for name, value in _editor_tokens(found, form).items() if value}
    scheme = form.get("colorScheme", "")
    if scheme not in ("light", "dark"):
        return await _render_editor(request, viewer, rkey, sent=form, status=400,
                                    error="The scheme is light or dark.")
    try:
        await _admin(request).update_theme(viewer.did, rkey, name=form.get("name", ""),
                                           color_scheme=scheme, tokens=tokens)
    except WriteError as exc:
        return await _render_editor(request, viewer, rkey, sent=form, error=_message(exc),
                                    status=exc.status)
    raise _done("saved", urls.admin_theme(rkey))


# -- stylesheets -----------------------------------------------------------------------

def _css(selector: str, tokens: dict[str, str]) -> str:
    body = "".join(f"  {name}: {value};\n" for name, value in safe_tokens(tokens).items())
    return f"{selector} {{\n{body}}}\n"


async def preview_css(request: web.Request) -> web.StreamResponse:
    """The tokens of the query, checked as /theme.css checks them, on the preview pane
    only. Public: it holds nothing but what the query says."""
    tokens = {key: value for key, value in request.query.items()}
    response = web.Response(text=_css(".theme-preview .preview-pane-inner", tokens),
                            content_type="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


async def swatches_css(request: web.Request) -> web.StreamResponse:
    queries = request.app[SERVICES].queries
    listed = await asyncio.to_thread(lambda: queries.themes(limit=100).items)
    rules = []
    for theme in listed:
        checked = safe_tokens(theme.tokens)
        for token in SWATCH_TOKENS:
            value = checked.get(css_property(token))
            if value is not None:
                rules.append(f".{swatch_class(theme, token)} {{ background: {value}; }}\n")
    return _no_store(web.Response(text="".join(rules), content_type="text/css"))
