"""What a member may write, decided on the read models before anything is sent, and the
records built exactly as the original atBB writes them (``events.records``):

- **new topic**: the board must exist (404), the member not be banned (403 with the
  reason), their role grant ``createTopics`` (403);
- **reply** (and nested reply, and quote: a quote is a reply whose text quotes):
  the topic and the post answered must exist and be visible (404), the post answered
  be in that topic's thread (400), the topic not be locked unless the member moderates
  (403), the role grant ``createPosts``;
- **edit** / **delete** of one's own post (403 for another member's; an edit is a
  ``putRecord`` with ``updatedAt``, swapped on the CID the read models hold, so an edit
  made meanwhile elsewhere is a 409; earlier versions stay in the log);
- **react** / **unreact** (``react`` permission; one reaction of a kind per member
  and post: reacting again changes nothing);
- **join** (``space.atbb.membership``, once).

Then everything goes through the :class:`~appview.writes.writer.RecordWriter`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from appview.clock import Clock
from appview.writes.errors import BadWrite, Forbidden, ForumNotReady, NotFound
from appview.writes.writer import RecordWriter, RepoSession, Written
from events.collections import MEMBERSHIP, POST, REACTION
from events.log import EventLog
from events.model import RecordEvent
from events.records import (
    StrongRef,
    edited,
    membership_record,
    reaction_record,
    reply_record,
    topic_record,
)
from projections.queries import Queries
from projections.timestamps import parse_datetime
from projections.views import Forum, PostTarget, Viewer

T = TypeVar("T")


def record_time(micros: int) -> str:
    """RFC 3339 UTC with milliseconds, as AT Protocol records write datetimes."""
    moment = datetime.fromtimestamp(micros // 1000 / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{micros // 1000 % 1000:03d}Z"


def clean_text(text: str) -> str:
    """What a form or JSON body sent, as a post holds it: newlines as ``\\n``, no
    whitespace at either end (the original trims too)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _when(expires_at: str | None) -> str:
    if expires_at is None:
        return ""
    parsed = parse_datetime(expires_at) or expires_at
    return f" until {parsed[:16].replace('T', ' ')} UTC"


