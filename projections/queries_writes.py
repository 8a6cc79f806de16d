"""What the writer's checks read (appview.writes.forum): a post with its thread's lock
and whether the viewer may see it, the ban in force on a member with its reason, a
member's membership and own reactions; and who reacted to posts, for the pages."""

from __future__ import annotations

from collections.abc import Iterable

from projections.db import placeholders
from projections.queries_common import Context, post_key
from projections.queries_posts import visible
from projections.views import Author, Ban, OwnReaction, PostTarget, Reactions


def post_target(ctx: Context, post_ref: str) -> PostTarget | None:
    """The post (by id or at-uri) in state ``ok``, whoever may see it; None when there
    is no such post (missing, pending, invalid, or its account removed)."""
    column, value = post_key(post_ref)
    cond, params = visible(ctx, "p")
    rows = ctx.session.query_dicts(
        "SELECT p.id, p.uri, p.cid, p.did, p.rkey, p.kind, p.thread_uri, p.board_uri,"
        f" p.deleted, p.hidden, t.locked AS thread_locked, CASE WHEN {cond} THEN 1 ELSE 0"
        " END AS shown FROM posts p LEFT JOIN posts t ON t.uri = COALESCE(p.thread_uri, p.uri)"
        f" WHERE p.{column} = ? AND p.state = 'ok'"
        f" ORDER BY {ctx.text_order('p.uri')} LIMIT 1",
        [*params, value],
    )
    if not rows:
        return None
    row = rows[0]
    return PostTarget(
        id=row["id"], uri=row["uri"], cid=row["cid"], did=row["did"], rkey=row["rkey"],
        kind=row["kind"] or "reply", thread_uri=row["thread_uri"] or row["uri"],
        board_uri=row["board_uri"], deleted=row["deleted"] == 1, hidden=row["hidden"] == 1,
        locked=row["thread_locked"] == 1, visible=row["shown"] == 1)


def ban(ctx: Context, did: str) -> Ban | None:
    """The ban on ``did`` in force at the context's ``now``, with its reason."""
    if not ctx.is_banned(did):
        return None
    row = ctx.session.query_one("SELECT reason, expires_at FROM bans WHERE did = ?", (did,))
    if row is None:
        return None
    return Ban(did, row[0], row[1])


def membership(ctx: Context, did: str) -> str | None:
    """The uri of ``did``'s live membership of this forum (the oldest), else None."""
    forum_uri = f"at://{ctx.forum_did}/space.atbb.forum.forum/self"
    row = ctx.session.query_one(
        "SELECT uri FROM memberships WHERE did = ? AND deleted = 0 AND forum_uri = ?"
        f" ORDER BY created_at, {ctx.text_order('uri')} LIMIT 1",
        (did, forum_uri),
    )
    return None if row is None else str(row[0])


def own_reactions(ctx: Context, did: str, post_uri: str) -> list[OwnReaction]:
    """``did``'s live reactions to the post, oldest first."""
    rows = ctx.session.query(
        "SELECT uri, rkey, reaction FROM reactions WHERE did = ? AND subject_uri = ?"
        f" AND deleted = 0 AND reaction IS NOT NULL ORDER BY {ctx.text_order('rkey')}",
        (did, post_uri),
    )
    return [OwnReaction(str(uri), str(rkey), str(reaction)) for uri, rkey, reaction in rows]


def reactions(ctx: Context, post_uris: Iterable[str]) -> dict[str, Reactions]:
    """Who reacted to each post how (posts without reactions are absent): live
    reactions of active accounts, one per (reactor, reaction), as the counts count."""
    wanted = sorted(set(post_uris))
    found: dict[str, dict[str, dict[str, str | None]]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = ctx.session.query(
            "SELECT DISTINCT r.subject_uri, r.reaction, r.did, m.handle FROM reactions r"
            " JOIN members m ON m.did = r.did"
            f" WHERE r.subject_uri IN ({placeholders(len(chunk))}) AND r.deleted = 0"
            " AND m.account_state = 'active' AND r.reaction IS NOT NULL",
            chunk,
        )
        for uri, reaction, did, handle in rows:
            found.setdefault(str(uri), {}).setdefault(str(reaction), {})[str(did)] = handle
    viewer = ctx.viewer.did
    out: dict[str, Reactions] = {}
    for uri, by_reaction in found.items():
        entries = tuple(
            (reaction, tuple(Author(did, handle) for did, handle in sorted(
                reactors.items(), key=lambda item: (item[1] or "~", item[0]))))
            for reaction, reactors in sorted(by_reaction.items()))
        mine = frozenset(r for r, reactors in by_reaction.items() if viewer in reactors)
        out[uri] = Reactions(uri, entries, mine)
    return out
