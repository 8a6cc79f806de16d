"""A topic's pages (the opening post and its replies, numbered, with permalink anchors)
and post permalinks, which redirect to the page holding the post."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from appview.writes.forum_actions import ACTIONS, may_act_on
from projections import queries_members, queries_posts, queries_structure, queries_writes
from projections.queries import Queries
from projections.queries_common import TOPIC_REPLIES
from projections.views import Viewer
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
from web.pages.unread import mark_topic_seen

REPLIES_PER_PAGE = TOPIC_REPLIES.default


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.TOPIC, topic)
    router.add_get(urls.POST, post_permalink)


async def topic(request: web.Request) -> web.Response:
    topic_id = request.match_info["id"]
    if "post" in request.query:
        return await _redirect_to_post(request, request.query["post"])
    page = page_number(request)
    viewer, moment = page_viewer(request), now(request)
    avatars = services(request).avatars
    # an avatar fetched since the page was rendered changes it
    found = await validators(request, viewer, moment,
                             extra=[f"avatars:{avatars.page_mark()}"])
    if (early := answer_early(request, found, viewer)) is not None:
        return early
    queries = services(request).queries
    live = stream_context(request, urls.topic_live(topic_id))

    def load() -> dict[str, Any] | None:
        return topic_context(queries, topic_id, page, viewer, moment)

    context = await read(load)
    if context is None:
        raise web.HTTPNotFound(text="No such topic.")
    if viewer.did is not None:
        did, shown, held = viewer.did, context["result"], services(request)
        times = [p.created_at for p in [shown.topic, *shown.replies.items]]
        await read(lambda: mark_topic_seen(held, did, shown.topic.uri, times))
    last_page = pages_for(context["result"].replies.total, REPLIES_PER_PAGE)
    if page > last_page:
        raise web.HTTPNotFound(text="No such page.")
    result = context["result"]
    authors = [p.author.did for p in [result.topic, *result.replies.items]]
    faces = avatars.view_from_memory(authors)
    if faces is None:  # some authors were not looked up lately: a read of the table
        faces = await read(lambda: avatars.view(authors))
    # the members without a cached avatar show their initials now, and theirs next time
    avatars.want(faces.stale)
    context["avatars"] = {did: urls.avatar(did, cid) for did, cid in faces.cids.items()}
    topic_id_found = context["result"].topic.id
    context.update(page=page, last_page=last_page,
                   topic_page_url=lambda number: urls.topic(topic_id_found, number),
                   **live,
                   **writing_context(request, viewer))
    context["compose"] = {"kind": "reply", "action": urls.reply(topic_id_found), "title": "",
                          "text": "", "error": None, "preview": False, "parent": ""}
    return await render(request, "topic.html", context, found, viewer)



def topic_context(queries: Queries, topic_id: str, page: int, viewer: Viewer,
                  moment: datetime) -> dict[str, Any] | None:
    """What a topic page shows, read in one snapshot (blocking); None for no such topic."""
    with queries.snapshot(viewer=viewer, now=moment) as ctx:
        result = queries_posts.topic(
            ctx, topic_id, (page - 1) * REPLIES_PER_PAGE, REPLIES_PER_PAGE
        )
        if result is None:
            return None
        board = (
            queries_structure.board(ctx, result.topic.board_id)
            if result.topic.board_id else None
        )
        category = (queries_structure.category(ctx, board.category_id)
                    if board is not None else None)
        forum = queries_structure.forum(ctx)
        posts = [result.topic, *result.replies.items]
        parents = _parent_numbers(ctx, result.topic.uri, posts)
        reactions = queries_writes.reactions(ctx, [p.uri for p in posts])
        badges = queries_members.role_badges(ctx, [p.author.did for p in posts])
        # whose posts this moderator may act on (the priority rule): no link is
        # offered that the action would refuse
        outranked: frozenset[str] = frozenset()
        if viewer.is_moderator and viewer.did is not None:
            mine = queries_members.member_permissions(ctx, viewer.did)
            outranked = frozenset(
                did for did in {p.author.did for p in posts}
                if may_act_on(mine, queries_members.member_permissions(ctx, did),
                              ACTIONS["ban"]))
    return {"forum": forum, "board": board, "category": category, "result": result,
            "reactions": reactions, "parents": parents, "outranked": outranked,
            "badges": badges,
            # filled in by the handler from the avatar cache (beside the log, not in it)
            "avatars": {}}


def _parent_numbers(ctx: Any, topic_uri: str, posts: list[Any]) -> dict[str, tuple[int, str]]:
    """For each nested reply shown (its parent is another reply), the parent's number in
    the thread and id: "in reply to #N". Parents on the page are known; the others are
    looked up (as the viewer may see them: a hidden parent is not named)."""
    on_page = {p.uri: (p.position, p.id) for p in posts}
    found: dict[str, tuple[int, str]] = {}
    for post in posts:
        parent = post.parent_uri
        if post.kind != "reply" or not parent or parent == topic_uri:
            continue
        if parent not in on_page:
            shown = queries_posts.post(ctx, parent)
            on_page[parent] = (shown.position, shown.id) if shown is not None else (0, "")
        number, parent_id = on_page[parent]
        if parent_id:
            found[post.uri] = (number, parent_id)
    return found


async def post_permalink(request: web.Request) -> web.Response:
    return await _redirect_to_post(request, request.match_info["id"])


async def _redirect_to_post(request: web.Request, post_ref: str) -> web.Response:
    """A 302 (not 301: the page a post is on moves as posts come and go) to its page."""
    viewer, moment = page_viewer(request), now(request)
    queries = services(request).queries

    def locate() -> Any:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            return queries_posts.post_location(ctx, post_ref, REPLIES_PER_PAGE)

    location = await read(locate)
    if location is None:
        raise web.HTTPNotFound(text="No such post.")
    page = location.offset // REPLIES_PER_PAGE + 1
    raise web.HTTPFound(urls.topic(location.topic_id, page, urls.post_anchor(location.post_id)))
