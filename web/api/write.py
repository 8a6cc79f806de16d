"""The writing endpoints of the JSON API, as the original atBB answers them
(``Topics/Create Topic.bru``, ``Posts/Create Reply.bru``) and ours beside them:

- ``POST /api/topics {title, text, boardUri}`` → 201 ``{uri, cid, rkey}``;
- ``POST /api/posts {text, rootPostId, parentPostId}`` → 201 ``{uri, cid, rkey}``;
- ``PUT /api/posts/:id {text[, title]}`` → 200 ``{uri, cid, rkey}`` (one's own post);
- ``DELETE /api/posts/:id`` → 200 ``{uri, deleted: true}``;
- ``POST /api/posts/:id/reactions {reaction}`` → 201 ``{uri, cid, rkey}`` (200 with
  ``alreadyActive: true`` when the member had reacted so);
- ``DELETE /api/posts/:id/reactions?reaction=…`` → 200 ``{removed: n}``.

Errors are ``{"error", "message"}``: 400 invalid input (which field), 401 not signed
in (or a bearer token whose DID has no session at its PDS here, saying so), 403 banned
(with the reason), topic locked, role without the permission, another member's post; 404
unknown board, topic or post; 409 the post changed meanwhile; 429 with ``Retry-After``;
503 the member's PDS failing. A cookie session sends ``X-CSRF-Token``; a bearer token
needs none and writes through ``pds_session_for_did`` (``web.auth.access``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appview.auth.pds_session import PdsSession
from appview.writes.errors import RateLimited, WriteError
from appview.writes.writer import Written
from web import urls
from web.api.bodies import json_object
from web.auth.access import check_csrf, request_did, writing_session
from web.errors import ApiError, bad_request, error_response
from web.keys import SERVICES


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(urls.API_TOPICS, create_topic)
    router.add_post(urls.API_POSTS, create_reply)
    router.add_put(urls.API_POST, edit_post)
    router.add_delete(urls.API_POST, delete_post)
    router.add_post(urls.API_POST_REACTIONS, add_reaction)
    router.add_delete(urls.API_POST_REACTIONS, remove_reaction)


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} is required (a string)." if value is None
                          else f"{name} must be a string.")
    return value


async def _session(request: web.Request) -> PdsSession:
    """The PDS session that writes (401 in words without one), after the CSRF token
    of a cookie session (a bearer token is exempt)."""
    did = request_did(request)
    if did is None:
        raise ApiError(401, "Unauthorized", "Sign in (/signin), or send an admin token as"
                       " 'Authorization: Bearer <token>' whose account signed in here once.")
    check_csrf(request)
    session = await writing_session(request)
    if session is not None:
        return session
    raise ApiError(401, "NoPdsSession",
                   f"The appview holds no session at the PDS of {did}: sign in once at"
                   " /signin with that account (OAuth or an app password), and this token"
                   " then writes through it.")


def _failed(exc: WriteError) -> web.Response:
    response = error_response(exc.status, exc.code, str(exc))
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _answer(written: Written, status: int = 201, **extra: Any) -> web.Response:
    return web.json_response({"uri": written.uri, "cid": written.cid, "rkey": written.rkey,
                              **extra}, status=status)


async def create_topic(request: web.Request) -> web.Response:
    session = await _session(request)
    body = await json_object(request)
    title, text, board = (_text(body, "title"), _text(body, "text"), _text(body, "boardUri"))
    assert title is not None and text is not None and board is not None
    if not board.startswith("at://"):
        raise bad_request("boardUri must be the board's at-uri"
                          " (at://did/space.atbb.forum.board/rkey).")
    try:
        written = await request.app[SERVICES].forum_writes.new_topic(
            session, board=board, title=title, text=text)
    except WriteError as exc:
        return _failed(exc)
    return _answer(written)


async def create_reply(request: web.Request) -> web.Response:
    session = await _session(request)
    body = await json_object(request)
    if body.get("title") is not None:
        raise bad_request("A reply has no title (title is for POST /api/topics).")
    text, root = _text(body, "text"), _text(body, "rootPostId")
    parent = _text(body, "parentPostId", required=False)
    assert text is not None and root is not None
    try:
        written = await request.app[SERVICES].forum_writes.reply(
            session, root=root, parent=parent, text=text)
    except WriteError as exc:
        return _failed(exc)
    return _answer(written)


async def edit_post(request: web.Request) -> web.Response:
    session = await _session(request)
    body = await json_object(request)
    text, title = _text(body, "text"), _text(body, "title", required=False)
    assert text is not None
    try:
        written = await request.app[SERVICES].forum_writes.edit_post(
            session, request.match_info["id"], text=text, title=title)
    except WriteError as exc:
        return _failed(exc)
    return _answer(written, status=200)


async def delete_post(request: web.Request) -> web.Response:
    session = await _session(request)
    try:
        written = await request.app[SERVICES].forum_writes.delete_post(
            session, request.match_info["id"])
    except WriteError as exc:
        return _failed(exc)
    return web.json_response({"uri": written.uri, "deleted": True})


async def add_reaction(request: web.Request) -> web.Response:
    session = await _session(request)
    body = await json_object(request)
    reaction = _text(body, "reaction")
    assert reaction is not None
    writes = request.app[SERVICES].forum_writes
    try:
        written = await writes.react(session, request.match_info["id"], reaction)
    except WriteError as exc:
        return _failed(exc)
    if written is None:
        return web.json_response({"alreadyActive": True, "reaction": reaction.strip()})
    return _answer(written)


async def remove_reaction(request: web.Request) -> web.Response:
    session = await _session(request)
    reaction = request.query.get("reaction")
    if not reaction:
        raise bad_request("Say which reaction to remove: ?reaction=…")
    try:
        removed = await request.app[SERVICES].forum_writes.unreact(
            session, request.match_info["id"], reaction)
    except WriteError as exc:
        return _failed(exc)
    return web.json_response({"removed": len(removed)})
