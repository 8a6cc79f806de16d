"""The forum record, categories and boards, with board counts as of ``now``.

Board counts are materialised without bans (bans expire); a request subtracts the
contributions of the authors banned at its ``now`` (``board_author_counts``) and, when
the materialised last post's author is banned now, looks the last post up again.
"""

from __future__ import annotations

from typing import Any

from projections.ids import post_id, record_id
from projections.queries_common import (
    BOARD,
    CATEGORY,
    STRUCTURE,
    Context,
    clamp,
    forum_rkey,
)
from projections.timestamps import from_unix_micros
from projections.views import Board, Category, Forum, LastPost, Page

_CATEGORY_COLUMNS = (
    "c.id, c.uri, c.cid, c.name, c.description, c.slug, c.sort_order, c.created_at,"
    " (SELECT COUNT(*) FROM boards b WHERE b.category_uri = c.uri AND b.listed = 1)"
)
_BOARD_COLUMNS = (
    "b.id, b.uri, b.cid, b.name, b.description, b.slug, b.sort_order, b.category_uri,"
    " b.created_at, b.topic_count, b.post_count, b.last_post_uri, b.last_post_thread_uri,"
    " b.last_post_did, b.last_post_at"
)


def _indexed_at(micros: Any) -> str:
    # observed_at comes from our own clock, but a corrupt value must not fail the page.
    try:
        return from_unix_micros(int(micros))
    except (OverflowError, OSError, ValueError, TypeError):
        return from_unix_micros(0)


def forum(ctx: Context) -> Forum | None:
    row = ctx.session.query_one(
        "SELECT uri, did, name, description, created_at, indexed_at, cid FROM forum"
        " WHERE did = ? AND deleted = 0",
        (ctx.forum_did,),
    )
    if row is None:
        return None
    uri, did, name, description, created_at, indexed_at, cid = row
    return Forum(
        id="self",
        uri=uri,
        did=did,
        name=name,
        description=description,
        created_at=created_at,
        indexed_at=_indexed_at(indexed_at),
        cid=cid,
    )


def _category(row: tuple[Any, ...]) -> Category:
    cid_, uri, cid, name, description, slug, sort_order, created_at, boards = row
    return Category(
        id=cid_,
        uri=uri,
        cid=cid,
        name=name,
        description=description,
        slug=slug,
        sort_order=int(sort_order),
        created_at=created_at,
        board_count=int(boards),
    )


def _structure_order(ctx: Context, alias: str) -> str:
    return (
        f"{alias}.sort_order, {ctx.text_order(alias + '.name')}, {ctx.text_order(alias + '.uri')}"
    )


def categories(ctx: Context, offset: int | None = None, limit: int | None = None) -> Page[Category]:
    start, size = clamp(offset, limit, STRUCTURE)
    where = "c.did = ? AND c.deleted = 0"
    total = int(
        ctx.session.scalar(f"SELECT COUNT(*) FROM categories c WHERE {where}", (ctx.forum_did,))
    )
    rows = ctx.session.query(
        f"SELECT {_CATEGORY_COLUMNS} FROM categories c WHERE {where}"
        f" ORDER BY {_structure_order(ctx, 'c')} LIMIT ? OFFSET ?",
        (ctx.forum_did, size, start),
    )
    return Page(tuple(_category(r) for r in rows), total, start, size)


def category(ctx: Context, category_id: str) -> Category | None:
    rkey = forum_rkey(category_id, ctx.forum_did, CATEGORY)
    if rkey is None:
        return None
    row = ctx.session.query_one(
        f"SELECT {_CATEGORY_COLUMNS} FROM categories c"
        " WHERE c.rkey = ? AND c.did = ? AND c.deleted = 0",
        (rkey, ctx.forum_did),
    )
    return None if row is None else _category(row)


