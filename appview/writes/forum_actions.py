"""The forum's decisions, taken for a member (or an admin token) whose role grants them,
and written by the Forum account's agent to the Forum account's repo through the
:class:`~appview.writes.writer.RecordWriter` (logged at once, read-your-writes).

Moderation actions (``space.atbb.modAction``), each checked on the read models in
one snapshot, in the original's order:

1. the actor's role grants the permission (``banUsers`` for ban/unban,
   ``lockTopics`` for lock/unlock, ``pinTopics`` for pin/unpin, ``moderatePosts`` for
   hide/unhide, which the records call ``delete``/``undelete``) → else 403;
2. the subject exists: a DID the forum knows, a topic (lock and pin take topics only:
   a reply is a 400), any post → else 404;
3. the **priority rule**: nobody acts on someone of equal or higher authority (the
   role's priority, lower is more; the Forum account is above every role; a DID without
   a role is below every role). A moderator may lock, pin or hide their own posts; no
   one bans or unbans themselves → else 403;
4. an action already in force (a ban in force with the same end, a locked topic
   locked again, ...) writes nothing: ``already_active``;
5. the record, with ``createdBy`` = the actor, goes through the agent's session
   (500 without an agent, 503 while it is not signed in).

Nothing is written when any step refuses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from appview.clock import Clock
from appview.writes.errors import BadWrite, Forbidden, NotFound
from appview.writes.forum import record_time
from appview.writes.forum_agent import ForumAgent
from appview.writes.writer import RecordWriter, Written
from events.collections import MOD_ACTION
from events.records import StrongRef, mod_action_record
from projections import queries_members, queries_moderation, queries_writes
from projections.queries import Queries
from projections.queries_common import Context
from projections.timestamps import normalize_datetime
from projections.views import MemberPermissions, ModSubject, Viewer

ACTION_PREFIX: Final = "space.atbb.modAction."
REASON_MAX: Final = 3000
# Below every role: a DID that holds none (priorities are small integers).
NO_AUTHORITY: Final = 1 << 62


@dataclass(frozen=True, slots=True)
class ActionKind:
    """One moderation action: its record name, the permission, what it acts on
    (``user``, ``topic`` or ``post``), whether it puts something in force (ban, lock,
    pin, delete) or lifts it."""

    name: str
    permission: str
    subject: str
    puts: bool


ACTIONS: Final[dict[str, ActionKind]] = {
    kind.name: kind for kind in (
        ActionKind("ban", "banUsers", "user", True),
        ActionKind("unban", "banUsers", "user", False),
        ActionKind("lock", "lockTopics", "topic", True),
        ActionKind("unlock", "lockTopics", "topic", False),
        ActionKind("pin", "pinTopics", "topic", True),
        ActionKind("unpin", "pinTopics", "topic", False),
        ActionKind("delete", "moderatePosts", "post", True),
        ActionKind("undelete", "moderatePosts", "post", False),
    )
}


def rank(authority: int | None) -> int:
    """A comparable authority (lower is more): no role at all is below every role."""
    return NO_AUTHORITY if authority is None else authority


def may_act_on(actor: MemberPermissions, target: MemberPermissions, kind: ActionKind) -> bool:
    """The priority rule: strictly more authority than the target's; on one's own posts
    (not on oneself as a user) the permission alone suffices."""
    if actor.did == target.did:
        return kind.subject != "user"
    return rank(actor.authority) < rank(target.authority)


@dataclass(frozen=True, slots=True)
class ModFacts:
    """What one action is decided on, read in one snapshot."""

    actor: MemberPermissions
    target: MemberPermissions | None
    post: ModSubject | None
    known: bool
    ban_expires: tuple[bool, str | None]  # (a ban in force, its end)


@dataclass(frozen=True, slots=True)
class ModOutcome:
    """A decision taken: ``written`` is None when it was already in force."""

    kind: ActionKind
    subject_did: str | None
    post: ModSubject | None
    written: Written | None

    @property
    def action(self) -> str:
        return ACTION_PREFIX + self.kind.name

    @property
    def already_active(self) -> bool:
        return self.written is None


def clean_reason(reason: str) -> str:
    """The reason as stored: trimmed; 1 to 3000 characters (else ``BadWrite``)."""
    text = reason.replace("\r\n", "\n").strip()
    if not text:
        raise BadWrite("reason is required: say why (1 to 3000 characters).")
    if len(text) > REASON_MAX:
        raise BadWrite(f"reason is {len(text)} characters long; at most {REASON_MAX}.")
    return text


class ForumActions:
    """Moderation for a member (module doc). One per process, built by bootstrap."""

    def __init__(self, writer: RecordWriter, queries: Queries, agent: ForumAgent,
                 clock: Clock) -> None:
        self.writer = writer
        self._queries = queries
        self.agent = agent
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)

    def _read(self, actor: str, kind: ActionKind, subject: str) -> ModFacts:
        with self._queries.snapshot(now=self._now()) as anonymous:
            ctx = Context(anonymous.session, anonymous.forum_did, Viewer(actor, frozenset({"*"})),
                          anonymous.now, anonymous.banned)
            mine = queries_members.member_permissions(ctx, actor)
            if kind.subject == "user":
                found = queries_writes.ban(ctx, subject)
                return ModFacts(mine, queries_members.member_permissions(ctx, subject), None,
                                queries_moderation.known(ctx, subject),
                                (found is not None, None if found is None else found.expires_at))
            post = queries_moderation.subject(ctx, subject)
            target = None if post is None else queries_members.member_permissions(ctx, post.did)
            return ModFacts(mine, target, post, post is not None, (False, None))

    async def moderate(self, actor: str, action: str, subject: str, reason: str, *,
                       expires_at: str | None = None) -> ModOutcome:
        """Take ``action`` (a name of ``ACTIONS``) on ``subject`` (a DID for ban/unban,
        a post id or at-uri otherwise) for ``actor``; ``expires_at`` (RFC 3339, in the
        future) ends a ban by itself."""
        kind = ACTIONS.get(action)
        if kind is None:
            raise BadWrite(f"Unknown moderation action {action!r}.")
        facts = await asyncio.to_thread(self._read, actor, kind, subject)
        if not Viewer(actor, facts.actor.permissions).has(kind.permission):
            raise Forbidden(f"Your role in this forum does not grant {kind.permission}.")
        text = clean_reason(reason)
        until = self._until(kind, expires_at)
        if not facts.known or facts.target is None:
            raise NotFound("No such member." if kind.subject == "user" else "No such post.")
        post = facts.post
        if kind.subject == "topic" and post is not None and post.kind != "topic":
            raise BadWrite(f"Only a topic can be {kind.name}ed: this post is a reply"
                           f" (its topic is {post.thread_id}).")
        if not may_act_on(facts.actor, facts.target, kind):
            who = "yourself" if facts.actor.did == facts.target.did else \
                "a member of equal or higher authority than yours"
            raise Forbidden(f"You cannot {kind.name} {who}.")
        if self._in_force(kind, facts, until):
            return ModOutcome(kind, subject if post is None else None, post, None)
        session = self.agent.session()
        subject_post = None
        if post is not None:
            if post.cid is None:
                raise NotFound("The post is not fully known here yet.")
            subject_post = StrongRef(post.uri, post.cid)
        record = mod_action_record(
            ACTION_PREFIX + kind.name, subject_did=subject if post is None else None,
            subject_post=subject_post, reason=text, created_by=actor,
            created_at=record_time(self._clock.now_us()), expires_at=until)
        written = await self.writer.create(session, MOD_ACTION, record, actor=actor)
        return ModOutcome(kind, subject if post is None else None, post, written)

    def _until(self, kind: ActionKind, expires_at: str | None) -> str | None:
        if expires_at is None:
            return None
        if kind.name != "ban":
            raise BadWrite("expiresAt is for bans only.")
        stored = normalize_datetime(expires_at)
        if stored is None:
            raise BadWrite("expiresAt must be an RFC 3339 datetime with a time zone"
                           " (2027-01-31T12:00:00Z).")
        micros = int(datetime.fromisoformat(stored.replace("Z", "+00:00")).timestamp() * 1e6)
        if micros <= self._clock.now_us():
            raise BadWrite("expiresAt is in the past: a ban must end in the future.")
        return record_time(micros)

    @staticmethod
    def _in_force(kind: ActionKind, facts: ModFacts, until: str | None) -> bool:
        if kind.subject == "user":
            banned, ends = facts.ban_expires
            if not kind.puts:
                return not banned
            return banned and ends == (None if until is None else normalize_datetime(until))
        post = facts.post
        assert post is not None
        state = {"lock": post.locked, "unlock": post.locked, "pin": post.pinned,
                 "unpin": post.pinned, "delete": post.hidden, "undelete": post.hidden}
        return state[kind.name] == kind.puts
