"""The administration endpoints of the JSON API, in the original atBB's paths and shapes
(docs/api.md, "Administration"): members and roles, categories and boards, themes and
the theme policy. Reads come from the read models; writes go through
``appview.writes.admin.ForumAdmin`` to the Forum account's repo.

Every endpoint answers, in this order: 401 without a credential (a member's session or
an admin token), 403 for a cookie session without its CSRF token (a bearer token needs
none), 403 when the acting DID's role lacks the permission, 400 naming the bad field,
404 for an unknown record, 409 for a state that forbids the change, 503 when the Forum
account is not signed in or its PDS fails. Nothing is written on any refusal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from appview.writes.admin import (
    MANAGE_CATEGORIES,
    MANAGE_MEMBERS,
    MANAGE_ROLES,
    MANAGE_THEMES,
    ForumAdmin,
)
from appview.writes.errors import InvalidRecord, RateLimited, WriteError
from appview.writes.writer import Written
from events.collections import ROLE
from projections.queries import Queries
from projections.views import Role, Theme
from web import urls
from web.api.bodies import json_object
from web.api.jsonview import to_json
from web.auth.access import check_csrf, request_did, require_permission
from web.errors import ApiError, bad_request, error_response
from web.keys import SERVICES
from web.params import MAX_INT, BadParameter, query_int

T = TypeVar("T")

# The original's admin themes list: at most 100, with isTruncated.
THEMES_LISTED = 100
_SLUG = re.compile(r"^[a-z0-9-]{1,64}$")


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(urls.API_ADMIN_MEMBERS_ME, members_me)
    router.add_get(urls.API_ADMIN_MEMBERS, members)
    router.add_post(urls.API_ADMIN_MEMBER_ROLE, assign_role)
    router.add_get(urls.API_ADMIN_ROLES, roles)
    router.add_post(urls.API_ADMIN_CATEGORIES, create_category)
    router.add_put(urls.API_ADMIN_CATEGORY, update_category)
    router.add_delete(urls.API_ADMIN_CATEGORY, delete_category)
    router.add_post(urls.API_ADMIN_BOARDS, create_board)
    router.add_put(urls.API_ADMIN_BOARD, update_board)
    router.add_delete(urls.API_ADMIN_BOARD, delete_board)
    router.add_get(urls.API_ADMIN_THEMES, list_themes)
    router.add_post(urls.API_ADMIN_THEMES, create_theme)
    router.add_put(urls.API_ADMIN_THEME, update_theme)
    router.add_delete(urls.API_ADMIN_THEME, delete_theme)
    router.add_post(urls.API_ADMIN_THEME_DUPLICATE, duplicate_theme)
    router.add_put(urls.API_ADMIN_THEME_POLICY, put_theme_policy)


# -- who asks --------------------------------------------------------------------------

def _signed_in(request: web.Request) -> str:
    did = request_did(request)
    if did is None:
        raise ApiError(401, "Unauthorized", "Sign in (/signin), or send an admin token as"
                       " 'Authorization: Bearer <token>'.")
    return did


def _acting(request: web.Request, name: str) -> str:
    """The DID making a change: signed in (401), the CSRF token of a cookie session
    (403), the permission (403)."""
    _signed_in(request)
    check_csrf(request)
    return require_permission(request, name)


def _admin(request: web.Request) -> ForumAdmin:
    return request.app[SERVICES].forum_admin


def _queries(request: web.Request) -> Queries:
    return request.app[SERVICES].queries


async def _read(func: Callable[[], T]) -> T:
    return await asyncio.to_thread(func)


# -- bodies ----------------------------------------------------------------------------

def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name} is required (a string).")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string.")
    if required and not value.strip():
        raise bad_request(f"{name} must not be empty.")
    return value


def _sort_order(body: dict[str, Any]) -> int | None:
    value = body.get("sortOrder")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise bad_request("sortOrder must be a whole number from 0.")
    return value


def _slug(body: dict[str, Any]) -> str | None:
    value = _string(body, "slug")
    if value is not None and not _SLUG.match(value):
        raise bad_request("slug must be 1 to 64 of a-z, 0-9 and '-'.")
    return value


def _structure_fields(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The category or board fields of a body: ``name`` (required when creating),
    ``description``, ``sortOrder``, ``slug``; on an update, only those sent."""
    fields: dict[str, Any] = {
        "name": _string(body, "name", required=creating),
        "description": _string(body, "description"),
        "sortOrder": _sort_order(body),
        "slug": _slug(body),
    }
    if not creating and "name" in body:
        fields["name"] = _string(body, "name", required=True)
    if creating:
        return fields
    changes = {key: value for key, value in fields.items() if key in body}
    if "name" in changes:
        changes["name"] = str(changes["name"]).strip()
    if "description" in changes and changes["description"] is not None:
        changes["description"] = changes["description"].strip() or None
    return changes


# -- answers ---------------------------------------------------------------------------