class ForumWrites:
    """The member-facing writes (module doc). One per process, built by bootstrap."""

    def __init__(self, writer: RecordWriter, queries: Queries, event_log: EventLog,
                 clock: Clock) -> None:
        self.writer = writer
        self._queries = queries
        self._log = event_log
        self._clock = clock

    # -- reading the read models -----------------------------------------------------

    @staticmethod
    async def _read(func: Callable[[], T]) -> T:
        return await asyncio.to_thread(func)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)

    async def viewer(self, did: str) -> Viewer:
        return await self._read(lambda: self._queries.viewer(did))

    async def _forum(self) -> tuple[Forum, StrongRef]:
        forum = await self._read(self._queries.forum)
        if forum is None or forum.cid is None:
            raise ForumNotReady("This forum is not set up yet (no forum record): nothing"
                                " can be posted to it.")
        return forum, StrongRef(forum.uri, forum.cid)

    async def _not_banned(self, did: str) -> None:
        now = self._now()
        found = await self._read(lambda: self._queries.ban(did, now=now))
        if found is not None:
            reason = f": {found.reason}" if found.reason else "."
            raise Forbidden(f"You are banned from this forum{_when(found.expires_at)}{reason}")

    @staticmethod
    def _grants(viewer: Viewer, permission: str) -> None:
        if not viewer.has(permission):
            raise Forbidden(f"Your role in this forum does not grant {permission}.")

    async def _target(self, post_ref: str, viewer: Viewer, what: str) -> PostTarget:
        now = self._now()
        target = await self._read(
            lambda: self._queries.post_target(post_ref, viewer=viewer, now=now))
        if target is None or not target.visible:
            raise NotFound(f"No such {what}.")
        if target.cid is None:
            raise NotFound(f"The {what} is not fully known here yet.")
        return target

    # -- topics and replies ----------------------------------------------------------

    async def new_topic(self, session: RepoSession, *, board: str, title: str,
                        text: str) -> Written:
        viewer = await self.viewer(session.did)
        _forum, forum_ref = await self._forum()
        now = self._now()
        found = await self._read(lambda: self._queries.board(board, viewer=viewer, now=now))
        if found is None or found.cid is None:
            raise NotFound("No such board.")
        await self._not_banned(session.did)
        self._grants(viewer, "createTopics")
        record = topic_record(clean_text(title), clean_text(text), forum=forum_ref,
                              board=StrongRef(found.uri, found.cid),
                              created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, POST, record)

    async def reply(self, session: RepoSession, *, root: str, parent: str | None,
                    text: str) -> Written:
        """A reply in ``root``'s thread to ``parent`` (the topic itself when None)."""
        viewer = await self.viewer(session.did)
        _forum, forum_ref = await self._forum()
        topic = await self._target(root, viewer, "topic")
        if topic.kind != "topic":
            raise BadWrite("rootPostId names a reply, not a topic.")
        if topic.deleted:
            raise NotFound("This topic was deleted by its author.")
        answered = topic
        if parent and parent not in (topic.id, topic.uri):
            answered = await self._target(parent, viewer, "post to reply to")
            if answered.thread_uri != topic.uri:
                raise BadWrite("The post answered (parentPostId) is in another thread.")
        await self._not_banned(session.did)
        if topic.locked and not viewer.is_moderator:
            raise Forbidden("This topic is locked: it accepts no new replies.")
        self._grants(viewer, "createPosts")
        assert topic.cid is not None and answered.cid is not None  # _target checked
        record = reply_record(clean_text(text), forum=forum_ref,
                              root=StrongRef(topic.uri, topic.cid),
                              parent=StrongRef(answered.uri, answered.cid),
                              created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, POST, record)

    async def _own(self, session: RepoSession, post_ref: str, viewer: Viewer,
                   verb: str) -> PostTarget:
        now = self._now()
        target = await self._read(
            lambda: self._queries.post_target(post_ref, viewer=viewer, now=now))
        if target is None or target.deleted or not (target.visible
                                                    or target.did == session.did):
            raise NotFound("No such post.")
        if target.did != session.did:
            raise Forbidden(f"Only its author may {verb} a post.")
        return target

    def _current_record(self, target: PostTarget) -> RecordEvent | None:
        """The version of the post the read models show, from the log."""
        versions = [logged.event for logged in self._log.history(target.uri)
                    if isinstance(logged.event, RecordEvent)
                    and logged.event.record is not None]
        exact = [event for event in versions if event.cid == target.cid]
        chosen = exact or versions
        return max(chosen, key=lambda event: event.version) if chosen else None

    async def edit_post(self, session: RepoSession, post: str, *, text: str,
                        title: str | None = None) -> Written:
        """A new version of one's own post: its text (and a topic's title), with
        ``updatedAt``; the rest of the record as it was."""
        viewer = await self.viewer(session.did)
        target = await self._own(session, post, viewer, "edit")
        if target.kind != "topic" and title:
            raise BadWrite("A reply has no title.")
        await self._not_banned(session.did)
        if target.locked and not viewer.is_moderator:
            raise Forbidden("This topic is locked: its posts can no longer be edited.")
        current = await self._read(lambda: self._current_record(target))
        if current is None or current.record is None:
            raise NotFound("No such post.")
        changes: dict[str, str] = {"text": clean_text(text),
                                   "updatedAt": record_time(self._clock.now_us())}
        if target.kind == "topic" and title is not None:
            changes["title"] = clean_text(title)
        return await self.writer.put(session, POST, target.rkey,
                                     edited(current.record, **changes),
                                     swap_record=target.cid)

    async def delete_post(self, session: RepoSession, post: str) -> Written:
        """Delete one's own post (banned or not, locked or not: it is the member's)."""
        viewer = await self.viewer(session.did)
        target = await self._own(session, post, viewer, "delete")
        return await self.writer.delete(session, POST, target.rkey)

    # -- reactions and membership ----------------------------------------------------

    async def react(self, session: RepoSession, post: str, reaction: str) -> Written | None:
        """Add the member's ``reaction``; None when they had reacted so already."""
        viewer = await self.viewer(session.did)
        target = await self._target(post, viewer, "post")
        if target.deleted:
            raise NotFound("This post was deleted by its author.")
        await self._not_banned(session.did)
        self._grants(viewer, "react")
        wanted = reaction.strip()
        mine = await self._read(lambda: self._queries.own_reactions(session.did, target.uri))
        if any(own.reaction == wanted for own in mine):
            return None
        assert target.cid is not None  # _target checked
        record = reaction_record(StrongRef(target.uri, target.cid), wanted,
                                 created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, REACTION, record)

    async def unreact(self, session: RepoSession, post: str, reaction: str) -> list[Written]:
        """Remove the member's ``reaction`` (every record of it) from the post."""
        viewer = await self.viewer(session.did)
        now = self._now()
        target = await self._read(
            lambda: self._queries.post_target(post, viewer=viewer, now=now))
        if target is None:
            raise NotFound("No such post.")
        wanted = reaction.strip()
        mine = await self._read(lambda: self._queries.own_reactions(session.did, target.uri))
        records = [own for own in mine if own.reaction == wanted]
        if not records:
            raise NotFound(f"You have not reacted {wanted!r} to this post.")
        return [await self.writer.delete(session, REACTION, own.rkey) for own in records]

    async def membership(self, did: str) -> str | None:
        """The uri of the member's membership of this forum, None before they join."""
        return await self._read(lambda: self._queries.membership(did))

    async def join(self, session: RepoSession) -> Written | None:
        """Write the member's ``space.atbb.membership``; None when they are a member
        already (the read models hold their membership)."""
        if await self.membership(session.did) is not None:
            return None
        _forum, forum_ref = await self._forum()
        record = membership_record(forum_ref, created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, MEMBERSHIP, record)
