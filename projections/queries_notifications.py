"""A member's notifications (``projections.notifications``), as that member may see
them now: only of posts their pages would show them (``queries_posts.visible``), not
deleted, newest first; one per post (a mention by handle and a reply by DID of the same
post are one notification, the earlier reason kept)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.ids import post_id
from projections.queries_common import Context
from projections.queries_posts import visible
from projections.views import Author

EXCERPT = 200


@dataclass(frozen=True, slots=True)
class Notification:
    # the post's time: what the read state compares with (``appview.reader_state``)
    created_at: str
    reason: str  # reply-post, reply-topic, quote, mention
    post_id: str
    post_uri: str
    author: Author
    topic_id: str
    topic_title: str | None
    excerpt: str


def _recipients(ctx: Context, did: str) -> list[str]:
    handle = ctx.handles([did]).get(did)
    return [did] if not handle else [did, "@" + handle.lower()]


def _where(ctx: Context, did: str) -> tuple[str, list[Any]]:
    wanted = _recipients(ctx, did)
    cond, params = visible(ctx)
    return (f"n.recipient IN ({', '.join('?' * len(wanted))}) AND p.deleted = 0"
            f" AND p.did <> ? AND {cond}", [*wanted, did, *params])


def notifications(ctx: Context, did: str, limit: int = 50) -> list[Notification]:
    """``did``'s newest ``limit`` notifications."""
    where, params = _where(ctx, did)
    rows = ctx.session.query_dicts(
        "SELECT n.reason, p.uri, p.id, p.did, p.text, COALESCE(p.created_at, '')"
        " AS created_at,"
        " p.thread_uri, t.title AS topic_title FROM notifications n"
        " JOIN posts p ON p.uri = n.post_uri LEFT JOIN posts t ON t.uri = p.thread_uri"
        f" WHERE {where} ORDER BY COALESCE(p.created_at, '') DESC,"
        f" {ctx.text_order('p.uri')} DESC LIMIT ?",
        [*params, limit * 2])
    handles = ctx.handles([row["did"] for row in rows])
    seen: set[str] = set()
    found = []
    for row in sorted(rows, key=lambda r: _rank(r["reason"])):
        if row["uri"] in seen:
            continue
        seen.add(row["uri"])
        text = " ".join((row["text"] or "").split())
        found.append(Notification(
            reason=row["reason"], post_id=row["id"],
            post_uri=row["uri"], author=Author(row["did"], handles.get(row["did"])),
            topic_id=post_id(row["thread_uri"] or row["uri"]),
            topic_title=row["topic_title"], created_at=str(row["created_at"]),
            excerpt=text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")))
    found.sort(key=lambda n: (n.created_at, n.post_uri), reverse=True)
    return found[:limit]


def _rank(reason: str) -> int:
    order = ("reply-post", "reply-topic", "quote", "mention")
    return order.index(reason) if reason in order else len(order)


def unread_count(ctx: Context, did: str, read_through: str) -> int:
    """How many of ``did``'s notifications (one per post) are of posts created after
    ``read_through``."""
    where, params = _where(ctx, did)
    return int(ctx.session.scalar(
        "SELECT COUNT(DISTINCT n.post_uri) FROM notifications n"
        f" JOIN posts p ON p.uri = n.post_uri WHERE {where}"
        " AND COALESCE(p.created_at, '') > ?",
        [*params, read_through]))
