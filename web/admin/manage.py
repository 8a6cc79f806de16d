"""The administrators' pages for the forum's structure and its members:

- ``/admin/structure`` (manageCategories): categories and their boards, a form to create
  each, an inline edit form per record (``<details>``), "Move up" / "Move down" buttons
  (they renumber ``sortOrder`` among the siblings), and deletion through a confirmation
  page (``…/delete``: GET asks, POST deletes);
- ``/admin/members`` (manageMembers): members searched by handle or DID, 50 a page, each
  with a role form (manageRoles; the priority rule decides, ``ForumAdmin``).

Every form is a plain POST with the CSRF token, answered by a redirect to the page with
a notice code (never text in the URL: a crafted link cannot put words on the page);
a refused change re-renders the page with the reason as an error notice and the
refusal's status. htmx only keeps the page in place (``hx-boost``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from appview.writes.admin import MANAGE_CATEGORIES, MANAGE_MEMBERS, MANAGE_ROLES, ForumAdmin
from appview.writes.errors import InvalidRecord, WriteError
from projections.views import Board, Category, Viewer
from web import urls
from web.auth.access import check_csrf, csrf_token, require_page_permission
from web.keys import SERVICES
from web.pages.common import base_context, now, page_number, pages_for, read_form
from web.params import MAX_INT

MEMBERS_PAGE = 50
NOTICES = {
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "moved": "Moved.",
    "assigned": "Role assigned.",
    "unchanged": "They hold that role already: nothing changed.",
}


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(urls.ADMIN_STRUCTURE, structure)
    router.add_post(urls.ADMIN_CATEGORIES, create_category)
    router.add_post(urls.ADMIN_CATEGORY, edit_category)
    router.add_get(urls.ADMIN_CATEGORY_DELETE, confirm_delete_category)
    router.add_post(urls.ADMIN_CATEGORY_DELETE, delete_category)
    router.add_post(urls.ADMIN_CATEGORY_MOVE, move_category)
    router.add_post(urls.ADMIN_BOARDS, create_board)
    router.add_post(urls.ADMIN_BOARD, edit_board)
    router.add_get(urls.ADMIN_BOARD_DELETE, confirm_delete_board)
    router.add_post(urls.ADMIN_BOARD_DELETE, delete_board)
    router.add_post(urls.ADMIN_BOARD_MOVE, move_board)
    router.add_get(urls.ADMIN_MEMBERS, members)
    router.add_post(urls.ADMIN_MEMBER_ROLE, assign_role)


def _admin(request: web.Request) -> ForumAdmin:
    return request.app[SERVICES].forum_admin


async def _viewer(request: web.Request, permission: str) -> Viewer:
    return await asyncio.to_thread(require_page_permission, request, permission)


def _done(path: str, notice: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?{urlencode({'notice': notice})}")


def _message(exc: WriteError) -> str:
    if isinstance(exc, InvalidRecord):
        return f"{exc.field}: {exc.reason}"
    return str(exc)


class FormProblem(Exception):
    """A field of a form that is not what it must be; the message says which."""


def _sort_order(form: dict[str, str]) -> int | None:
    raw = form.get("sortOrder", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_INT:
        raise FormProblem("Order must be a whole number from 0.")
    return int(raw)


def _fields(form: dict[str, str]) -> dict[str, Any]:
    description = form.get("description", "").strip()
    return {"name": form.get("name", "").strip(), "description": description or None,
            "sortOrder": _sort_order(form)}


# -- structure -------------------------------------------------------------------------

def _structure(request: web.Request) -> dict[str, Any]:
    queries = request.app[SERVICES].queries
    categories = queries.categories(limit=500).items
    boards: dict[str, list[Board]] = {}
    for category in categories:
        page = queries.category_boards(category.id, viewer=Viewer.anonymous(),
                                       now=now(request), limit=500)
        boards[category.id] = [] if page is None else list(page.items)
    return {"categories": categories, "boards": boards, "forum": queries.forum()}


async def _render_structure(request: web.Request, viewer: Viewer, *, error: str | None = None,
                            status: int = 200) -> web.StreamResponse:
    context = {**base_context(request, viewer), **await asyncio.to_thread(_structure, request),
               "csrf_token": csrf_token(request), "error": error,
               "notice": NOTICES.get(request.query.get("notice", ""))}
    response = aiohttp_jinja2.render_template("admin/structure.html", request, context,
                                              status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def structure(request: web.Request) -> web.StreamResponse:
    return await _render_structure(request, await _viewer(request, MANAGE_CATEGORIES))


async def _structure_change(request: web.Request,
                            change: Callable[[str, dict[str, str]], Awaitable[str]],
                            ) -> web.StreamResponse:
    """Check, do ``change(actor, form)`` (its notice code), redirect; a refusal
    re-renders the page with the reason."""
    viewer = await _viewer(request, MANAGE_CATEGORIES)
    form = await read_form(request)
    check_csrf(request, form)
    assert viewer.did is not None
    try:
        notice = await change(viewer.did, form)
    except FormProblem as exc:
        return await _render_structure(request, viewer, error=str(exc), status=400)
    except WriteError as exc:
        return await _render_structure(request, viewer, error=_message(exc),
                                       status=exc.status)
    raise _done(urls.admin_structure(), notice)


async def create_category(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        fields = _fields(form)
        await _admin(request).create_category(actor, name=fields["name"],
                                              description=fields["description"],
                                              sort_order=fields["sortOrder"])
        return "created"
    return await _structure_change(request, change)


async def edit_category(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        await _admin(request).update_category(actor, request.match_info["id"],
                                              changes=_fields(form))
        return "saved"
    return await _structure_change(request, change)


async def create_board(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        fields = _fields(form)
        await _admin(request).create_board(actor, name=fields["name"],
                                           category=form.get("category", ""),
                                           description=fields["description"],
                                           sort_order=fields["sortOrder"])
        return "created"
    return await _structure_change(request, change)


async def edit_board(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        await _admin(request).update_board(actor, request.match_info["id"],
                                           changes=_fields(form))
        return "saved"
    return await _structure_change(request, change)


async def _confirm(request: web.Request, kind: str, record: Category | Board | None,
                   action: str) -> web.StreamResponse:
    viewer = await _viewer(request, MANAGE_CATEGORIES)
    if record is None:
        raise web.HTTPNotFound(text=f"No such {kind}.")
    context = {**base_context(request, viewer), "kind": kind, "record": record,
               "action": action, "csrf_token": csrf_token(request),
               "back": urls.admin_structure(),
               "forum": request.app[SERVICES].queries.forum()}
    return aiohttp_jinja2.render_template("admin/confirm_delete.html", request, context)


async def confirm_delete_category(request: web.Request) -> web.StreamResponse:
    category_id = request.match_info["id"]
    found = await asyncio.to_thread(request.app[SERVICES].queries.category, category_id)
    return await _confirm(request, "category", found, urls.admin_category_delete(category_id))


async def confirm_delete_board(request: web.Request) -> web.StreamResponse:
    board_id = request.match_info["id"]
    moment = now(request)
    found = await asyncio.to_thread(lambda: request.app[SERVICES].queries.board(
        board_id, now=moment))
    return await _confirm(request, "board", found, urls.admin_board_delete(board_id))


async def delete_category(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        await _admin(request).delete_category(actor, request.match_info["id"])
        return "deleted"
    return await _structure_change(request, change)


async def delete_board(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        await _admin(request).delete_board(actor, request.match_info["id"])
        return "deleted"
    return await _structure_change(request, change)


def _moved(ids: list[str], orders: list[int], moving: str, direction: str,
           ) -> dict[str, int]:
    """The sortOrder each sibling needs after ``moving`` goes one place up or down:
    the new order numbered 0, 10, 20…, only those that change."""
    if moving not in ids:
        return {}
    at = ids.index(moving)
    to = at - 1 if direction == "up" else at + 1
    if not 0 <= to < len(ids):
        return {}
    current = dict(zip(ids, orders, strict=True))
    order = list(ids)
    order[at], order[to] = order[to], order[at]
    return {rid: index * 10 for index, rid in enumerate(order) if current[rid] != index * 10}


async def move_category(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        listed = await asyncio.to_thread(_structure, request)
        categories: list[Category] = list(listed["categories"])
        renumber = _moved([c.id for c in categories], [c.sort_order for c in categories],
                          request.match_info["id"], form.get("direction", ""))
        for category_id, order in renumber.items():
            await _admin(request).update_category(actor, category_id,
                                                  changes={"sortOrder": order})
        return "moved"
    return await _structure_change(request, change)


async def move_board(request: web.Request) -> web.StreamResponse:
    async def change(actor: str, form: dict[str, str]) -> str:
        listed = await asyncio.to_thread(_structure, request)
        board_id = request.match_info["id"]
        for siblings in listed["boards"].values():
            ids = [b.id for b in siblings]
            if board_id in ids:
                renumber = _moved(ids, [b.sort_order for b in siblings], board_id,
                                  form.get("direction", ""))
                for sibling, order in renumber.items():
                    await _admin(request).update_board(actor, sibling,
                                                       changes={"sortOrder": order})
        return "moved"
    return await _structure_change(request, change)


# -- members ---------------------------------------------------------------------------

async def _render_members(request: web.Request, viewer: Viewer, *, error: str | None = None,
                          status: int = 200) -> web.StreamResponse:
    queries = request.app[SERVICES].queries
    search = request.query.get("search", "").strip()
    page = page_number(request)

    def read() -> dict[str, Any]:
        listed = queries.admin_members(search=search or None,
                                       offset=(page - 1) * MEMBERS_PAGE, limit=MEMBERS_PAGE)
        return {"members": listed, "roles": queries.roles(limit=500).items,
                "forum": queries.forum(),
                "last_page": pages_for(listed.total, MEMBERS_PAGE)}

    found = await asyncio.to_thread(read)
    if page > found["last_page"]:
        raise web.HTTPNotFound(text="No such page.")
    context = {**base_context(request, viewer), **found, "page": page, "search": search,
               "can_assign": viewer.has(MANAGE_ROLES), "csrf_token": csrf_token(request),
               "error": error, "notice": NOTICES.get(request.query.get("notice", "")),
               "page_url": lambda n: urls.admin_members(search or None, n)}
    response = aiohttp_jinja2.render_template("admin/members.html", request, context,
                                              status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def members(request: web.Request) -> web.StreamResponse:
    return await _render_members(request, await _viewer(request, MANAGE_MEMBERS))


async def assign_role(request: web.Request) -> web.StreamResponse:
    viewer = await _viewer(request, MANAGE_MEMBERS)
    form = await read_form(request)
    check_csrf(request, form)
    assert viewer.did is not None
    try:
        assigned = await _admin(request).assign_role(viewer.did, request.match_info["did"],
                                                     form.get("role", ""))
    except WriteError as exc:
        return await _render_members(request, viewer, error=_message(exc),
                                     status=exc.status)
    back = urls.local_path(form.get("next"), urls.admin_members())
    notice = "unchanged" if assigned.written is None else "assigned"
    separator = "&" if "?" in back else "?"
    raise web.HTTPSeeOther(f"{back}{separator}{urlencode({'notice': notice})}")
