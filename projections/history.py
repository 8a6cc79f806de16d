"""A post's edit history, from the event log: every version it keeps (ADR 0011), shown
to whoever may see the post.

The log holds every version of a record observed, oldest rev first (``history``); the
versions shown are those the ``forum`` projection took (none of its ``rejected`` rows),
with a record (a delete is not a version of the words). A post its author deleted has
no history to show: its words are gone from the page, and so from here.
"""

from __future__ import annotations

from events.log import EventLog
from events.model import RecordEvent
from projections.queries_common import Context
from projections.queries_posts import post
from projections.timestamps import normalize_datetime
from projections.views import PostHistory, PostVersion


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return normalize_datetime(text) or text


def post_history(ctx: Context, log: EventLog, post_ref: str) -> PostHistory | None:
    """The versions of a post (by id or at-uri) the viewer may see; None when the viewer
    may not see the post or its author deleted it."""
    shown = post(ctx, post_ref)
    if shown is None or shown.deleted_by_author:
        return None
    refused = {int(r[0]) for r in ctx.session.query(
        "SELECT position FROM rejected WHERE uri = ?", (shown.uri,))}
    versions: list[PostVersion] = []
    for logged in log.history(shown.uri):
        event = logged.event
        if (not isinstance(event, RecordEvent) or event.record is None
                or logged.position in refused):
            continue
        record = event.record
        versions.append(PostVersion(
            number=len(versions) + 1,
            rev=event.rev,
            cid=event.cid,
            title=_text(record.get("title")),
            text=_text(record.get("text")) or "",
            created_at=_time(record.get("createdAt")),
            updated_at=_time(record.get("updatedAt")),
            observed_at=event.observed_at,
        ))
    return PostHistory(shown, tuple(versions))
