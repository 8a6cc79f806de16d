"""A deliberately simple model of the read-model rules, recomputed from scratch.

It takes the events (in any order, duplicates included), keeps per record the newest
valid version and the newest live version, and answers the questions the queries answer
by plain loops over everything, with no materialised counts, no incremental state and no
SQL. The property tests compare the real read models against it.

The rules are those of ``docs/data-model.md`` (and ``projections/schema.py``):
post states (pending / invalid / removed / ok), the three separate hide reasons plus
account suspension, "latest action per subject" by greatest rkey, bans in force while
``expiresAt > now``, counts of publicly visible posts only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.lexicon import LexiconValidator, is_superseded
from events.model import (
    AccountStatusChanged,
    IdentityChanged,
    LogEvent,
    Logged,
    RecordEvent,
    at_uri,
    tid_to_int,
)
from projections.timestamps import format_datetime, from_unix_micros, normalize_datetime

POST = "space.atbb.post"
BOARD = "space.atbb.forum.board"
CATEGORY = "space.atbb.forum.category"
ROLE = "space.atbb.forum.role"
ROLE_ASSIGNMENT = "space.atbb.forum.roleAssignment"
MOD_ACTION = "space.atbb.modAction"
MEMBERSHIP = "space.atbb.membership"
REACTION = "space.atbb.reaction"
FORUM = "space.atbb.forum.forum"
THEME_POLICY = "space.atbb.forum.themePolicy"
_FAMILIES = {
    "ban": "ban",
    "unban": "ban",
    "lock": "lock",
    "unlock": "lock",
    "pin": "pin",
    "unpin": "pin",
    "delete": "hide",
    "undelete": "hide",
}
_IN_FORCE = frozenset({"ban", "lock", "pin", "delete"})
_LAST = "\U0010ffff"


@dataclass
class Rec:
    """One at-uri: the newest valid event's rev and whether it deletes, and the newest
    valid non-delete version (the fields a tombstone keeps its structure from)."""

    uri: str
    did: str
    collection: str
    rkey: str
    rev: str = ""
    deleted: bool = False
    live_rev: str = ""
    record: dict[str, Any] | None = None
    cid: str | None = None

    @property
    def live(self) -> dict[str, Any] | None:
        return None if self.deleted else self.record


def _ref_uri(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("uri"), str):
        return str(value["uri"])
    return None


def _field_uri(record: dict[str, Any] | None, field: str) -> str | None:
    """The uri a forum, board or category reference names, bare or wrapped as the
    original atBB writes it (``{field: {uri, cid}}``); written out here again, apart
    from ``events.records``, so the model does not share the code it checks."""
    value = (record or {}).get(field)
    if isinstance(value, dict) and isinstance(value.get(field), dict) and (
        value.get("$type") != "com.atproto.repo.strongRef"
    ):
        value = value[field]
    return _ref_uri(value)


def _well_formed(event: RecordEvent) -> bool:
    """Whether a live record can take part at all: a topic needs a board and a title, a
    reply its root and parent (the projection rejects the rest, like invalid ones)."""
    record = event.record
    if not isinstance(record, dict):
        return False
    if event.collection != POST:
        return True
    reply = record.get("reply")
    if reply is None:
        title = record.get("title")
        board = _field_uri(record, "board")
        return bool(board and board.startswith("at://")) and isinstance(title, str) and \
            bool(title)
    return (
        isinstance(reply, dict)
        and bool(_at_uri(reply.get("root")))
        and bool(_at_uri(reply.get("parent")))
    )


def _at_uri(value: Any) -> str | None:
    uri = _ref_uri(value)
    return uri if uri is not None and uri.startswith("at://") else None


def is_forum_owned(collection: str) -> bool:
    return collection.startswith("space.atbb.forum.") or collection == MOD_ACTION


class ReferenceModel:
    def __init__(self, events: Iterable[Logged | LogEvent], forum_did: str) -> None:
        self.forum_did = forum_did
        self.forum_uri = at_uri(forum_did, FORUM, "self")
        self.records: dict[str, Rec] = {}
        self.handles: dict[str, tuple[int, str | None]] = {}
        self.accounts: dict[str, tuple[int, bool, str | None]] = {}
        # verdicts are the validator's to give: the model takes a superseded one again
        # as the projection does (ADR 0012), and folds whatever the answer is
        self._validator = LexiconValidator.load()
        for item in events:
            self._fold(item.event if isinstance(item, Logged) else item)

    # --- folding -------------------------------------------------------------------------

    def _fold(self, event: LogEvent) -> None:
        if isinstance(event, IdentityChanged):
            if event.did not in self.handles or event.seq > self.handles[event.did][0]:
                self.handles[event.did] = (event.seq, event.handle)
            return
        if isinstance(event, AccountStatusChanged):
            if event.did not in self.accounts or event.seq > self.accounts[event.did][0]:
                self.accounts[event.did] = (event.seq, event.active, event.status)
            return
        assert isinstance(event, RecordEvent)
        if not event.valid and not (
            is_superseded(event.reason)
            and self._validator.reconsider(event, forum_did=self.forum_did).valid
        ):
            return
        if is_forum_owned(event.collection) and event.did != self.forum_did:
            return
        if event.collection in (FORUM, THEME_POLICY) and event.rkey != "self":
            return
        if event.operation != "delete" and not _well_formed(event):
            return
        rec = self.records.setdefault(
            event.uri, Rec(event.uri, event.did, event.collection, event.rkey)
        )
        if event.rev > rec.rev:
            rec.rev, rec.deleted = event.rev, event.operation == "delete"
        if event.operation != "delete" and event.record is not None and event.rev > rec.live_rev:
            rec.live_rev, rec.record, rec.cid = event.rev, event.record, event.cid

    # --- records -----------------------------------------------------------------------

    def live(self, collection: str) -> list[Rec]:
        return sorted(
            (r for r in self.records.values() if r.collection == collection and r.live),
            key=lambda r: r.uri,
        )

    def account_state(self, did: str) -> str:
        seen = self.accounts.get(did)
        if seen is None or seen[1]:
            return "active"
        if seen[2] == "deleted":
            return "removed"
        if seen[2] in (None, "takendown", "suspended", "deactivated"):
            return "suspended"
        return "active"

    def handle(self, did: str) -> str | None:
        seen = self.handles.get(did)
        return None if seen is None else seen[1]

    # --- moderation ----------------------------------------------------------------------

    def latest_action(self, family: str, subject: str) -> dict[str, Any] | None:
        """The live modAction of ``family`` on ``subject`` (a DID or a post uri) with the
        greatest rkey."""
        best: tuple[str, dict[str, Any]] | None = None
        for rec in self.live(MOD_ACTION):
            record = rec.record or {}
            action = str(record.get("action", "")).rsplit(".", 1)[-1]
            if _FAMILIES.get(action) != family:
                continue
            subj = record.get("subject")
            if not isinstance(subj, dict):
                continue
            target = subj.get("did") if family == "ban" else _ref_uri(subj.get("post"))
            if target == subject and (best is None or rec.rkey > best[0]):
                best = (rec.rkey, record)
        return None if best is None else best[1]

    def in_force(self, family: str, subject: str) -> bool:
        latest = self.latest_action(family, subject)
        if latest is None:
            return False
        return str(latest.get("action", "")).rsplit(".", 1)[-1] in _IN_FORCE

    def banned(self, did: str, now: datetime) -> bool:
        latest = self.latest_action("ban", did)
        if latest is None or not self.in_force("ban", did):
            return False
        expires = normalize_datetime(latest.get("expiresAt"))
        return expires is None or expires > format_datetime(now)

    # --- posts ---------------------------------------------------------------------------

    def post(self, uri: str) -> Rec | None:
        rec = self.records.get(uri)
        if rec is None or rec.collection != POST:
            return None
        if self.account_state(rec.did) == "removed":
            return None
        return rec

    def kind(self, rec: Rec) -> str | None:
        if rec.record is None:
            return None
        return "reply" if "reply" in rec.record else "topic"

    def root_of(self, rec: Rec) -> str | None:
        reply = (rec.record or {}).get("reply") or {}
        return _ref_uri(reply.get("root"))

    def parent_of(self, rec: Rec) -> str | None:
        reply = (rec.record or {}).get("reply") or {}
        return _ref_uri(reply.get("parent"))

    def topic_state(self, rec: Rec) -> str:
        record = rec.record or {}
        if not _field_uri(record, "board") or not record.get("title"):
            return "invalid"
        board = self.records.get(_field_uri(record, "board") or "")
        if board is None or board.collection != BOARD or board.live is None:
            return "pending"
        return "ok"

    def state(self, uri: str) -> str:
        rec = self.post(uri)
        if rec is None:
            return "removed" if uri in self.records else "missing"
        kind = self.kind(rec)
        if kind is None:
            return "pending"
        if kind == "topic":
            return self.topic_state(rec)
        root_uri, parent_uri = self.root_of(rec), self.parent_of(rec)
        root = self.post(root_uri or "")
        if root is None or self.kind(root) is None:
            return "pending"
        if self.kind(root) == "reply":
            return "invalid"
        if self.topic_state(root) == "pending":
            return "pending"
        parent = self.post(parent_uri or "")
        parent_kind = None if parent is None else self.kind(parent)
        if parent_kind == "topic" and parent_uri != root_uri:
            return "invalid"
        if parent_kind == "reply" and parent is not None and self.root_of(parent) != root_uri:
            return "invalid"
        # A parent known only as a tombstone without structure does not hold a reply
        # back: it attaches to its root.
        if parent is None:
            return "pending"
        return "ok"

    def board_of(self, uri: str) -> str | None:
        rec = self.post(uri)
        if rec is None:
            return None
        if self.kind(rec) == "topic":
            return _field_uri(rec.record, "board")
        root = self.post(self.root_of(rec) or "")
        return None if root is None else _field_uri(root.record, "board")

    def thread_of(self, uri: str) -> str | None:
        rec = self.post(uri)
        if rec is None:
            return None
        return uri if self.kind(rec) == "topic" else self.root_of(rec)

    def created_at(self, uri: str) -> str:
        """createdAt in the stored form; without a usable one, the time its TID rkey
        encodes (the epoch for other keys), so it depends on the uri alone."""
        rec = self.records[uri]
        given = normalize_datetime((rec.record or {}).get("createdAt"))
        if given is not None:
            return given
        try:
            return from_unix_micros(tid_to_int(rec.rkey) >> 10)
        except ValueError:
            return from_unix_micros(0)

    def hidden(self, uri: str) -> bool:
        return self.in_force("hide", uri)

    def suspended(self, uri: str) -> bool:
        return self.account_state(self.records[uri].did) == "suspended"

    def counted(self, uri: str) -> bool:
        rec = self.post(uri)
        return (
            rec is not None
            and self.state(uri) == "ok"
            and not rec.deleted
            and not self.hidden(uri)
            and not self.suspended(uri)
        )

    def public(self, uri: str, now: datetime) -> bool:
        """Publicly visible as of ``now``: what counts and what a non-moderator gets."""
        return self.counted(uri) and not self.banned(self.records[uri].did, now)

    def ok_posts(self) -> list[str]:
        return [
            r.uri
            for r in self.records.values()
            if r.collection == POST and self.state(r.uri) == "ok"
        ]

    def visible_to(self, uri: str, moderator: bool, now: datetime) -> bool:
        """Whether a post appears in a viewer's lists: every existing post for a
        moderator; for anyone else, posts not hidden, not of a suspended account and not
        by an author banned now (an author's tombstone stays, as a placeholder)."""
        if self.state(uri) != "ok":
            return False
        if moderator:
            return True
        did = self.records[uri].did
        return not (self.hidden(uri) or self.suspended(uri) or self.banned(did, now))

    # --- structure -----------------------------------------------------------------------

    def listed_boards(self) -> list[Rec]:
        categories = {r.uri for r in self.live(CATEGORY)}
        return [
            r for r in self.live(BOARD) if _field_uri(r.record, "category") in categories
        ]

    @staticmethod
    def structure_key(rec: Rec) -> tuple[int, str, str]:
        record = rec.record or {}
        order = record.get("sortOrder")
        return (order if isinstance(order, int) else 0, str(record.get("name", "")), rec.uri)

    def category_order(self) -> list[str]:
        return [r.uri for r in sorted(self.live(CATEGORY), key=self.structure_key)]

    def board_order(self, category_uri: str) -> list[str]:
        boards = [
            r
            for r in self.listed_boards()
            if _field_uri(r.record, "category") == category_uri
        ]
        return [r.uri for r in sorted(boards, key=self.structure_key)]

    def board_counts(self, board_uri: str, now: datetime) -> tuple[int, int, str | None]:
        """(topicCount, postCount, last post uri) of publicly visible posts."""
        public = [
            u for u in self.ok_posts() if self.board_of(u) == board_uri and self.public(u, now)
        ]
        topics = [u for u in public if self.kind(self.records[u]) == "topic"]
        last = max(public, key=lambda u: (self.created_at(u), u), default=None)
        return len(topics), len(public), last

    # --- topics --------------------------------------------------------------------------

    def replies_of(self, topic_uri: str) -> list[str]:
        """Every existing reply of the thread, in thread order."""
        replies = [
            u
            for u in self.ok_posts()
            if self.kind(self.records[u]) == "reply" and self.root_of(self.records[u]) == topic_uri
        ]
        return sorted(replies, key=lambda u: (self.created_at(u), u))

    def reply_stats(self, topic_uri: str, now: datetime) -> tuple[int, str | None]:
        public = [u for u in self.replies_of(topic_uri) if self.public(u, now)]
        last = max((self.created_at(u) for u in public), default=None)
        return len(public), last

    def last_activity(self, topic_uri: str, now: datetime) -> str:
        _count, last = self.reply_stats(topic_uri, now)
        created = self.created_at(topic_uri)
        return max(created, last) if last else created

    def locked(self, topic_uri: str) -> bool:
        return self.in_force("lock", topic_uri)

    def pinned(self, topic_uri: str) -> bool:
        return self.in_force("pin", topic_uri)

    def board_topics(self, board_uri: str, moderator: bool, now: datetime) -> list[str]:
        """The board's topics a viewer gets (see ``visible_to``): pinned first, then
        last activity (newest first), then uri."""
        topics = [
            u
            for u in self.ok_posts()
            if self.kind(self.records[u]) == "topic"
            and self.board_of(u) == board_uri
            and self.visible_to(u, moderator, now)
        ]
        by_uri = sorted(topics)
        by_activity = sorted(by_uri, key=lambda u: self.last_activity(u, now), reverse=True)
        return sorted(by_activity, key=lambda u: not self.pinned(u))

    def topic_replies(self, topic_uri: str, moderator: bool, now: datetime) -> list[str]:
        return [u for u in self.replies_of(topic_uri) if self.visible_to(u, moderator, now)]

    def position(self, reply_uri: str) -> int:
        thread = self.thread_of(reply_uri)
        return self.replies_of(thread or "").index(reply_uri) + 1

    def topic_visible(self, topic_uri: str, moderator: bool, now: datetime) -> bool:
        if self.state(topic_uri) != "ok" or self.kind(self.records[topic_uri]) != "topic":
            return False
        return self.visible_to(topic_uri, moderator, now)

    # --- members and roles ---------------------------------------------------------------

    def memberships(self, did: str) -> list[Rec]:
        return [
            r
            for r in self.live(MEMBERSHIP)
            if r.did == did and _field_uri(r.record, "forum") == self.forum_uri
        ]

    def counted_posts(self, did: str) -> list[str]:
        return [u for u in self.ok_posts() if self.records[u].did == did and self.counted(u)]

    def member_dids(self) -> list[str]:
        dids = {r.did for r in self.records.values()}
        return sorted(
            d
            for d in dids
            if self.account_state(d) != "removed" and (self.memberships(d) or self.counted_posts(d))
        )

    def joined_at(self, did: str) -> str | None:
        joined = sorted(
            (normalize_datetime((r.record or {}).get("createdAt")) or "", r.uri)
            for r in self.memberships(did)
        )
        if joined:
            return joined[0][0] or None
        firsts = sorted(self.created_at(u) for u in self.counted_posts(did))
        return firsts[0] if firsts else None

    def post_count(self, did: str, now: datetime) -> int:
        if self.banned(did, now):
            return 0
        return len(self.counted_posts(did))

    def members_order(self) -> list[str]:
        return sorted(self.member_dids(), key=lambda d: (self.joined_at(d) or _LAST, d))

    def default_role(self) -> Rec | None:
        named = [
            r for r in self.live(ROLE) if str((r.record or {}).get("name", "")).lower() == "member"
        ]
        return min(named, key=lambda r: r.rkey, default=None)

    def role_of(self, did: str) -> Rec | None:
        assignment = self.records.get(at_uri(self.forum_did, ROLE_ASSIGNMENT, did))
        if assignment is not None and assignment.live is not None:
            role = self.records.get(_ref_uri(assignment.live.get("role")) or "")
            if role is not None and role.collection == ROLE and role.live is not None:
                return role
        return self.default_role()

    def permissions(self, did: str) -> tuple[frozenset[str], int | None]:
        if did == self.forum_did:
            return frozenset({"*"}), -1
        role = self.role_of(did)
        if role is None:
            return frozenset(), None
        record = role.record or {}
        perms = record.get("permissions") or []
        priority = record.get("priority")
        return frozenset(str(p) for p in perms), priority if isinstance(priority, int) else None

    def modlog_order(self) -> list[str]:
        return [r.uri for r in sorted(self.live(MOD_ACTION), key=lambda r: r.rkey, reverse=True)]

    # --- reactions -----------------------------------------------------------------------

    def reaction_counts(self, post_uri: str) -> dict[str, int]:
        reactors: dict[str, set[str]] = {}
        for r in self.live(REACTION):
            record = r.record or {}
            if _ref_uri(record.get("subject")) != post_uri:
                continue
            if self.account_state(r.did) != "active":
                continue
            reactors.setdefault(str(record.get("reaction")), set()).add(r.did)
        return {reaction: len(dids) for reaction, dids in reactors.items()}
