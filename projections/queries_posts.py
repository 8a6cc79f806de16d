"""Topics, replies and permalinks, as one viewer may see them at ``now``.

Who gets what (one rule for every list of posts):
- a moderator: every post that exists (state 'ok': valid, parents known, account not
  removed), each marked with the reasons that would hide it;
- anyone else: posts not hidden by a moderator, not of a suspended account and whose
  author is not banned now. A post deleted by its author stays as a placeholder
  (``DELETED_TEXT``, no title) so threads keep their shape.
Counts (``reply_count``) and ``last_reply_at`` are of publicly visible posts only: the
materialised values minus the authors banned now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from projections.db import placeholders
from projections.ids import post_id, record_id
from projections.queries_common import (
    BOARD_TOPICS,
    RECENT,
    TOPIC_REPLIES,
    Context,
    clamp,
    post_key,
)
from projections.views import (
    DELETED_TEXT,
    Author,
    Page,
    Post,
    PostLocation,
    ReactionCount,
    TopicPage,
    TopicSummary,
)

Row = dict[str, Any]


def visible(ctx: Context, alias: str = "p") -> tuple[str, list[Any]]:
    """The condition for a post (``alias``) to be in the viewer's lists."""
    if ctx.moderator:
        return f"{alias}.state = 'ok'", []
    cond, params = ctx.not_banned(f"{alias}.did")
    return (
        f"{alias}.state = 'ok' AND {alias}.hidden = 0 AND {alias}.suspended = 0 AND {cond}",
        params,
    )


def public(ctx: Context, alias: str = "p") -> tuple[str, list[Any]]:
    """The condition for a post to be publicly visible now (what counts)."""
    cond, params = ctx.not_banned(f"{alias}.did")
    return f"{alias}.counted = 1 AND {cond}", params


