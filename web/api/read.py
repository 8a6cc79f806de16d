"""The public read endpoints of the JSON API (api.md, "Reading"): moderation applied for
the viewer, lists paged with offset/limit/total."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from events.collections import FORUM
from events.model import at_uri
from projections.ids import post_id, split_uri
from projections.queries import Queries
from projections.views import Page, Post, Viewer
from web import urls
from web.api.jsonview import to_json
from web.errors import bad_request, not_found
from web.keys import SERVICES
from web.params import MAX_INT, BadParameter, query_int

T = TypeVar("T")

THEME_CACHE_CONTROL = "public, max-age=300"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.API_FORUM, forum)
    router.add_get(urls.API_CATEGORIES, categories)
    router.add_get(urls.API_CATEGORY, category)
    router.add_get(urls.API_CATEGORY_BOARDS, category_boards)
    router.add_get(urls.API_BOARD, board)
    router.add_get(urls.API_BOARD_TOPICS, board_topics)
    router.add_get(urls.API_TOPIC, topic)
    router.add_get(urls.API_THEMES, themes)
    router.add_get(urls.API_THEME, theme)
    router.add_get(urls.API_THEME_POLICY, theme_policy)


def _queries(request: web.Request) -> Queries:
    return request.app[SERVICES].queries


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[SERVICES].clock.now_us() / 1e6, UTC)


def _viewer(request: web.Request) -> Viewer:
    # The public read endpoints answer as the public sees the forum, whoever asks (the
    # original's are "public (moderation-filtered)"); moderators see more on the pages.
    return Viewer.anonymous()


def _int_param(request: web.Request, name: str) -> int | None:
    """A paging parameter; an offset below 0 is taken as 0, as the original does."""
    try:
        if name == "offset":
            value = query_int(request.query, name, minimum=-MAX_INT)
            return None if value is None else max(0, value)
        return query_int(request.query, name)
    except BadParameter as exc:
        raise bad_request(str(exc)) from None


def _forum_uri(request: web.Request) -> str:
    return at_uri(request.app[SERVICES].settings.forum_did, FORUM, "self")


def _original_post(post: Post, forum_uri: str) -> dict[str, Any]:
    """A post's JSON with the original's names beside ours: ``did``, ``rkey``,
    ``forumUri``, and a reply's ``parentPostId``."""
    body: dict[str, Any] = to_json(post)
    parts = split_uri(post.uri)
    body["did"] = post.author.did
    body["rkey"] = None if parts is None else parts[2]
    body["forumUri"] = forum_uri
    if post.kind != "topic":
        body["parentPostId"] = None if post.parent_uri is None else post_id(post.parent_uri)
    return body


async def _read(func: Callable[[], T]) -> T:
    # Queries block on the database; keep them off the event loop.
    return await asyncio.to_thread(func)


def _paged(key: str, page: Page[Any]) -> dict[str, Any]:
    return {key: [to_json(item) for item in page.items], "total": page.total,
            "offset": page.offset, "limit": page.limit}


async def forum(request: web.Request) -> web.Response:
    result = await _read(_queries(request).forum)
    if result is None:
        raise not_found("The forum record has not been indexed yet.")
    return web.json_response(to_json(result))


async def categories(request: web.Request) -> web.Response:
    offset, limit = _int_param(request, "offset"), _int_param(request, "limit")
    page = await _read(lambda: _queries(request).categories(offset=offset, limit=limit))
    return web.json_response(_paged("categories", page))


async def category(request: web.Request) -> web.Response:
    category_id = request.match_info["id"]
    result = await _read(lambda: _queries(request).category(category_id))
    if result is None:
        raise not_found(f"No category {category_id!r}.")
    return web.json_response(to_json(result))


async def category_boards(request: web.Request) -> web.Response:
    return await _listing(request, "boards", "category", _queries(request).category_boards)


async def board(request: web.Request) -> web.Response:
    board_id = request.match_info["id"]
    viewer, now = _viewer(request), _now(request)
    result = await _read(lambda: _queries(request).board(board_id, viewer=viewer, now=now))
    if result is None:
        raise not_found(f"No board {board_id!r}.")
    return web.json_response(to_json(result))


async def board_topics(request: web.Request) -> web.Response:
    forum_uri = _forum_uri(request)
    return await _listing(request, "topics", "board", _queries(request).board_topics,
                          extra={"forumUri": forum_uri})  # the original's field


async def _listing(
    request: web.Request, key: str, parent: str, query: Callable[..., Page[Any] | None],
    extra: dict[str, Any] | None = None,
) -> web.Response:
    """One page of a parent's children (a category's boards, a board's topics) for this
    viewer; 404 when the parent is not listed."""
    parent_id = request.match_info["id"]
    offset, limit = _int_param(request, "offset"), _int_param(request, "limit")
    viewer, now = _viewer(request), _now(request)
    page = await _read(lambda: query(parent_id, viewer=viewer, now=now, offset=offset,
                                     limit=limit))
    if page is None:
        raise not_found(f"No {parent} {parent_id!r}.")
    body = _paged(key, page)
    for item in body[key]:
        item.update(extra or {})
    return web.json_response(body)


async def topic(request: web.Request) -> web.Response:
    topic_id = request.match_info["id"]
    offset, limit = _int_param(request, "offset"), _int_param(request, "limit")
    viewer, now = _viewer(request), _now(request)
    result = await _read(lambda: _queries(request).topic(
        topic_id, viewer=viewer, now=now, offset=offset, limit=limit))
    if result is None:
        raise not_found(f"No topic {topic_id!r}.")
    return web.json_response({
        "topicId": result.topic.id,
        "locked": result.locked,
        "pinned": result.pinned,
        "replyCount": result.reply_count,
        "total": result.replies.total,
        "offset": result.replies.offset,
        "limit": result.replies.limit,
        "post": _original_post(result.topic, _forum_uri(request)),
        "replies": [_original_post(reply, _forum_uri(request))
                    for reply in result.replies.items],
    })


async def themes(request: web.Request) -> web.Response:
    page = await _read(lambda: _queries(request).themes())
    response = web.json_response(_paged("themes", page))
    response.headers["Cache-Control"] = THEME_CACHE_CONTROL
    return response


async def theme(request: web.Request) -> web.Response:
    rkey = request.match_info["rkey"]
    result = await _read(lambda: _queries(request).theme(rkey))
    if result is None:
        raise not_found(f"No theme {rkey!r}.")
    return _cached(request, to_json(result), result.cid)


async def theme_policy(request: web.Request) -> web.Response:
    result = await _read(_queries(request).theme_policy)
    if result is None:
        raise not_found("The theme policy has not been indexed yet.")
    body = to_json(result)
    # the original's names for the defaults, beside ours
    body["defaultLightThemeUri"] = result.default_light_theme
    body["defaultDarkThemeUri"] = result.default_dark_theme
    return _cached(request, body, result.cid)


def _cached(request: web.Request, body: Any, cid: str | None) -> web.Response:
    """ETag = the record's CID: a client holding it gets a 304."""
    etag = f'"{cid}"' if cid else None
    if etag is not None and etag in request.headers.get("If-None-Match", ""):
        response = web.Response(status=304)
    else:
        response = web.json_response(body)
    if etag is not None:
        response.headers["ETag"] = etag
    response.headers["Cache-Control"] = THEME_CACHE_CONTROL
    return response
