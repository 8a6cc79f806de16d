"""The writing pages: new topic (from a board), reply, nested reply and quote (from a
topic), edit and delete of one's own post, reactions, and the Markdown preview.

Every form works without JavaScript: it posts, the write happens (or not), and the
answer is a redirect to the post (303) or the same form again with what was typed and
the error in words (the write's status: 400, 403, 404, 409, 429 with ``Retry-After``,
503). With htmx the same forms post in place: the error replaces the form (htmx swaps
4xx and 503 answers, ``base.html``), a success navigates to the post without a reload
(``HX-Location``), a reaction swaps its post's reaction bar, and "Preview" renders the
text through the very renderer of the pages (``POST /preview``). The writes themselves
are ``appview.writes.ForumWrites`` (docs/writing.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appview.auth.pds_session import PdsSession
from appview.writes.errors import RateLimited, WriteError
from appview.writes.writer import Written
from projections import queries_posts, queries_structure, queries_writes
from projections.ids import post_id
from projections.views import Post, Viewer
from web import urls
from web.auth.access import check_csrf, csrf_token, request_did, writing_session
from web.pages.common import (
    MARKDOWN,
    REACTIONS,
    base_context,
    now,
    page_viewer,
    read,
    read_form,
    services,
)
from web.pages.topic import REPLIES_PER_PAGE

QUOTE_LIMIT = 2000  # characters of the quoted post kept in the reply box


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.NEW_TOPIC, new_topic_form)
    router.add_post(urls.NEW_TOPIC, new_topic)
    router.add_get(urls.REPLY, reply_form)
    router.add_post(urls.REPLY, reply)
    router.add_get(urls.EDIT_POST, edit_form)
    router.add_post(urls.EDIT_POST, edit)
    router.add_get(urls.DELETE_POST, delete_form)
    router.add_post(urls.DELETE_POST, delete)
    router.add_post(urls.REACT, react)
    router.add_post(urls.PREVIEW, preview)


def quote_text(author: str, uri: str, text: str) -> str:
    """The start of a reply quoting ``text``: ``[@author wrote](at-uri):`` and the text
    as a ``>`` block (at most ``QUOTE_LIMIT`` characters, cut at a line's end), then an
    empty line for the reply."""
    body = text.strip()
    if len(body) > QUOTE_LIMIT:
        cut = body.rfind("\n", 0, QUOTE_LIMIT)
        body = body[: cut if cut > 0 else QUOTE_LIMIT].rstrip() + " …"
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in body.split("\n"))
    return f"[@{author} wrote]({uri}):\n\n{quoted}\n\n"


# -- the pieces every handler shares ---------------------------------------------------

def _is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def _viewer(request: web.Request) -> Viewer:
    return await asyncio.to_thread(page_viewer, request)


async def _session(request: web.Request) -> PdsSession:
    """The session writing for this page's request; a redirect to sign in without one
    (back to the page the form is on)."""
    session = await writing_session(request)
    if session is not None:
        return session
    if request_did(request) is not None:  # an admin token with no PDS session here
        raise web.HTTPUnauthorized(
            text="This admin token's account has no session at its PDS here: sign in with"
                 " the account itself (handle and approval, or an app password) to write.")
    raise web.HTTPSeeOther(urls.signin(next_path=request.path_qs))


def _page(request: web.Request, template: str, context: Mapping[str, Any], viewer: Viewer, *,
          status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    full = {**base_context(request, viewer), "csrf_token": csrf_token(request),
            "reactions_offered": REACTIONS, **context}
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _failure_headers(exc: WriteError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}


async def _location(request: web.Request, viewer: Viewer, written: Written | None,
                    fallback: str) -> str:
    """Where the member goes after a write: the post, on its topic page."""
    if written is None or written.collection != "space.atbb.post" \
            or written.operation == "delete":
        return fallback
    queries = services(request).queries
    moment = now(request)

    def locate() -> Any:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            return queries_posts.post_location(ctx, written.uri, REPLIES_PER_PAGE)

    found = await read(locate)
    if found is None:  # not projected yet (the PDS gave no rev): its permalink works later
        return urls.post(post_id(written.uri)) if written.rev is not None else fallback
    page = found.offset // REPLIES_PER_PAGE + 1
    return urls.topic(found.topic_id, page, urls.post_anchor(found.post_id))


def _done(request: web.Request, location: str) -> web.Response:
    if _is_htmx(request):
        response = web.Response(status=200)
        response.headers["HX-Location"] = json.dumps({"path": location, "target": "body"})
        return response
    raise web.HTTPSeeOther(location)


def _compose(kind: str, action: str, fields: Mapping[str, str], *, error: str | None = None,
             preview: bool = False, parent: str | None = None) -> dict[str, Any]:
    return {"compose": {
        "kind": kind, "action": action, "title": fields.get("title", ""),
        "text": fields.get("text", ""), "error": error, "preview": preview,
        "parent": parent if parent is not None else fields.get("parent", ""),
    }}


def _wants_preview(fields: Mapping[str, str]) -> bool:
    return fields.get("action") == "preview"


# -- new topic ---------------------------------------------------------------------------

async def _board(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    board_id = request.match_info["id"]
    queries, moment = services(request).queries, now(request)

    def load() -> dict[str, Any] | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            board = queries_structure.board(ctx, board_id)
            if board is None:
                return None
            return {"board": board, "forum": queries_structure.forum(ctx)}

    found = await read(load)
    if found is None:
        raise web.HTTPNotFound(text="No such board.")
    return found


async def new_topic_form(request: web.Request) -> web.Response:
    await _session(request)
    viewer = await _viewer(request)
    context = await _board(request, viewer)
    action = urls.new_topic(context["board"].id)
    return _page(request, "compose.html", {**context, **_compose("topic", action, {})}, viewer)


async def new_topic(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    session = await _session(request)
    viewer = await _viewer(request)
    context = await _board(request, viewer)
    board = context["board"]
    action = urls.new_topic(board.id)
    if _wants_preview(fields):
        return _page(request, "compose.html",
                     {**context, **_compose("topic", action, fields, preview=True)}, viewer)
    try:
        written = await services(request).forum_writes.new_topic(
            session, board=board.uri, title=fields.get("title", ""),
            text=fields.get("text", ""))
    except WriteError as exc:
        return _page(request, "compose.html",
                     {**context, **_compose("topic", action, fields, error=str(exc))},
                     viewer, status=exc.status, headers=_failure_headers(exc))
    return _done(request, await _location(request, viewer, written, urls.board(board.id)))


# -- replies, nested replies and quotes ---------------------------------------------------

async def _thread(request: web.Request, viewer: Viewer,
                  *refs: str | None) -> dict[str, Any]:
    """The topic of the URL, and the posts ``refs`` name (None where none or unknown)."""
    topic_id = request.match_info["id"]
    queries, moment = services(request).queries, now(request)

    def load() -> dict[str, Any] | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            topic = queries_posts.post(ctx, topic_id)
            if topic is None or topic.kind != "topic":
                return None
            target = queries_writes.post_target(ctx, topic.uri)
            posts = [queries_posts.post(ctx, ref) if ref else None for ref in refs]
            board = queries_structure.board(ctx, topic.board_id) if topic.board_id else None
            return {"topic": topic, "locked": target is not None and target.locked,
                    "posts": posts, "forum": queries_structure.forum(ctx), "board": board}

    found = await read(load)
    if found is None:
        raise web.HTTPNotFound(text="No such topic.")
    return found


def _reply_context(found: dict[str, Any], parent: Post | None) -> dict[str, Any]:
    return {"forum": found["forum"], "topic": found["topic"], "locked": found["locked"],
            "board": found["board"], "parent_post": parent}


async def reply_form(request: web.Request) -> web.Response:
    await _session(request)
    viewer = await _viewer(request)
    found = await _thread(request, viewer, request.query.get("parent"),
                          request.query.get("quote"))
    parent, quoted = found["posts"]
    parent = parent or quoted
    fields: dict[str, str] = {}
    if quoted is not None and not quoted.deleted_by_author:
        fields["text"] = quote_text(quoted.author.handle or quoted.author.did, quoted.uri,
                                    quoted.text)
    action = urls.reply(found["topic"].id)
    compose = _compose("reply", action, fields,
                       parent=parent.id if parent is not None else "")
    return _page(request, "compose.html", {**_reply_context(found, parent), **compose}, viewer)


async def reply(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    session = await _session(request)
    viewer = await _viewer(request)
    found = await _thread(request, viewer, fields.get("parent") or None)
    topic, (parent,) = found["topic"], found["posts"]
    action = urls.reply(topic.id)
    context = _reply_context(found, parent)
    if _wants_preview(fields):
        return _page(request, "compose.html",
                     {**context, **_compose("reply", action, fields, preview=True)}, viewer)
    try:
        written = await services(request).forum_writes.reply(
            session, root=topic.uri, parent=fields.get("parent") or None,
            text=fields.get("text", ""))
    except WriteError as exc:
        return _page(request, "compose.html",
                     {**context, **_compose("reply", action, fields, error=str(exc))},
                     viewer, status=exc.status, headers=_failure_headers(exc))
    return _done(request, await _location(request, viewer, written, urls.topic(topic.id)))


# -- edit and delete ------------------------------------------------------------------------

async def _own_post(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    ref = request.match_info["id"]
    queries, moment = services(request).queries, now(request)

    def load() -> dict[str, Any] | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            post = queries_posts.post(ctx, ref)
            if post is None or post.deleted_by_author:
                return None
            return {"post": post, "forum": queries_structure.forum(ctx)}

    found = await read(load)
    if found is None:
        raise web.HTTPNotFound(text="No such post.")
    if found["post"].author.did != viewer.did:
        raise web.HTTPForbidden(text="Only its author may change a post.")
    return found


async def edit_form(request: web.Request) -> web.Response:
    await _session(request)
    viewer = await _viewer(request)
    found = await _own_post(request, viewer)
    post = found["post"]
    fields = {"text": post.text, "title": post.title or ""}
    compose = _compose("edit-topic" if post.kind == "topic" else "edit",
                       urls.edit_post(post.id), fields)
    return _page(request, "compose.html", {**found, **compose}, viewer)


async def edit(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    session = await _session(request)
    viewer = await _viewer(request)
    found = await _own_post(request, viewer)
    post = found["post"]
    kind = "edit-topic" if post.kind == "topic" else "edit"
    action = urls.edit_post(post.id)
    if _wants_preview(fields):
        return _page(request, "compose.html",
                     {**found, **_compose(kind, action, fields, preview=True)}, viewer)
    try:
        written = await services(request).forum_writes.edit_post(
            session, post.uri, text=fields.get("text", ""),
            title=fields.get("title") if post.kind == "topic" else None)
    except WriteError as exc:
        return _page(request, "compose.html",
                     {**found, **_compose(kind, action, fields, error=str(exc))},
                     viewer, status=exc.status, headers=_failure_headers(exc))
    return _done(request, await _location(request, viewer, written, urls.post(post.id)))


async def delete_form(request: web.Request) -> web.Response:
    await _session(request)
    viewer = await _viewer(request)
    found = await _own_post(request, viewer)
    return _page(request, "delete.html", {**found, "error": None}, viewer)


async def delete(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    session = await _session(request)
    viewer = await _viewer(request)
    found = await _own_post(request, viewer)
    post = found["post"]
    try:
        await services(request).forum_writes.delete_post(session, post.uri)
    except WriteError as exc:
        return _page(request, "delete.html", {**found, "error": str(exc)}, viewer,
                     status=exc.status, headers=_failure_headers(exc))
    if post.kind == "topic":
        back = urls.board(post.board_id) if post.board_id else urls.index()
    else:
        back = urls.topic(post.topic_id)
    return _done(request, back)


# -- reactions --------------------------------------------------------------------------

async def react(request: web.Request) -> web.Response:
    fields = await read_form(request)
    check_csrf(request, fields)
    session = await _session(request)
    viewer = await _viewer(request)
    ref = request.match_info["id"]
    # the button pressed names the reaction: ``add`` (to react) or ``remove`` (one's own)
    removing = "remove" in fields
    reaction = fields.get("remove" if removing else "add", "")
    writes = services(request).forum_writes
    error = None
    status = 200
    headers: dict[str, str] = {}
    try:
        if removing:
            await writes.unreact(session, ref, reaction)
        else:
            await writes.react(session, ref, reaction)
    except WriteError as exc:
        error, status, headers = str(exc), exc.status, _failure_headers(exc)
    queries, moment = services(request).queries, now(request)

    def load() -> dict[str, Any] | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            post = queries_posts.post(ctx, ref)
            if post is None:
                return None
            return {"post": post,
                    "reactions": queries_writes.reactions(ctx, [post.uri]).get(post.uri),
                    "location": queries_posts.post_location(ctx, post.uri, REPLIES_PER_PAGE)}

    found = await read(load)
    if found is None:
        raise web.HTTPNotFound(text="No such post.")
    if error is not None and not _is_htmx(request):
        raise _REFUSALS.get(status, web.HTTPBadRequest)(text=error, headers=headers)
    if _is_htmx(request):
        return _page(request, "reactions.html", {**found, "error": error}, viewer,
                     status=status, headers=headers)
    location = found["location"]
    raise web.HTTPSeeOther(urls.topic(location.topic_id,
                                      location.offset // REPLIES_PER_PAGE + 1,
                                      urls.post_anchor(location.post_id))
                           if location is not None else urls.post(found["post"].id))


_REFUSALS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
    404: web.HTTPNotFound, 409: web.HTTPConflict, 429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,
}


# -- preview ----------------------------------------------------------------------------

async def preview(request: web.Request) -> web.Response:
    """The text rendered exactly as a post shows it (changes nothing: no CSRF token)."""
    fields = await read_form(request)
    html = request.app[MARKDOWN].render(fields.get("text", ""))
    response = web.Response(text=f'<div class="post-body">{html}</div>',
                            content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response