def _failed(exc: WriteError) -> web.Response:
    message = str(exc)
    if isinstance(exc, InvalidRecord):
        message = f"{exc.field}: {exc.reason}"
    response = error_response(exc.status, exc.code, message)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _written(written: Written, status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({"uri": written.uri, "cid": written.cid, "id": written.rkey,
                              "rkey": written.rkey, **extra}, status=status)


def _paging(request: web.Request) -> tuple[int | None, int | None]:
    """offset and limit; a negative offset is taken as 0, as the original does."""
    try:
        offset = query_int(request.query, "offset", minimum=-MAX_INT)
        limit = query_int(request.query, "limit")
    except BadParameter as exc:
        raise bad_request(str(exc)) from None
    return (None if offset is None else max(0, offset)), limit


# -- members and roles -----------------------------------------------------------------

def _role_json(role: Role) -> dict[str, Any]:
    return {"id": role.id, "uri": role.uri, "name": role.name,
            "description": role.description, "permissions": sorted(role.permissions),
            "priority": role.priority, "isDefault": role.is_default}


async def members_me(request: web.Request) -> web.Response:
    did = _signed_in(request)
    found = await _admin(request).permissions(did)
    now = datetime.fromtimestamp(request.app[SERVICES].clock.now_us() / 1e6, UTC)
    member = await _read(lambda: _queries(request).member(did, now=now))
    handle = None if member is None else member.handle
    role = found.role
    return web.json_response({
        "did": did, "handle": handle,
        "role": None if role is None else role.name,
        "roleUri": None if role is None else role.uri,
        "priority": found.authority,
        "permissions": sorted(found.permissions),
    })


async def members(request: web.Request) -> web.Response:
    require_permission(request, MANAGE_MEMBERS)
    offset, limit = _paging(request)
    search = (request.query.get("search") or request.query.get("q") or "").strip() or None
    page = await _read(lambda: _queries(request).admin_members(
        search=search, offset=offset, limit=limit))
    return web.json_response({"members": [to_json(member) for member in page.items],
                              "total": page.total, "offset": page.offset,
                              "limit": page.limit})


async def roles(request: web.Request) -> web.Response:
    _signed_in(request)
    page = await _read(lambda: _queries(request).roles(limit=500))
    return web.json_response({"roles": [_role_json(role) for role in page.items]})


async def assign_role(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_ROLES)
    body = await json_object(request, empty_is_object=True)
    role_uri = _string(body, "roleUri", required=True)
    assert role_uri is not None
    if not role_uri.startswith("at://") or f"/{ROLE}/" not in role_uri:
        raise bad_request(f"roleUri must be a role's at-uri (at://FORUM_DID/{ROLE}/RKEY).")
    target = request.match_info["did"]
    if not target.startswith("did:"):
        raise bad_request("The member is named by their DID (did:plc:… or did:web:…).")
    try:
        assigned = await _admin(request).assign_role(actor, target, role_uri)
    except WriteError as exc:
        return _failed(exc)
    written = assigned.written
    return web.json_response({
        "success": True, "roleAssigned": assigned.role.name, "targetDid": target,
        "roleUri": assigned.role.uri, "alreadyActive": written is None,
        "uri": None if written is None else written.uri,
        "cid": None if written is None else written.cid,
    })


# -- categories and boards -------------------------------------------------------------

async def create_category(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_CATEGORIES)
    fields = _structure_fields(await json_object(request, empty_is_object=True), creating=True)
    try:
        written = await _admin(request).create_category(
            actor, name=fields["name"], description=fields["description"],
            sort_order=fields["sortOrder"], slug=fields["slug"])
    except WriteError as exc:
        return _failed(exc)
    return _written(written, 201)


async def update_category(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_CATEGORIES)
    changes = _structure_fields(await json_object(request, empty_is_object=True), creating=False)
    try:
        written = await _admin(request).update_category(actor, request.match_info["id"],
                                                        changes=changes)
    except WriteError as exc:
        return _failed(exc)
    return _written(written)


async def delete_category(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_CATEGORIES)
    try:
        written = await _admin(request).delete_category(actor, request.match_info["id"])
    except WriteError as exc:
        return _failed(exc)
    return web.json_response({"success": True, "uri": written.uri})


async def create_board(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_CATEGORIES)
    body = await json_object(request, empty_is_object=True)
    category = _string(body, "categoryUri", required=True)
    fields = _structure_fields(body, creating=True)
    assert category is not None
    try:
        written = await _admin(request).create_board(
            actor, name=fields["name"], category=category.strip(),
            description=fields["description"], sort_order=fields["sortOrder"],
            slug=fields["slug"])
    except WriteError as exc:
        return _failed(exc)
    return _written(written, 201)


async def update_board(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_CATEGORIES)
    body = await json_object(request, empty_is_object=True)
    if "categoryUri" in body:
        raise bad_request("A board stays in its category (categoryUri cannot change).")
    changes = _structure_fields(body, creating=False)
    try:
        written = await _admin(request).update_board(actor, request.match_info["id"],
                                                     changes=changes)
    except WriteError as exc:
        return _failed(exc)
    return _written(written)


async def delete_board(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_CATEGORIES)
    try:
        written = await _admin(request).delete_board(actor, request.match_info["id"])
    except WriteError as exc:
        return _failed(exc)
    return web.json_response({"success": True, "uri": written.uri})


# -- themes ----------------------------------------------------------------------------

def theme_json(theme: Theme) -> dict[str, Any]:
    return {"id": theme.id, "rkey": theme.id, "uri": theme.uri, "cid": theme.cid,
            "name": theme.name, "colorScheme": theme.color_scheme,
            "tokens": dict(theme.tokens), "cssOverrides": theme.css_overrides,
            "fontUrls": list(theme.font_urls), "createdAt": theme.created_at}


def theme_fields(body: dict[str, Any]) -> dict[str, Any]:
    """A theme body checked field by field: ``name``, ``colorScheme`` (light or dark),
    ``tokens`` (an object of strings), ``cssOverrides``, ``fontUrls`` (https only)."""
    name = _string(body, "name", required=True)
    scheme = body.get("colorScheme")
    if scheme not in ("light", "dark"):
        raise bad_request("colorScheme must be \"light\" or \"dark\".")
    tokens = body.get("tokens")
    if not isinstance(tokens, dict):
        raise bad_request("tokens is required: an object of token names to strings.")
    for key, value in tokens.items():
        if not isinstance(value, str):
            raise bad_request(f"tokens.{key} must be a string.")
    css = _string(body, "cssOverrides")
    fonts = body.get("fontUrls")
    if fonts is not None:
        if not isinstance(fonts, list) or not all(isinstance(u, str) for u in fonts):
            raise bad_request("fontUrls must be an array of https URLs.")
        for url in fonts:
            if not url.startswith("https://"):
                raise bad_request(f"fontUrls: {url!r} is not an https URL.")
    return {"name": name, "color_scheme": scheme, "tokens": tokens, "css_overrides": css,
            "font_urls": fonts}


async def list_themes(request: web.Request) -> web.Response:
    require_permission(request, MANAGE_THEMES)
    page = await _read(lambda: _queries(request).themes(limit=THEMES_LISTED))
    return web.json_response({"themes": [theme_json(theme) for theme in page.items],
                              "total": page.total,
                              "isTruncated": page.total > len(page.items)})


async def create_theme(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_THEMES)
    fields = theme_fields(await json_object(request, empty_is_object=True))
    try:
        written = await _admin(request).create_theme(actor, **fields)
    except WriteError as exc:
        return _failed(exc)
    return _written(written, 201)


async def update_theme(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_THEMES)
    fields = theme_fields(await json_object(request, empty_is_object=True))
    try:
        written = await _admin(request).update_theme(actor, request.match_info["rkey"],
                                                     **fields)
    except WriteError as exc:
        return _failed(exc)
    return _written(written)


async def delete_theme(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_THEMES)
    try:
        written = await _admin(request).delete_theme(actor, request.match_info["rkey"])
    except WriteError as exc:
        return _failed(exc)
    return web.json_response({"success": True, "uri": written.uri})


async def duplicate_theme(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_THEMES)
    try:
        written = await _admin(request).duplicate_theme(actor, request.match_info["rkey"])
    except WriteError as exc:
        return _failed(exc)
    name = (written.record or {}).get("name")
    return _written(written, 201, name=name)


def policy_fields(body: dict[str, Any]) -> dict[str, Any]:
    available = body.get("availableThemes")
    if not isinstance(available, list) or not available:
        raise bad_request("availableThemes must be a non-empty array of {uri, cid?}.")
    entries: list[tuple[str, str | None]] = []
    for index, entry in enumerate(available):
        uri = entry.get("uri") if isinstance(entry, dict) else None
        cid = entry.get("cid") if isinstance(entry, dict) else None
        if not isinstance(uri, str) or not uri.startswith("at://"):
            raise bad_request(f"availableThemes[{index}].uri must be a theme's at-uri.")
        if cid is not None and not isinstance(cid, str):
            raise bad_request(f"availableThemes[{index}].cid must be a string.")
        entries.append((uri, cid))
    light = _string(body, "defaultLightThemeUri", required=True)
    dark = _string(body, "defaultDarkThemeUri", required=True)
    allow = body.get("allowUserChoice", True)
    if not isinstance(allow, bool):
        raise bad_request("allowUserChoice must be true or false.")
    return {"available": entries, "default_light": light, "default_dark": dark,
            "allow_user_choice": allow}


async def put_theme_policy(request: web.Request) -> web.Response:
    actor = _acting(request, MANAGE_THEMES)
    fields = policy_fields(await json_object(request, empty_is_object=True))
    try:
        written = await _admin(request).put_theme_policy(actor, **fields)
    except WriteError as exc:
        return _failed(exc)
    return web.json_response({"uri": written.uri, "cid": written.cid})
