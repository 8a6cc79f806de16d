"""Unread tracking for signed-in members: which topics have posts they have not seen
(the index's per-board counts, the board page's marks), "jump to first unread", and
marking a board or the whole forum read. Reading a topic page marks its posts up to the
newest one shown as seen (``topic.py``). The marks are ``appview.reader_state``'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aiohttp import web

from appview.bootstrap import Services
from projections import queries_posts, queries_structure, queries_unread
from projections.queries_common import TOPIC_REPLIES
from projections.queries_unread import UNREAD_SCAN
from projections.views import Viewer
from web import urls
from web.auth.access import check_csrf
from web.pages.common import now, page_viewer, read, read_form, services


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.TOPIC_UNREAD, first_unread)
    router.add_post(urls.BOARD_READ, mark_board_read)
    router.add_post(urls.FORUM_READ, mark_forum_read)


def unread_topics(found: Services, viewer: Viewer, moment: datetime,
                  board_uris: Sequence[str]) -> dict[str, list[str]]:
    """Per board, the uris of the topics ``viewer`` has unread (newest first, at most
    ``UNREAD_SCAN + 1``). Blocking: from a worker thread. Empty for the anonymous."""
    if viewer.did is None or not board_uris:
        return {}
    state = found.reader_state
    coarse = state.marks(viewer.did, board_uris=board_uris)
    floors = {board: coarse.read_at("", board) for board in board_uris}
    with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
        active = queries_unread.active_topics(ctx, board_uris, floors)
    marks = state.marks(viewer.did, topic_uris=[u for rows in active.values()
                                                for u, _ in rows], board_uris=board_uris)
    return {board: [uri for uri, at in rows if marks.unread(uri, board, at)]
            for board, rows in active.items()}


def unread_label(count: int) -> str:
    return f"{UNREAD_SCAN}+" if count > UNREAD_SCAN else str(count)


def mark_topic_seen(found: Services, did: str, topic_uri: str,
                    times: Sequence[str | None]) -> None:
    """The member saw these posts of the topic: read up to the newest of them."""
    newest = max((t for t in times if t), default=None)
    if newest is not None:
        found.reader_state.read_topic(did, topic_uri, newest)


async def first_unread(request: web.Request) -> web.Response:
    """302 to the first post the member has not seen (the topic's first page when they
    have seen none, its last post when they have seen all); anonymous: the topic."""
    viewer, moment = page_viewer(request), now(request)
    found = services(request)
    ref = request.match_info["id"]

    def locate() -> str | None:
        with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
            topic = queries_posts.post(ctx, ref)
            if topic is None or topic.kind != "topic":
                return None
            if viewer.did is None:
                return urls.topic(topic.id)
            board = (queries_structure.board(ctx, topic.board_id)
                     if topic.board_id else None)
            board_uri = board.uri if board is not None else None
            marks = found.reader_state.marks(viewer.did, [topic.uri],
                                             [board_uri] if board_uri else [])
            mark = marks.read_at(topic.uri, board_uri)
            if mark is None:
                return urls.topic(topic.id)
            target = queries_unread.first_after(ctx, topic.uri, mark)
            if target is None:
                page = queries_posts.topic(ctx, topic.id, 0, 1)
                total = 0 if page is None else page.replies.total
                last = max(1, -(-total // TOPIC_REPLIES.default))
                return urls.topic(topic.id, last if last > 1 else None)
            return urls.post(target)

    target = await read(locate)
    if target is None:
        raise web.HTTPNotFound(text="No such topic.")
    raise web.HTTPFound(target)


async def _signed_in(request: web.Request) -> tuple[Viewer, str]:
    viewer = page_viewer(request)
    if viewer.did is None:
        raise web.HTTPSeeOther(urls.signin(next_path=urls.index()))
    form = await read_form(request)
    check_csrf(request, form)
    return viewer, urls.local_path(form.get("next"), urls.index())


async def mark_board_read(request: web.Request) -> web.Response:
    viewer, back = await _signed_in(request)
    found, moment = services(request), now(request)
    ref = request.match_info["id"]
    did = viewer.did
    assert did is not None

    def mark() -> bool:
        with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
            board = queries_structure.board(ctx, ref)
            if board is None:
                return False
            newest = queries_unread.newest_activity(ctx, board.uri)
        if newest is not None:
            found.reader_state.read_board(did, board.uri, newest)
        return True

    if not await read(mark):
        raise web.HTTPNotFound(text="No such board.")
    raise web.HTTPSeeOther(back)


async def mark_forum_read(request: web.Request) -> web.Response:
    viewer, back = await _signed_in(request)
    found, moment = services(request), now(request)
    did = viewer.did
    assert did is not None

    def mark() -> None:
        with found.queries.snapshot(viewer=viewer, now=moment) as ctx:
            newest = queries_unread.newest_activity(ctx, None)
        if newest is not None:
            found.reader_state.read_forum(did, newest)

    await read(mark)
    raise web.HTTPSeeOther(back)
