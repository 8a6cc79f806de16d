"""The moderation endpoints of the JSON API, the original atBB's paths and shapes
(``Moderation/*.bru``), and ours beside them:

- ``POST /api/mod/ban {targetDid, reason[, expiresAt]}`` · ``DELETE /api/mod/ban/:did {reason}``
- ``POST /api/mod/lock {topicId, reason}`` · ``DELETE /api/mod/lock/:topicId {reason}``
- ``POST /api/mod/pin {topicId, reason}`` · ``DELETE /api/mod/pin/:topicId {reason}`` (ours)
- ``POST /api/mod/hide {postId, reason}`` · ``DELETE /api/mod/hide/:postId {reason}``
- ``GET /api/admin/modlog?offset&limit[&moderator&action&member]``

Each answers 200 ``{success, action, targetDid|topicId|postId, postUri?, uri, cid,
alreadyActive}``: 401 without a credential, 403 for a cookie session without its CSRF
token, without the permission, or against the priority rule, 400 naming the bad field,
404 an unknown member or post, 500 without the Forum account's agent, 503 while it is
not signed in or its PDS fails. The checks are ``appview.writes.forum_actions``'s; the
Forum account's agent writes the record, nothing is written on a refusal. Ids are the
read model's (``<rkey>-<digest>`` for posts, stable across rebuilds) or at-uris."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from appview.writes.errors import WriteError
from appview.writes.forum_actions import ACTIONS, REASON_MAX, ModOutcome
from events.ids import DID
from web import urls
from web.api.bodies import json_object
from web.api.write import _failed
from web.auth.access import check_csrf, request_did, viewer_for
from web.errors import ApiError, bad_request
from web.keys import SERVICES
from web.params import is_digits

MODLOG_DEFAULT = 50  # the original's default page (its maximum is 100 too)
# The body field naming the subject of each family, as the original names it.
_FIELD = {"user": "targetDid", "topic": "topicId", "post": "postId"}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(urls.API_MOD_BAN, _post("ban"))
    router.add_delete(urls.API_MOD_UNBAN, _delete("unban", "did"))
    router.add_post(urls.API_MOD_LOCK, _post("lock"))
    router.add_delete(urls.API_MOD_UNLOCK, _delete("unlock", "topicId"))
    router.add_post(urls.API_MOD_PIN, _post("pin"))
    router.add_delete(urls.API_MOD_UNPIN, _delete("unpin", "topicId"))
    router.add_post(urls.API_MOD_HIDE, _post("delete"))
    router.add_delete(urls.API_MOD_UNHIDE, _delete("undelete", "postId"))
    router.add_get(urls.API_ADMIN_MODLOG, modlog)


def _actor(request: web.Request, permission: str) -> str:
    """401 / CSRF / 403 in the original's order, before the body is read."""
    did = request_did(request)
    if did is None:
        raise ApiError(401, "Unauthorized", "Sign in (/signin), or send an admin token as"
                       " 'Authorization: Bearer <token>'.")
    check_csrf(request)
    if not viewer_for(request, did).has(permission):
        raise ApiError(403, "Forbidden", f"Your role in this forum does not grant"
                       f" {permission}.")
    return did


def _reason(body: dict[str, Any]) -> str:
    value = body.get("reason")
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"reason is required: a string of 1 to {REASON_MAX} characters"
                          " saying why.")
    if len(value.strip()) > REASON_MAX:
        raise bad_request(f"reason is longer than {REASON_MAX} characters.")
    return value