def reaction_counts(ctx: Context, uris: Iterable[str]) -> dict[str, tuple[ReactionCount, ...]]:
    """Reaction counts per post uri (posts without reactions are absent)."""
    wanted = sorted(set(uris))
    found: dict[str, list[ReactionCount]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = ctx.session.query(
            "SELECT post_uri, reaction, count FROM reaction_counts"
            f" WHERE post_uri IN ({placeholders(len(chunk))}) AND count > 0",
            chunk,
        )
        for uri, reaction, count in rows:
            found.setdefault(uri, []).append(ReactionCount(uri, reaction, int(count)))
    return {uri: tuple(sorted(counts, key=lambda c: c.reaction)) for uri, counts in found.items()}


def _positions(ctx: Context, rows: Sequence[Row]) -> dict[str, int]:
    """Each reply's rank in its thread among every reply that exists there."""
    ranks: dict[str, int] = {}
    for row in rows:
        if row["kind"] != "reply":
            continue
        ranks[row["uri"]] = 1 + int(
            ctx.session.scalar(
                "SELECT COUNT(*) FROM posts q WHERE q.thread_uri = ? AND q.kind = 'reply'"
                " AND q.state = 'ok' AND (COALESCE(q.created_at, '') < ?"
                f" OR (COALESCE(q.created_at, '') = ? AND {ctx.text_order('q.uri')} < ?))",
                (row["thread_uri"], row["created_at"] or "", row["created_at"] or "", row["uri"]),
            )
        )
    return ranks


def _posts(
    ctx: Context, rows: Sequence[Row], positions: dict[str, int] | None = None
) -> list[Post]:
    if positions is None:
        positions = _positions(ctx, rows)
    handles = ctx.handles([r["did"] for r in rows])
    reactions = reaction_counts(ctx, [r["uri"] for r in rows])
    posts = []
    for row in rows:
        deleted = row["deleted"] == 1
        topic_uri = row["thread_uri"] or row["uri"]
        posts.append(
            Post(
                id=row["id"],
                uri=row["uri"],
                cid=row["cid"],
                author=Author(row["did"], handles.get(row["did"])),
                kind=row["kind"] or "reply",
                title=None if deleted else row["title"],
                text=DELETED_TEXT if deleted else (row["text"] or ""),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                board_id=record_id(row["board_uri"]) if row["board_uri"] else None,
                topic_id=post_id(topic_uri),
                topic_uri=topic_uri,
                parent_uri=row["parent_uri"],
                position=positions.get(row["uri"], 0),
                reactions=reactions.get(row["uri"], ()),
                hidden_by_moderator=row["hidden"] == 1,
                author_banned=ctx.is_banned(row["did"]),
                author_suspended=row["suspended"] == 1,
                deleted_by_author=deleted,
                # absent from a location an earlier version built (it serves until
                # rebuilt): the page renders the text then
                html=None if deleted else row.get("html"),
            )
        )
    return posts


def _reply_stats(ctx: Context, rows: Sequence[Row]) -> dict[str, tuple[int, str | None]]:
    """Publicly visible reply count and last reply time of each topic row, now."""
    stats = {r["uri"]: (int(r["reply_count"]), r["last_reply_at"]) for r in rows}
    if not ctx.banned or not rows:
        return stats
    uris = list(stats)
    cond, params = ctx.banned_in("did")
    for thread_uri, replies in ctx.session.query(
        "SELECT thread_uri, SUM(replies) FROM thread_author_counts"
        f" WHERE thread_uri IN ({placeholders(len(uris))}) AND {cond} GROUP BY thread_uri",
        [*uris, *params],
    ):
        count, last = stats[thread_uri]
        stats[thread_uri] = (count - int(replies), last)
    for row in rows:
        if "eff_last_reply_at" in row:
            count, _last = stats[row["uri"]]
            stats[row["uri"]] = (count, row["eff_last_reply_at"])
    return stats


def _effective_last_reply(ctx: Context) -> tuple[str, list[Any]]:
    """SQL for a topic ``t``'s last publicly visible reply time now (``lr`` is the
    materialised last reply): looked up again only when that reply's author is banned."""
    if not ctx.banned:
        return "t.last_reply_at", []
    is_banned, banned_params = ctx.banned_in("lr.did")
    not_banned, not_banned_params = ctx.not_banned("r.did")
    return (
        f"CASE WHEN {is_banned} THEN (SELECT MAX(r.created_at) FROM posts r"
        " WHERE r.thread_uri = t.uri AND r.kind = 'reply' AND r.counted = 1"
        f" AND {not_banned}) ELSE t.last_reply_at END",
        [*banned_params, *not_banned_params],
    )


def _summaries(ctx: Context, rows: Sequence[Row]) -> list[TopicSummary]:
    stats = _reply_stats(ctx, rows)
    handles = ctx.handles([r["did"] for r in rows])
    summaries = []
    for row in rows:
        deleted = row["deleted"] == 1
        count, last = stats[row["uri"]]
        created = row["created_at"]
        activity = max(created or "", last) if last else created
        summaries.append(
            TopicSummary(
                id=row["id"],
                uri=row["uri"],
                did=row["did"],
                rkey=row["rkey"],
                cid=row["cid"],
                board_id=record_id(row["board_uri"]) if row["board_uri"] else None,
                title=None if deleted else row["title"],
                text=DELETED_TEXT if deleted else (row["text"] or ""),
                author=Author(row["did"], handles.get(row["did"])),
                created_at=created,
                reply_count=count,
                last_reply_at=last,
                last_activity_at=activity,
                locked=row["locked"] == 1,
                pinned=row["pinned"] == 1,
                hidden_by_moderator=row["hidden"] == 1,
                author_banned=ctx.is_banned(row["did"]),
                author_suspended=row["suspended"] == 1,
                deleted_by_author=deleted,
            )
        )
    return summaries


def board_topics(
    ctx: Context, board_uri: str, offset: int | None = None, limit: int | None = None
) -> Page[TopicSummary]:
    """A board's topics the viewer gets: pinned first, then by last activity (newest
    first: the topic's createdAt or its last publicly visible reply), then uri."""
    start, size = clamp(offset, limit, BOARD_TOPICS)
    cond, params = visible(ctx, "t")
    where = f"t.board_uri = ? AND t.kind = 'topic' AND {cond}"
    total = int(
        ctx.session.scalar(f"SELECT COUNT(*) FROM posts t WHERE {where}", [board_uri, *params])
    )
    last_sql, last_params = _effective_last_reply(ctx)
    # The page's topics are ordered from the few columns the order needs, then only
    # their own rows are read: ordering whole rows read every topic's body of the board
    # (5,000 topics a board at 1M posts) for each cold page.
    ordered = ctx.session.query(
        "SELECT x.uri, x.eff_last_reply_at FROM ("
        f" SELECT t.uri, t.pinned, t.created_at, {last_sql} AS eff_last_reply_at"
        f" FROM posts t LEFT JOIN posts lr ON lr.uri = t.last_reply_uri WHERE {where}) x"
        " ORDER BY x.pinned DESC, CASE WHEN x.eff_last_reply_at IS NOT NULL"
        " AND x.eff_last_reply_at > COALESCE(x.created_at, '') THEN x.eff_last_reply_at"
        " ELSE COALESCE(x.created_at, '') END DESC,"
        f" {ctx.text_order('x.uri')} LIMIT ? OFFSET ?",
        [*last_params, board_uri, *params, size, start],
    )
    order = {str(uri): rank for rank, (uri, _last) in enumerate(ordered)}
    effective = {str(uri): last for uri, last in ordered}
    rows = sorted(
        ({**r, "eff_last_reply_at": effective[r["uri"]]} for r in ctx.session.query_dicts(
            f"SELECT t.* FROM posts t WHERE t.uri IN ({placeholders(len(order))})",
            list(order))) if order else [],
        key=lambda r: order[r["uri"]])
    return Page(tuple(_summaries(ctx, rows)), total, start, size)


def _find(ctx: Context, post: str, extra: str = "") -> Row | None:
    column, value = post_key(post)
    cond, params = visible(ctx)
    # Ids are not unique if someone crafts a DID whose digest collides: the smallest uri
    # wins, the same on every read (the full at-uri always reaches each post).
    rows = ctx.session.query_dicts(
        f"SELECT p.* FROM posts p WHERE p.{column} = ? AND {cond}{extra}"
        f" ORDER BY {ctx.text_order('p.uri')} LIMIT 1",
        [value, *params],
    )
    return rows[0] if rows else None


def post(ctx: Context, post_ref: str) -> Post | None:
    """One post (by id or at-uri) if the viewer may see it."""
    row = _find(ctx, post_ref)
    return None if row is None else _posts(ctx, [row])[0]


def topic(
    ctx: Context, topic_ref: str, offset: int | None = None, limit: int | None = None
) -> TopicPage | None:
    """A topic (by id or at-uri) and one page of its replies in thread order; None when
    the viewer may not see the topic."""
    row = _find(ctx, topic_ref, " AND p.kind = 'topic'")
    if row is None:
        return None
    start, size = clamp(offset, limit, TOPIC_REPLIES)
    cond, params = visible(ctx)
    # Ranked and counted from the covering index posts_thread alone (uri, created_at and
    # whether the viewer sees it: no window function, no row of the table), in Python by
    # (created_at, uri) as code points, the order ``_positions`` and ``post_location``
    # use; then only the page's own rows are read (a reply's row carries its body twice,
    # as text and as HTML). Before, every reply's row was read and ranked twice a page.
    thread = ctx.session.query(
        f"SELECT p.uri, p.created_at, CASE WHEN {cond} THEN 1 ELSE 0 END FROM posts p"
        " WHERE p.thread_uri = ? AND p.kind = 'reply' AND p.state = 'ok'",
        [*params, row["uri"]],
    )
    ranked = sorted(thread, key=lambda r: (r[1] or "", r[0]))
    shown = [(uri, rank) for rank, (uri, _at, seen) in enumerate(ranked, 1) if seen]
    total = len(shown)
    positions = dict(shown[start : start + size])
    replies = sorted(
        ctx.session.query_dicts(
            f"SELECT p.* FROM posts p WHERE p.uri IN ({placeholders(len(positions))})",
            list(positions))
        if positions else [],
        key=lambda r: positions[r["uri"]],
    )
    head, *items = _posts(ctx, [row, *replies], positions)
    count, _last = _reply_stats(ctx, [row])[row["uri"]]
    return TopicPage(
        topic=head,
        locked=row["locked"] == 1,
        pinned=row["pinned"] == 1,
        reply_count=count,
        replies=Page(tuple(items), total, start, size),
    )


def post_location(ctx: Context, post_ref: str, limit: int | None = None) -> PostLocation | None:
    """The topic and page offset (for pages of ``limit`` replies) where a post the
    viewer may see is shown; None when the viewer may not see it or its topic."""
    _start, size = clamp(0, limit, TOPIC_REPLIES)
    row = _find(ctx, post_ref)
    if row is None:
        return None
    if row["kind"] == "topic":
        return PostLocation(row["id"], row["id"], 0, size)
    if _find(ctx, row["thread_uri"], " AND p.kind = 'topic'") is None:
        return None
    cond, params = visible(ctx)
    created = row["created_at"] or ""
    before = int(
        ctx.session.scalar(
            "SELECT COUNT(*) FROM posts p WHERE p.thread_uri = ? AND p.kind = 'reply'"
            f" AND {cond} AND (COALESCE(p.created_at, '') < ? OR"
            f" (COALESCE(p.created_at, '') = ? AND {ctx.text_order('p.uri')} < ?))",
            [row["thread_uri"], *params, created, created, row["uri"]],
        )
    )
    return PostLocation(post_id(row["thread_uri"]), row["id"], before // size * size, size)


def recent_topics(ctx: Context, did: str, limit: int = RECENT) -> list[TopicSummary]:
    """A member's newest publicly visible topics."""
    cond, params = public(ctx, "t")
    rows = ctx.session.query_dicts(
        f"SELECT t.* FROM posts t WHERE t.did = ? AND t.kind = 'topic' AND {cond}"
        f" ORDER BY t.created_at DESC, {ctx.text_order('t.uri')} DESC LIMIT ?",
        [did, *params, limit],
    )
    last_sql, last_params = _effective_last_reply(ctx)
    if ctx.banned and rows:
        uris = [r["uri"] for r in rows]
        effective: dict[str, str | None] = dict(
            ctx.session.query(
                f"SELECT t.uri, {last_sql} FROM posts t"
                " LEFT JOIN posts lr ON lr.uri = t.last_reply_uri"
                f" WHERE t.uri IN ({placeholders(len(uris))})",
                [*last_params, *uris],
            )
        )
        rows = [{**r, "eff_last_reply_at": effective.get(r["uri"])} for r in rows]
    return _summaries(ctx, rows)


def recent_posts(ctx: Context, did: str, limit: int = RECENT) -> list[Post]:
    """A member's newest publicly visible posts (topics and replies)."""
    cond, params = public(ctx)
    rows = ctx.session.query_dicts(
        f"SELECT p.* FROM posts p WHERE p.did = ? AND {cond}"
        f" ORDER BY p.created_at DESC, {ctx.text_order('p.uri')} DESC LIMIT ?",
        [did, *params, limit],
    )
    return _posts(ctx, rows)


def newest_topics(ctx: Context, limit: int = RECENT) -> list[TopicSummary]:
    """The forum's newest topics the viewer gets, in every board (the forum's feed)."""
    cond, params = visible(ctx, "t")
    rows = ctx.session.query_dicts(
        f"SELECT t.* FROM posts t WHERE t.kind = 'topic' AND t.deleted = 0 AND {cond}"
        f" ORDER BY COALESCE(t.created_at, '') DESC, {ctx.text_order('t.uri')} DESC LIMIT ?",
        [*params, limit],
    )
    return _summaries(ctx, rows)


def topic_titles(ctx: Context, topic_uris: Iterable[str]) -> dict[str, str]:
    """The titles of the topics the viewer gets among ``topic_uris`` (a member page names
    each recent reply's topic)."""
    wanted = sorted(set(topic_uris))
    cond, params = visible(ctx, "t")
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for uri, title in ctx.session.query(
                f"SELECT t.uri, t.title FROM posts t WHERE t.uri IN ({placeholders(len(chunk))})"
                f" AND t.kind = 'topic' AND t.deleted = 0 AND {cond}", [*chunk, *params]):
            if title:
                found[str(uri)] = str(title)
    return found


def last_replies(ctx: Context, topic_uris: Iterable[str]) -> dict[str, tuple[str, Author]]:
    """Per topic, the id and author of its newest reply the viewer gets (a board row's
    "last reply by ..." and its link); topics without one are absent."""
    cond, params = visible(ctx, "r")
    found: dict[str, tuple[str, str]] = {}
    for uri in sorted(set(topic_uris)):
        rows = ctx.session.query(
            "SELECT r.id, r.did FROM posts r WHERE r.thread_uri = ? AND r.kind = 'reply'"
            f" AND {cond} ORDER BY COALESCE(r.created_at, '') DESC,"
            f" {ctx.text_order('r.uri')} DESC LIMIT 1", [uri, *params])
        if rows:
            found[uri] = (str(rows[0][0]), str(rows[0][1]))
    handles = ctx.handles([did for _, did in found.values()])
    return {uri: (reply_id, Author(did, handles.get(did)))
            for uri, (reply_id, did) in found.items()}
