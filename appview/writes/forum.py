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
from dataclasses import dataclass
from datetime import UTC, datetime

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
from projections import queries_members, queries_structure, queries_writes
from projections.queries import Queries
from projections.queries_common import Context
from projections.timestamps import parse_datetime
from projections.views import Ban, Board, Forum, OwnReaction, PostTarget, Viewer


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


@dataclass(frozen=True)
class Facts:
    """What the read models say about one write, read in one snapshot."""

    viewer: Viewer
    forum: Forum | None
    ban: Ban | None
    board: Board | None
    targets: tuple[PostTarget | None, ...]
    own_reactions: tuple[OwnReaction, ...]


class ForumWrites:
    """The member-facing writes (module doc). One per process, built by bootstrap."""

    def __init__(self, writer: RecordWriter, queries: Queries, event_log: EventLog,
                 clock: Clock) -> None:
        self.writer = writer
        self._queries = queries
        self._log = event_log
        self._clock = clock

    # -- reading the read models -----------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)

    def _read_facts(self, did: str, board: str | None, posts: tuple[str, ...],
                    reactions_of: int | None) -> Facts:
        with self._queries.snapshot(now=self._now()) as anonymous:
            viewer = queries_members.viewer(anonymous, did)
            ctx = Context(anonymous.session, anonymous.forum_did, viewer, anonymous.now,
                          anonymous.banned)
            targets = tuple(queries_writes.post_target(ctx, ref) for ref in posts)
            chosen = targets[reactions_of] if reactions_of is not None else None
            return Facts(
                viewer=viewer,
                forum=queries_structure.forum(ctx),
                ban=queries_writes.ban(ctx, did),
                board=None if board is None else queries_structure.board(ctx, board),
                targets=targets,
                own_reactions=tuple(queries_writes.own_reactions(ctx, did, chosen.uri))
                if chosen is not None else ())

    async def facts(self, did: str, *, board: str | None = None, posts: tuple[str, ...] = (),
                    reactions_of: int | None = None) -> Facts:
        """The viewer ``did`` is, the forum, the ban in force on it, the ``board``, the
        ``posts`` (None where unknown) and, with ``reactions_of`` (an index into
        ``posts``), the member's own reactions to that post: one snapshot, one thread."""
        return await asyncio.to_thread(self._read_facts, did, board, posts, reactions_of)

    async def viewer(self, did: str) -> Viewer:
        return (await self.facts(did)).viewer

    @staticmethod
    def _forum_ref(facts: Facts) -> StrongRef:
        forum = facts.forum
        if forum is None or forum.cid is None:
            raise ForumNotReady("This forum is not set up yet (no forum record): nothing"
                                " can be posted to it.")
        return StrongRef(forum.uri, forum.cid)

    @staticmethod
    def _not_banned(facts: Facts) -> None:
        found = facts.ban
        if found is not None:
            reason = f": {found.reason}" if found.reason else "."
            raise Forbidden(f"You are banned from this forum{_when(found.expires_at)}{reason}")

    @staticmethod
    def _grants(viewer: Viewer, permission: str) -> None:
        if not viewer.has(permission):
            raise Forbidden(f"Your role in this forum does not grant {permission}.")

    @staticmethod
    def _visible(target: PostTarget | None, what: str) -> PostTarget:
        if target is None or not target.visible:
            raise NotFound(f"No such {what}.")
        if target.cid is None:
            raise NotFound(f"The {what} is not fully known here yet.")
        return target

    # -- topics and replies ----------------------------------------------------------

    async def new_topic(self, session: RepoSession, *, board: str, title: str,
                        text: str) -> Written:
        facts = await self.facts(session.did, board=board)
        forum_ref = self._forum_ref(facts)
        found = facts.board
        if found is None or found.cid is None:
            raise NotFound("No such board.")
        self._not_banned(facts)
        self._grants(facts.viewer, "createTopics")
        record = topic_record(clean_text(title), clean_text(text), forum=forum_ref,
                              board=StrongRef(found.uri, found.cid),
                              created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, POST, record)

    async def reply(self, session: RepoSession, *, root: str, parent: str | None,
                    text: str) -> Written:
        """A reply in ``root``'s thread to ``parent`` (the topic itself when None)."""
        facts = await self.facts(session.did, posts=(root, parent or root))
        viewer = facts.viewer
        forum_ref = self._forum_ref(facts)
        topic = self._visible(facts.targets[0], "topic")
        if topic.kind != "topic":
            raise BadWrite("rootPostId names a reply, not a topic.")
        if topic.deleted:
            raise NotFound("This topic was deleted by its author.")
        answered = self._visible(facts.targets[1], "post to reply to")
        if answered.thread_uri != topic.uri:
            raise BadWrite("The post answered (parentPostId) is in another thread.")
        self._not_banned(facts)
        if topic.locked and not viewer.is_moderator:
            raise Forbidden("This topic is locked: it accepts no new replies.")
        self._grants(viewer, "createPosts")
        assert topic.cid is not None and answered.cid is not None  # _target checked
        record = reply_record(clean_text(text), forum=forum_ref,
                              root=StrongRef(topic.uri, topic.cid),
                              parent=StrongRef(answered.uri, answered.cid),
                              created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, POST, record)

    @staticmethod
    def _own(session: RepoSession, target: PostTarget | None, verb: str) -> PostTarget:
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
        facts = await self.facts(session.did, posts=(post,))
        target = self._own(session, facts.targets[0], "edit")
        if target.kind != "topic" and title:
            raise BadWrite("A reply has no title.")
        self._not_banned(facts)
        if target.locked and not facts.viewer.is_moderator:
            raise Forbidden("This topic is locked: its posts can no longer be edited.")
        current = await asyncio.to_thread(self._current_record, target)
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
        facts = await self.facts(session.did, posts=(post,))
        target = self._own(session, facts.targets[0], "delete")
        return await self.writer.delete(session, POST, target.rkey)

    # -- reactions and membership ----------------------------------------------------

    async def react(self, session: RepoSession, post: str, reaction: str) -> Written | None:
        """Add the member's ``reaction``; None when they had reacted so already."""
        facts = await self.facts(session.did, posts=(post,), reactions_of=0)
        target = self._visible(facts.targets[0], "post")
        if target.deleted:
            raise NotFound("This post was deleted by its author.")
        self._not_banned(facts)
        self._grants(facts.viewer, "react")
        wanted = reaction.strip()
        if any(own.reaction == wanted for own in facts.own_reactions):
            return None
        assert target.cid is not None  # _target checked
        record = reaction_record(StrongRef(target.uri, target.cid), wanted,
                                 created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, REACTION, record)

    async def unreact(self, session: RepoSession, post: str, reaction: str) -> list[Written]:
        """Remove the member's ``reaction`` (every record of it) from the post."""
        facts = await self.facts(session.did, posts=(post,), reactions_of=0)
        if facts.targets[0] is None:
            raise NotFound("No such post.")
        wanted = reaction.strip()
        records = [own for own in facts.own_reactions if own.reaction == wanted]
        if not records:
            raise NotFound(f"You have not reacted {wanted!r} to this post.")
        return [await self.writer.delete(session, REACTION, own.rkey) for own in records]

    async def membership(self, did: str) -> str | None:
        """The uri of the member's membership of this forum, None before they join."""
        return await asyncio.to_thread(self._queries.membership, did)

    async def join(self, session: RepoSession) -> Written | None:
        """Write the member's ``space.atbb.membership``; None when they are a member
        already (the read models hold their membership)."""
        if await self.membership(session.did) is not None:
            return None
        forum_ref = self._forum_ref(await self.facts(session.did))
        record = membership_record(forum_ref, created_at=record_time(self._clock.now_us()))
        return await self.writer.create(session, MEMBERSHIP, record)