def _subject(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a numeric id, as the original's clients send: never ours
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{field} is required (a string).")
    value = value.strip()
    if field == "targetDid":
        _did(value, field)
    elif len(value) > 1000:
        raise bad_request(f"{field} is too long to be an id or at-uri.")
    return value


def _did(value: str, field: str) -> None:
    try:
        DID.parse(value)
    except ValueError as exc:
        raise bad_request(f"{field} is not a DID: {exc}") from None


def _expires(body: dict[str, Any]) -> str | None:
    value = body.get("expiresAt")
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("expiresAt must be an RFC 3339 datetime string.")
    return value


def _answer(outcome: ModOutcome, field: str, subject: str) -> web.Response:
    written = outcome.written
    body: dict[str, Any] = {"success": True, "action": outcome.action}
    post = outcome.post
    body[field] = subject if post is None else (post.thread_id if field == "topicId"
                                                else post.id)
    if post is not None:
        body["postUri"] = post.uri
    body.update(uri=None if written is None else written.uri,
                cid=None if written is None else written.cid,
                alreadyActive=outcome.already_active)
    if outcome.kind.name == "ban" and written is not None and written.record is not None:
        body["expiresAt"] = written.record.get("expiresAt")
    return web.json_response(body)


async def _act(request: web.Request, action: str, subject: str | None) -> web.Response:
    kind = ACTIONS[action]
    actor = await asyncio.to_thread(_actor, request, kind.permission)
    field = _FIELD[kind.subject]
    body = await json_object(request)
    if subject is None:
        subject = _subject(body, field)
    elif kind.subject == "user":
        _did(subject, "did")
    reason = _reason(body)
    expires = _expires(body) if action == "ban" else None
    try:
        outcome = await request.app[SERVICES].forum_actions.moderate(
            actor, action, subject, reason, expires_at=expires)
    except WriteError as exc:
        return _failed(exc)
    return _answer(outcome, field, subject)


def _post(action: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return await _act(request, action, None)

    handler.__name__ = f"mod_{action}"
    return handler


def _delete(action: str, param: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return await _act(request, action, request.match_info[param])

    handler.__name__ = f"mod_{action}"
    return handler


def _paging(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    text = raw[1:] if raw.startswith("-") else raw
    if not is_digits(text, 9):
        raise bad_request(f"{name} must be an integer.")
    return int(raw)


async def modlog(request: web.Request) -> web.Response:
    """The mod log for anyone holding a moderation permission (the original's
    ``requireAnyPermission``): ``{actions, total, offset, limit}``, newest first."""
    did = request_did(request)
    if did is None:
        raise ApiError(401, "Unauthorized", "Sign in, or send an admin token.")
    viewer = await asyncio.to_thread(viewer_for, request, did)
    if not viewer.is_moderator:
        raise ApiError(403, "Forbidden", "The mod log is for moderators (moderatePosts,"
                       " banUsers, lockTopics or pinTopics).")
    offset = max(0, _paging(request, "offset", 0))
    limit = _paging(request, "limit", MODLOG_DEFAULT)
    if limit < 1:
        raise bad_request("limit must be at least 1.")
    filters = {name: request.query.get(name) or None
               for name in ("moderator", "action", "member")}
    action = filters["action"]
    if action is not None and action.removeprefix("space.atbb.modAction.") not in ACTIONS:
        raise bad_request(f"action must be one of {', '.join(ACTIONS)}.")
    page = await asyncio.to_thread(request.app[SERVICES].queries.modlog, offset=offset,
                                   limit=limit, **filters)
    actions = [{
        "id": entry.id, "uri": entry.uri, "action": entry.action,
        "moderatorDid": None if entry.moderator is None else entry.moderator.did,
        "moderatorHandle": None if entry.moderator is None else (
            entry.moderator.handle or entry.moderator.did),
        "subjectDid": entry.subject_did,
        "subjectHandle": None if entry.subject_did is None or entry.subject is None
        else entry.subject.handle,
        "subjectPostUri": entry.subject_uri,
        "subjectPostId": entry.subject_post_id,
        "reason": entry.reason, "createdAt": entry.created_at,
        "expiresAt": entry.expires_at,
    } for entry in page.items]
    return web.json_response({"actions": actions, "total": page.total,
                              "offset": page.offset, "limit": page.limit})