def _last_post(ctx: Context, board_uri: str, row: tuple[Any, ...]) -> LastPost | None:
    uri, thread_uri, did, created_at = row
    if uri is None:
        return None
    if ctx.is_banned(did):
        cond, params = ctx.not_banned("p.did")
        found = ctx.session.query_one(
            "SELECT p.uri, p.thread_uri, p.did, p.created_at FROM posts p"
            f" WHERE p.board_uri = ? AND p.counted = 1 AND {cond}"
            f" ORDER BY p.created_at DESC, {ctx.text_order('p.uri')} DESC LIMIT 1",
            [board_uri, *params],
        )
        if found is None:
            return None
        uri, thread_uri, did, created_at = found
    topic = ctx.session.query_one(
        "SELECT title, counted, did FROM posts WHERE uri = ? AND deleted = 0",
        (thread_uri,),
    )
    title = None
    if topic is not None:
        topic_title, counted, topic_did = topic
        if ctx.moderator or (counted == 1 and not ctx.is_banned(topic_did)):
            title = topic_title
    return LastPost(
        id=post_id(uri),
        uri=uri,
        topic_id=post_id(thread_uri),
        topic_uri=thread_uri,
        topic_title=title,
        author=ctx.author(did),
        created_at=created_at,
    )


def _board(ctx: Context, row: tuple[Any, ...]) -> Board:
    (
        board_id,
        uri,
        cid,
        name,
        description,
        slug,
        sort_order,
        category_uri,
        created_at,
        topic_count,
        post_count,
        *last,
    ) = row
    topics, posts = int(topic_count), int(post_count)
    if ctx.banned:
        cond, params = ctx.banned_in("did")
        banned_topics, banned_posts = ctx.session.query_one(
            "SELECT COALESCE(SUM(topics), 0), COALESCE(SUM(posts), 0)"
            f" FROM board_author_counts WHERE board_uri = ? AND {cond}",
            [uri, *params],
        ) or (0, 0)
        topics -= int(banned_topics)
        posts -= int(banned_posts)
    return Board(
        id=board_id,
        uri=uri,
        cid=cid,
        name=name,
        description=description,
        slug=slug,
        sort_order=int(sort_order),
        category_id=record_id(category_uri or ""),
        category_uri=category_uri or "",
        created_at=created_at,
        topic_count=topics,
        post_count=posts,
        last_post=_last_post(ctx, uri, tuple(last)),
    )


def category_boards(
    ctx: Context, category_id: str, offset: int | None = None, limit: int | None = None
) -> Page[Board] | None:
    """The listed boards of a category in (sortOrder, name, uri) order; None when the
    category is unknown."""
    found = category(ctx, category_id)
    if found is None:
        return None
    start, size = clamp(offset, limit, STRUCTURE)
    where = "b.category_uri = ? AND b.listed = 1 AND b.did = ?"
    total = int(
        ctx.session.scalar(
            f"SELECT COUNT(*) FROM boards b WHERE {where}", (found.uri, ctx.forum_did)
        )
    )
    rows = ctx.session.query(
        f"SELECT {_BOARD_COLUMNS} FROM boards b WHERE {where}"
        f" ORDER BY {_structure_order(ctx, 'b')} LIMIT ? OFFSET ?",
        (found.uri, ctx.forum_did, size, start),
    )
    return Page(tuple(_board(ctx, r) for r in rows), total, start, size)


def board(ctx: Context, board_id: str) -> Board | None:
    """A listed board (live, in a known category); None otherwise."""
    rkey = forum_rkey(board_id, ctx.forum_did, BOARD)
    if rkey is None:
        return None
    row = ctx.session.query_one(
        f"SELECT {_BOARD_COLUMNS} FROM boards b WHERE b.rkey = ? AND b.did = ? AND b.listed = 1",
        (rkey, ctx.forum_did),
    )
    return None if row is None else _board(ctx, row)


def board_uri(ctx: Context, board_id: str) -> str | None:
    """The at-uri of a listed board given its id or uri."""
    rkey = forum_rkey(board_id, ctx.forum_did, BOARD)
    if rkey is None:
        return None
    value = ctx.session.scalar(
        "SELECT uri FROM boards WHERE rkey = ? AND did = ? AND listed = 1",
        (rkey, ctx.forum_did),
    )
    return None if value is None else str(value)
