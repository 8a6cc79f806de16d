"""The notifications projection: who a post concerns.

It follows the forum projection (listed after it, so it applies each range of the log
once the forum projection has): for each post an event of the batch touched, it reads
the post's current version from the ``posts`` table and makes the post's rows those of
that version, so the table depends only on the posts as they are now (a deleted post, a
mention edited out: no row), the same however the log was built. A post notifies, once
per (recipient, post):

- the author of the post it replies to (``reply-post``), when that is not the topic;
- the author of the topic it replies in (``reply-topic``);
- the author of each post it quotes (``quote``: an ``at://…/space.atbb.post/…`` link in
  its text, the form a quote from the reply page takes);
- each ``@handle`` it mentions (``mention``: kept under ``@handle``, matched against the
  member's handle when read, so the order of identity events does not matter).

A recipient is told of a post once, by the first reason in that order; nobody is told
of their own posts. The rows say nothing of visibility: the queries
(``projections.queries_notifications``) show a notification only while its post is one
the recipient's pages would show (not hidden, not of a banned or suspended author, not
deleted). Rows depend only on the post events, so any order of batches builds the same
table, and a first batch (a rebuild's, or an appview's that has just gained the
projection) builds it from every post of ``posts`` at once (``seed``) instead of from
the log's events. Whether a notification was read is the appview's own data
(``appview.reader_state``), kept across rebuilds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from events import collections as c
from events.model import Logged, RecordEvent
from projections.db import Session
from projections.readmodel import AttachedToReadModels, ReadModels

QUOTED = re.compile(r"at://(did:[a-z0-9]+:[A-Za-z0-9._:%-]+)/space\.atbb\.post/[A-Za-z0-9._~:-]+")
# @handle: a domain name (two labels at least), not inside a word, a URL or an e-mail
MENTION = re.compile(r"(?<![\w@/.])@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                     r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)")
REASONS = ("reply-post", "reply-topic", "quote", "mention")
MAX_RECIPIENTS = 50  # per post: a post naming hundreds of members notifies the first 50
FORUM = "forum"  # the projection whose posts table this one reads


def _did_of(uri: Any) -> str | None:
    if isinstance(uri, str) and uri.startswith("at://did:"):
        return uri[5:].split("/", 1)[0]
    return None


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        uri = value.get("uri")
        return uri if isinstance(uri, str) else None
    return None


def recipients(author: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """(recipient, reason) of one post version: a DID, or ``@handle`` (lower case)."""
    found: dict[str, str] = {}

    def add(recipient: str | None, reason: str) -> None:
        if recipient and recipient != author and recipient not in found:
            found[recipient] = reason

    reply = record.get("reply")
    if isinstance(reply, dict):
        root, parent = _ref(reply.get("root")), _ref(reply.get("parent"))
        if parent != root:
            add(_did_of(parent), "reply-post")
        add(_did_of(root), "reply-topic")
    text = record.get("text")
    if isinstance(text, str):
        # most posts have neither: the look-behind that starts MENTION is tried at every
        # character (~15 µs a post; a rebuild's notifications were half regex)
        if "at://" in text:
            for match in QUOTED.finditer(text):
                add(match.group(1), "quote")
        if "@" in text:
            for match in MENTION.finditer(text):
                add("@" + match.group(1).lower(), "mention")
    return list(found.items())[:MAX_RECIPIENTS]


def touched_posts(batch: Sequence[Logged]) -> list[str]:
    """The post uris the batch's events touched."""
    return sorted({logged.event.uri for logged in batch
                   if isinstance(logged.event, RecordEvent)
                   and logged.event.collection == c.POST})


_POST_COLUMNS = ("uri", "did", "text", "root_uri", "parent_uri", "deleted")
"""What of a ``posts`` row decides its notifications (``_current_recipients``)."""
_SELECT_POSTS = f"SELECT {', '.join(_POST_COLUMNS)} FROM posts"


