"""``GET /api/search`` and ``GET /api/posts/:id/versions`` (api.md, "Search" and "Edit
history"): as the asking viewer may see the forum (a moderator's token or session finds
what a moderator may), answered ``private`` when a viewer is signed in."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from aiohttp import web

from projections.history import post_history
from projections.search_text import QueryProblem
from projections.views import Highlighted, SearchHit, SearchResults, Viewer
from web import urls
from web.api.jsonview import to_json
from web.errors import ApiError, bad_request, not_found
from web.keys import SERVICES
from web.pages.common import page_viewer, read
from web.pages.search import search_filters, search_request
from web.params import BadParameter, query_int


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.API_SEARCH, search)
    router.add_get(urls.API_POST_VERSIONS, versions)


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[SERVICES].clock.now_us() / 1e6, UTC)


def highlighted_html(runs: Highlighted) -> str:
    """Marked runs as HTML: every character of the post escaped, the matched runs in
    ``<mark>``."""
    return "".join(f"<mark>{escape(text)}</mark>" if matched else escape(text)
                   for text, matched in runs)


def _plain(runs: Highlighted) -> str:
    return "".join(text for text, _matched in runs)


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "id": hit.id, "uri": hit.uri, "kind": hit.kind, "url": urls.post(hit.id),
        "author": to_json(hit.author), "boardId": hit.board_id, "topicId": hit.topic_id,
        "topicUri": hit.topic_uri, "topicTitle": hit.topic_title,
        "title": _plain(hit.title) or None,
        "titleHtml": highlighted_html(hit.title) or None,
        "excerpt": _plain(hit.excerpt), "excerptHtml": highlighted_html(hit.excerpt),
        "createdAt": hit.created_at, "hiddenByModerator": hit.hidden_by_moderator,
        "authorBanned": hit.author_banned, "authorSuspended": hit.author_suspended,
    }


def results_json(results: SearchResults) -> dict[str, Any]:
    return {"query": results.query, "sort": results.sort,
            "results": [hit_json(h) for h in results.hits], "total": results.total,
            "totalCapped": results.total_capped, "offset": results.offset,
            "limit": results.limit}


def _json(request: web.Request, viewer: Viewer, body: dict[str, Any]) -> web.Response:
    response = web.json_response(body)
    # what a signed-in viewer gets depends on who they are
    response.headers["Cache-Control"] = "private, no-store" if viewer.did else "no-cache"
    return response


async def search(request: web.Request) -> web.Response:
    text = request.query.get("q", "")
    if not text.strip():
        raise bad_request("q is required: the words to search for.")
    try:
        offset = query_int(request.query, "offset")
        limit = query_int(request.query, "limit")
    except BadParameter as exc:
        raise bad_request(str(exc)) from None
    viewer, moment = page_viewer(request), _now(request)
    queries = request.app[SERVICES].queries
    wanted = search_request(text, search_filters(request.query), offset, limit)

    def load() -> SearchResults | str:
        try:
            return queries.search(wanted, viewer=viewer, now=moment)
        except QueryProblem as problem:
            return str(problem)

    results = await read(load)
    if isinstance(results, str):
        raise ApiError(400, "BadQuery", results)
    return _json(request, viewer, results_json(results))


async def versions(request: web.Request) -> web.Response:
    post_ref = request.match_info["id"]
    viewer, moment = page_viewer(request), _now(request)
    found = request.app[SERVICES]

    def load() -> dict[str, Any] | None:
        with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
            history = post_history(ctx, found.event_log, post_ref)
        if history is None:
            return None
        return {"post": {"id": history.post.id, "uri": history.post.uri},
                "versions": [to_json(v) for v in history.versions]}

    body = await read(load)
    if body is None:
        raise not_found("No such post, or it has no history to show.")
    return _json(request, viewer, body)
