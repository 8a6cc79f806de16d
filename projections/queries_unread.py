"""What the read models say for unread tracking (``web.pages.unread``): topics last active
after a time, a board's or the forum's newest activity, a topic's first post after a
time. The marks themselves are the appview's own (``appview.reader_state``)."""

from __future__ import annotations

from collections.abc import Sequence

from projections.queries_common import Context
from projections.queries_posts import visible

# topics looked at per board when counting unread ones: the count shows as "200+" past it
UNREAD_SCAN = 200


def active_topics(ctx: Context, board_uris: Sequence[str],
                  after: dict[str, str | None]) -> dict[str, list[tuple[str, str]]]:
    """Per board, (topic uri, last activity) of the topics the viewer gets whose last
    activity is after ``after[board]`` (every topic when None), newest first, at most
    ``UNREAD_SCAN + 1``."""
    cond, params = visible(ctx, "t")
    found: dict[str, list[tuple[str, str]]] = {}
    for board in board_uris:
        floor = after.get(board) or ""
        rows = ctx.session.query(
            "SELECT t.uri, t.last_activity_at FROM posts t WHERE t.board_uri = ?"
            " AND t.kind = 'topic' AND COALESCE(t.last_activity_at, '') > ?"
            f" AND {cond} ORDER BY t.last_activity_at DESC LIMIT ?",
            [board, floor, *params, UNREAD_SCAN + 1])
        found[board] = [(str(uri), str(at or "")) for uri, at in rows]
    return found


def newest_activity(ctx: Context, board_uri: str | None) -> str | None:
    """The last activity of the newest topic the viewer gets in a board (every board
    when None): what "mark read" marks up to."""
    cond, params = visible(ctx, "t")
    where = "t.kind = 'topic'" + (" AND t.board_uri = ?" if board_uri else "")
    value = ctx.session.scalar(
        f"SELECT MAX(t.last_activity_at) FROM posts t WHERE {where} AND {cond}",
        [*([board_uri] if board_uri else []), *params])
    return None if value is None else str(value)


def first_after(ctx: Context, topic_uri: str, after: str | None) -> str | None:
    """The id of the first post of the topic (the opening post included) the viewer gets
    that was created after ``after``; None when there is none."""
    cond, params = visible(ctx)
    row = ctx.session.query(
        "SELECT p.id FROM posts p WHERE (p.uri = ? OR p.thread_uri = ?)"
        f" AND COALESCE(p.created_at, '') > ? AND {cond}"
        f" ORDER BY COALESCE(p.created_at, ''), {ctx.text_order('p.uri')} LIMIT 1",
        [topic_uri, topic_uri, after or "", *params])
    return str(row[0][0]) if row else None
