"""The forum index and the board pages (with htmx "load more" of a board's next page)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from projections import queries_posts, queries_structure
from projections.queries_common import BOARD_TOPICS
from web import urls
from web.pages.common import (
    answer_early,
    now,
    page_number,
    page_viewer,
    pages_for,
    read,
    render,
    services,
    validators,
    writing_context,
)
from web.pages.live import stream_context
from web.pages.unread import unread_label, unread_topics

TOPICS_PER_PAGE = BOARD_TOPICS.default


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.INDEX, index)
    router.add_get(urls.BOARD, board)


async def index(request: web.Request) -> web.Response:
    viewer, moment = page_viewer(request), now(request)
    found = await validators(request, viewer, moment)
    if (early := answer_early(request, found, viewer)) is not None:
        return early
    queries = services(request).queries

    def load() -> dict[str, Any]:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            forum = queries_structure.forum(ctx)
            sections = []
            for category in queries_structure.categories(ctx, 0, 500).items:
                boards = queries_structure.category_boards(ctx, category.id, 0, 500)
                sections.append((category, [] if boards is None else list(boards.items)))
        return {"forum": forum, "sections": sections}

    context = await read(load)
    held = services(request)
    boards = [b.uri for _category, listed in context["sections"] for b in listed]
    unread = await read(lambda: unread_topics(held, viewer, moment, boards))
    context.update(unread={board: len(uris) for board, uris in unread.items()},
                   unread_label=unread_label, **writing_context(request, viewer))
    return await render(request, "index.html", context, found, viewer)


async def board(request: web.Request) -> web.Response:
    board_id = request.match_info["id"]
    page = page_number(request)
    viewer, moment = page_viewer(request), now(request)
    found = await validators(request, viewer, moment)
    if (early := answer_early(request, found, viewer)) is not None:
        return early
    queries = services(request).queries
    live = stream_context(request, urls.board_live(board_id))

    def load() -> dict[str, Any] | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            found_board = queries_structure.board(ctx, board_id)
            if found_board is None:
                return None
            topics = queries_posts.board_topics(
                ctx, found_board.uri, (page - 1) * TOPICS_PER_PAGE, TOPICS_PER_PAGE
            )
            category = queries_structure.category(ctx, found_board.category_id)
            forum = queries_structure.forum(ctx)
            last = queries_posts.last_replies(ctx, [t.uri for t in topics.items])
        return {"forum": forum, "board": found_board, "category": category, "topics": topics,
                "last_replies": last}

    context = await read(load)
    if context is None:
        raise web.HTTPNotFound(text="No such board.")
    topics = context["topics"]
    last_page = pages_for(topics.total, TOPICS_PER_PAGE)
    if page > last_page:
        raise web.HTTPNotFound(text="No such page.")
    board_id_found = context["board"].id
    held, board_uri = services(request), context["board"].uri
    unread = await read(lambda: unread_topics(held, viewer, moment, [board_uri]))
    context["unread"] = set(unread.get(board_uri, ()))
    context.update(page=page, last_page=last_page,
                   board_page_url=lambda number: urls.board(board_id_found, number),
                   **live,
                   **writing_context(request, viewer))
    context["compose"] = {"kind": "topic", "action": urls.new_topic(board_id_found),
                          "title": "", "text": "", "error": None, "preview": False,
                          "parent": ""}
    return await render(request, "board.html", context, found, viewer)