def _post_rows(session: Session, uris: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {str(row[0]): dict(zip(_POST_COLUMNS, row, strict=True))
            for row in session.query_in(f"{_SELECT_POSTS} WHERE uri {{in}}", uris)}


def _current_recipients(row: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The recipients of a post as the read models hold it now (none once deleted)."""
    if row is None or row["deleted"] == 1:
        return []
    record: dict[str, Any] = {"text": row["text"] or ""}
    if row["root_uri"]:
        record["reply"] = {"root": {"uri": row["root_uri"]},
                           "parent": {"uri": row["parent_uri"] or row["root_uri"]}}
    return recipients(row["did"], record)


class NotificationsProjection(AttachedToReadModels):
    """Folds the log's posts into ``notifications``. ``attach`` it to a store first."""

    NAME = "notifications"
    VERSION = 1
    skips_ahead = True
    """The runner reads on from the position it records, which may be past its batch
    (the first batch records the forum projection's: ``seed``)."""

    def __init__(self) -> None:
        self.name = self.NAME
        self.version = self.VERSION
        self._store: ReadModels | None = None

    def attach(self, store: ReadModels) -> None:
        self._store = store

    @staticmethod
    def _refresh(session: Session, uris: list[str]) -> None:
        """Make the rows of the touched posts those of their current version: a
        recipient it no longer names loses the row, a new one gets one, one it still
        names keeps its row."""
        rows = _post_rows(session, uris)
        wanted = {uri: dict(_current_recipients(rows.get(uri))) for uri in uris}
        held: dict[str, set[str]] = {uri: set() for uri in uris}
        for recipient, uri in session.query_in(
                "SELECT recipient, post_uri FROM notifications WHERE post_uri {in}", uris):
            held[uri].add(recipient)
        gone = [(uri, recipient) for uri in uris for recipient in held[uri]
                if recipient not in wanted[uri]]
        session.executemany("DELETE FROM notifications WHERE post_uri = ? AND recipient = ?",
                            gone)
        session.execute_values(
            "INSERT INTO notifications (recipient, post_uri, reason, author_did)"
            " VALUES {values} ON CONFLICT (recipient, post_uri) DO NOTHING",
            [(recipient, uri, reason, rows[uri]["did"])
             for uri in uris for recipient, reason in wanted[uri].items()
             if recipient not in held[uri]])

    def apply(self, batch: Sequence[Logged]) -> None:
        """The batch's notifications past the tracked position, and the position, in
        one transaction; a batch at or below the position changes nothing."""
        if not batch:
            return
        store = self.store
        with store.transaction() as session:
            start = store.position_in(session, self.name)
            # never past the forum projection: the posts must be there to be read
            ready = store.position_in(session, FORUM)
            fresh = [logged for logged in batch if start < logged.position <= ready]
            if not fresh:
                return
            if start == 0:
                # the rows depend only on the posts as they are now: every post at
                # once is what the events up to the forum projection's position would
                # have made one batch at a time, without reading those events
                seed(session)
                position = ready
            else:
                touched = touched_posts(fresh)
                if touched:
                    self._refresh(session, touched)
                position = fresh[-1].position
            store.set_version(session, self.name, self.version)
            store.track(session, self.name, position)


_SEED_PAGE = 5000


def seed(session: Session) -> None:
    """The notifications of every post of ``posts``, into an empty table, a page of
    posts at a time in uri order."""
    after = ""
    while True:
        rows = [dict(zip(_POST_COLUMNS, row, strict=True)) for row in session.query(
            f"{_SELECT_POSTS} WHERE uri > ? ORDER BY uri LIMIT {_SEED_PAGE}", (after,))]
        if not rows:
            return
        session.execute_values(
            "INSERT INTO notifications (recipient, post_uri, reason, author_did)"
            " VALUES {values} ON CONFLICT (recipient, post_uri) DO NOTHING",
            [(recipient, row["uri"], reason, row["did"])
             for row in rows for recipient, reason in _current_recipients(row)])
        after = str(rows[-1]["uri"])
