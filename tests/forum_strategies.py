"""Hypothesis strategies for small, realistic forums as the log would see them.

``forums()`` draws a :class:`ForumScenario`: the Forum account's repo and a few member
repos, each an ordered stream of events (records with real TIDs, increasing commit revs
and real DAG-CBOR CIDs; identity and account events in the DID's own stream), written by
a script of forum activity: structure, roles and assignments, memberships, topics,
replies (some to unknown or wrong parents), posts whose create was never seen, edits,
deletes, reactions, every moderation action (temporary bans expiring around ``now``),
account status changes, forged forum-owned records from other DIDs and records the
ingest marked invalid.

``deliveries(scenario)`` draws how those streams reach a projection: any interleaving
that keeps each repo's order, duplicates re-sent later at new positions, and batches of
random sizes, some of which rewind over positions already applied (re-deliveries).
``any_order(scenario)`` draws how they may reach the log: every event in any order, a
record's own events included (a delete before its create), some of them re-sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import libipld
from hypothesis import strategies as st

from events.collections import (
    BOARD,
    CATEGORY,
    MEMBERSHIP,
    MOD_ACTION,
    POST,
    REACTION,
    ROLE,
    ROLE_ASSIGNMENT,
    THEME,
    THEME_POLICY,
)
from events.collections import (
    FORUM as FORUM_NSID,
)
from events.model import (
    AccountStatus,
    AccountStatusChanged,
    IdentityChanged,
    LogEvent,
    Logged,
    RecordEvent,
    RecordOperation,
    at_uri,
    int_to_tid,
)

FORUM_DID = "did:plc:forumforumforumforum2345"
MEMBER_DIDS = (
    "did:plc:alicealicealicealice2345",
    "did:plc:bobbobbobbobbobbobbob234",
    "did:plc:carolcarolcarolcarol2345",
    "did:plc:davedavedavedavedave2345",
)
FORGER_DID = "did:plc:mallorymallorymallory234"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

FORUM_URI = at_uri(FORUM_DID, FORUM_NSID, "self")

PERMISSIONS = tuple(
    "space.atbb.permission." + name
    for name in (
        "manageForum",
        "manageCategories",
        "manageRoles",
        "manageMembers",
        "manageThemes",
        "banUsers",
        "lockTopics",
        "pinTopics",
        "moderatePosts",
        "createTopics",
        "createPosts",
        "react",
    )
)
ACTIONS = tuple(
    "space.atbb.modAction." + name
    for name in ("ban", "unban", "lock", "unlock", "delete", "undelete", "pin", "unpin")
)
_STATUSES: tuple[tuple[bool, AccountStatus | None], ...] = (
    (True, None),
    (True, None),
    (True, "active"),
    (False, "takendown"),
    (False, "suspended"),
    (False, "deactivated"),
    (False, "deleted"),
    (False, "desynchronized"),
    (False, "throttled"),
)
# Few distinct names and sort orders, so ties exercise the (sortOrder, name, uri) order.
_NAMES = ("General", "general", "Off-topic", "Ünïcode", "Announcements")
_SORT_ORDERS = (None, 0, 1, 2)
_REACTIONS = ("like", "👍", "❤️")
_TEXTS = ("Hello **world**", "Same here.", "ünïcödé ✓", "x", "A longer reply\n\nwith lines")
_BASE_US = int((NOW - timedelta(days=2)).timestamp() * 1_000_000)
# Every clock starts after this, so no record is ever created under it.
_NEVER_RKEY = int_to_tid((_BASE_US - 1) << 10)


def is_forum_owned(collection: str) -> bool:
    return collection.startswith("space.atbb.forum.") or collection == MOD_ACTION


def record_cid(record: dict[str, Any]) -> str:
    """The record's CIDv1 (dag-cbor, sha2-256), as a PDS computes it."""
    digest = hashlib.sha256(libipld.encode_dag_cbor(record)).digest()
    return str(libipld.encode_cid(b"\x01\x71\x12\x20" + digest))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class ForumScenario:
    """A forum's repos as ordered event streams (one per DID), and the moment to ask at."""

    forum_did: str
    now: datetime
    streams: tuple[tuple[LogEvent, ...], ...]

    @property
    def events(self) -> list[LogEvent]:
        return [event for stream in self.streams for event in stream]


@dataclass
class _Live:
    collection: str
    record: dict[str, Any]
    cid: str


@dataclass
class _Builder:
    """Writes the script's records into per-repo streams, like a PDS would commit them."""

    draw: Any
    streams: dict[str, list[LogEvent]] = field(default_factory=dict)
    clocks: dict[str, int] = field(default_factory=dict)
    live: dict[str, _Live] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    future: dict[str, list[str]] = field(default_factory=dict)
    seconds: int = 0
    seq: int = 0
    unseen: bool = False

    # --- clocks and events -------------------------------------------------------------

    def tick(self) -> None:
        # Often 0: equal createdAt values exercise the (createdAt, uri) order.
        self.seconds += self.draw(st.sampled_from((0, 0, 1, 7, 60)))

    def moment(self) -> datetime:
        return NOW - timedelta(days=1) + timedelta(seconds=self.seconds)

    def created_at(self) -> str:
        return iso(self.moment())

    def next_tid(self, did: str) -> str:
        last = self.clocks.get(did, _BASE_US + self.seconds * 1_000_000)
        now_us = max(last + 1, _BASE_US + self.seconds * 1_000_000)
        self.clocks[did] = now_us
        clock_id = self.draw(st.integers(0, 1023))
        return int_to_tid((now_us << 10) | clock_id)

    def emit(self, did: str, event: LogEvent) -> None:
        self.streams.setdefault(did, []).append(event)

    def commit(
        self,
        did: str,
        operation: RecordOperation,
        collection: str,
        rkey: str,
        record: dict[str, Any] | None,
        *,
        valid: bool = True,
        reason: str | None = None,
    ) -> str:
        uri = at_uri(did, collection, rkey)
        rev = self.next_tid(did)
        cid = None if record is None else record_cid(record)
        time_us = _BASE_US + self.seconds * 1_000_000 + len(self.streams.get(did, ()))
        self.emit(
            did,
            RecordEvent(
                operation=operation,
                did=did,
                collection=collection,
                rkey=rkey,
                rev=rev,
                cid=cid,
                record=record,
                valid=valid,
                reason=reason,
                source="jetstream",
                source_cursor=time_us,
                observed_at=time_us + 1_000,
            ),
        )
        if valid and (did == FORUM_DID or not is_forum_owned(collection)):
            if record is None:
                self.live.pop(uri, None)
                self.dead.add(uri)
            elif cid is not None:
                self.live[uri] = _Live(collection, record, cid)
        return uri

    def create(self, did: str, collection: str, record: dict[str, Any], rkey: str = "") -> str:
        record = {"$type": collection, **record}
        rkey = rkey or self.next_tid(did)
        if self.unseen:
            # The repo holds it, but its create never reached us (written before the
            # forum was followed): later events may still refer to, edit or delete it.
            self.unseen = False
            uri = at_uri(did, collection, rkey)
            self.live[uri] = _Live(collection, record, record_cid(record))
            return uri
        return self.commit(did, "create", collection, rkey, record)

    def put(self, did: str, collection: str, rkey: str, record: dict[str, Any]) -> str:
        uri = at_uri(did, collection, rkey)
        operation: RecordOperation = "update" if uri in self.live else "create"
        return self.commit(did, operation, collection, rkey, {"$type": collection, **record})

    def delete(self, uri: str) -> None:
        did, collection, rkey = uri[len("at://") :].split("/")
        self.commit(did, "delete", collection, rkey, None)

    # --- picking what to refer to ------------------------------------------------------

    def uris(self, collection: str, did: str | None = None) -> list[str]:
        return sorted(
            uri
            for uri, live in self.live.items()
            if live.collection == collection and (did is None or uri.split("/")[2] == did)
        )

    def pick(self, uris: Sequence[str]) -> str | None:
        return self.draw(st.sampled_from(uris)) if uris else None

    def ref(self, uri: str) -> dict[str, str]:
        live = self.live.get(uri)
        cid = live.cid if live else record_cid({"dangling": uri})
        return {"uri": uri, "cid": cid}

    def field_ref(self, uri: str, field: str, owner: str) -> dict[str, Any]:
        """A forum, board or category reference in one of the shapes on the network:
        bare, or wrapped as the original atBB writes it, with or without ``$type``."""
        shape = self.draw(st.sampled_from(("bare", "wrapped", "typed")))
        if shape == "bare":
            return self.ref(uri)
        wrapped: dict[str, Any] = {field: self.ref(uri)}
        if shape == "typed":
            wrapped["$type"] = f"{owner}#{field}Ref"
        return wrapped

    def future_uri(self, collection: str) -> str:
        """A uri for a record the Forum account will (maybe) create later in the script:
        a reference to it arrives before it exists."""
        rkey = self.next_tid(FORUM_DID)
        self.future.setdefault(collection, []).append(rkey)
        return at_uri(FORUM_DID, collection, rkey)

    def target(self, collection: str) -> str:
        """A reference: mostly a live record, sometimes a future or a dangling one."""
        choice = self.draw(st.sampled_from(("live", "live", "live", "future", "dangling")))
        existing = self.uris(collection)
        if choice == "live" and existing:
            return str(self.draw(st.sampled_from(existing)))
        if choice == "future" or not existing:
            return self.future_uri(collection)
        return at_uri(FORUM_DID, collection, _NEVER_RKEY)

    def forum_rkey(self, collection: str) -> str:
        pending = self.future.get(collection, [])
        if pending and self.draw(st.booleans()):
            return pending.pop(0)
        return self.next_tid(FORUM_DID)

    def posts(self, kind: str | None = None, did: str | None = None) -> list[str]:
        found = []
        for uri in self.uris(POST, did):
            is_reply = "reply" in self.live[uri].record
            if kind is None or (kind == "reply") == is_reply:
                found.append(uri)
        return found

    def member(self) -> str:
        return str(self.draw(st.sampled_from(self.members)))

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(did for did in self.streams if did not in (FORUM_DID, FORGER_DID)) or (
            MEMBER_DIDS[0],
        )


def _forum(b: _Builder) -> None:
    b.put(
        FORUM_DID,
        FORUM_NSID,
        "self",
        {
            "name": b.draw(st.sampled_from(("atBB test forum", "Forum ✓"))),
            "description": b.draw(st.sampled_from(("", "A forum", "Über"))),
            "createdAt": b.created_at(),
        },
    )


def _category(b: _Builder) -> None:
    record: dict[str, Any] = {
        "name": b.draw(st.sampled_from(_NAMES)),
        "createdAt": b.created_at(),
    }
    order = b.draw(st.sampled_from(_SORT_ORDERS))
    if order is not None:
        record["sortOrder"] = order
    if b.draw(st.booleans()):
        record["slug"] = "general"
        record["description"] = "About things"
    b.create(FORUM_DID, CATEGORY, record, b.forum_rkey(CATEGORY))


def _board(b: _Builder) -> None:
    record: dict[str, Any] = {
        "name": b.draw(st.sampled_from(_NAMES)),
        "category": b.field_ref(b.target(CATEGORY), "category", BOARD),
        "createdAt": b.created_at(),
    }
    order = b.draw(st.sampled_from(_SORT_ORDERS))
    if order is not None:
        record["sortOrder"] = order
    b.create(FORUM_DID, BOARD, record, b.forum_rkey(BOARD))


def _edit_structure(b: _Builder) -> None:
    uri = b.pick(b.uris(CATEGORY) + b.uris(BOARD))
    if uri is None:
        _category(b)
        return
    live = b.live[uri]
    record = {k: v for k, v in live.record.items() if k != "$type"}
    record["name"] = b.draw(st.sampled_from(_NAMES))
    record["sortOrder"] = b.draw(st.integers(0, 2))
    if live.collection == BOARD and b.draw(st.booleans()):
        record["category"] = b.field_ref(b.target(CATEGORY), "category", BOARD)
    b.put(FORUM_DID, live.collection, uri.rsplit("/", 1)[1], record)


def _delete_structure(b: _Builder) -> None:
    uri = b.pick(b.uris(CATEGORY) + b.uris(BOARD))
    if uri is not None:
        b.delete(uri)


def _role(b: _Builder) -> None:
    name = b.draw(st.sampled_from(("Member", "member", "Moderator", "Admin", "Owner")))
    perms = b.draw(st.lists(st.sampled_from((*PERMISSIONS, "*")), max_size=4, unique=True))
    b.create(
        FORUM_DID,
        ROLE,
        {
            "name": name,
            "permissions": perms,
            "priority": b.draw(st.sampled_from((0, 10, 20, 30))),
            "createdAt": b.created_at(),
        },
    )


def _assign(b: _Builder) -> None:
    did = b.member()
    role = b.pick(b.uris(ROLE)) or b.future_uri(ROLE)
    b.put(
        FORUM_DID,
        ROLE_ASSIGNMENT,
        did,
        {
            "subject": did,
            "role": b.ref(role),
            "createdBy": FORUM_DID,
            "createdAt": b.created_at(),
        },
    )


def _unassign_or_unrole(b: _Builder) -> None:
    uri = b.pick(b.uris(ROLE_ASSIGNMENT) + b.uris(ROLE))
    if uri is not None:
        b.delete(uri)


def _mod_record(b: _Builder, action: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": "space.atbb.modAction." + action,
        "subject": subject,
        "reason": b.draw(st.sampled_from(("spam", "Off topic ✗", "appeal granted"))),
        "createdBy": FORUM_DID,
        "createdAt": b.created_at(),
    }


def _ban(b: _Builder) -> None:
    """Mostly a ban of someone who posted (so it changes what is shown), sometimes
    temporary with an expiry just before, at or after ``now``; sometimes an unban."""
    authors = sorted({uri.split("/")[2] for uri in b.posts()})
    did = b.draw(st.sampled_from(authors)) if authors else b.member()
    action = b.draw(st.sampled_from(("ban", "ban", "ban", "unban")))
    record = _mod_record(b, action, {"did": did})
    if action == "ban":
        offset = b.draw(st.sampled_from((None, None, -3600, -1, 0, 1, 3600)))
        if offset is not None:
            record["expiresAt"] = iso(NOW + timedelta(seconds=offset))
    b.create(FORUM_DID, MOD_ACTION, record)


def _mod_action(b: _Builder) -> None:
    """A moderation action on a post: hide/unhide any post, lock/pin (or undo) a topic."""
    action = b.draw(
        st.sampled_from(("delete", "delete", "undelete", "lock", "unlock", "pin", "unpin"))
    )
    wants_topic = action in ("lock", "unlock", "pin", "unpin")
    post = b.pick(b.posts("topic" if wants_topic else None))
    if post is not None:
        b.create(FORUM_DID, MOD_ACTION, _mod_record(b, action, {"post": b.ref(post)}))


def _undo_mod_action(b: _Builder) -> None:
    uri = b.pick(b.uris(MOD_ACTION))
    if uri is not None:
        b.delete(uri)


def _theme(b: _Builder) -> None:
    existing = b.uris(THEME)
    rkey = (
        b.draw(st.sampled_from(existing)).rsplit("/", 1)[1]
        if existing and b.draw(st.booleans())
        else b.next_tid(FORUM_DID)
    )
    b.put(
        FORUM_DID,
        THEME,
        rkey,
        {
            "name": b.draw(st.sampled_from(("Light", "Dark", "Neon"))),
            "colorScheme": b.draw(st.sampled_from(("light", "dark"))),
            "tokens": {"--bg": b.draw(st.sampled_from(("#fff", "#000"))), "--fg": "#333"},
            "fontUrls": ["https://fonts.example/a.css"],
            "createdAt": b.created_at(),
        },
    )


def _policy(b: _Builder) -> None:
    themes = b.uris(THEME)
    entries: list[dict[str, str]] = []
    for uri in themes:
        entry = {"uri": uri}
        if b.draw(st.booleans()):
            entry["cid"] = b.live[uri].cid
        entries.append(entry)
    record: dict[str, Any] = {
        "availableThemes": entries,
        "allowUserChoice": b.draw(st.booleans()),
        "updatedAt": b.created_at(),
    }
    if themes:
        record["defaultLightTheme"] = themes[0]
        record["defaultDarkTheme"] = themes[-1]
    b.put(FORUM_DID, THEME_POLICY, "self", record)


def _join(b: _Builder) -> None:
    did = b.draw(st.sampled_from(MEMBER_DIDS))
    forum = FORUM_URI if b.draw(st.integers(0, 4)) else at_uri(FORGER_DID, FORUM_NSID, "self")
    b.create(did, MEMBERSHIP, {"forum": b.field_ref(forum, "forum", MEMBERSHIP),
                               "createdAt": b.created_at()})


def _leave(b: _Builder) -> None:
    uri = b.pick(b.uris(MEMBERSHIP))
    if uri is not None:
        b.delete(uri)


def _topic(b: _Builder) -> None:
    did = b.draw(st.sampled_from(MEMBER_DIDS))
    b.create(
        did,
        POST,
        {
            "title": b.draw(st.sampled_from(("First!", "Help wanted", "Ünïcode title"))),
            "text": b.draw(st.sampled_from(_TEXTS)),
            "board": b.field_ref(b.target(BOARD), "board", POST),
            "forum": b.field_ref(FORUM_URI, "forum", POST),
            "createdAt": b.created_at(),
        },
    )


def _reply(b: _Builder) -> None:
    did = b.draw(st.sampled_from(MEMBER_DIDS))
    topics = b.posts("topic")
    replies = b.posts("reply")
    shape = b.draw(st.sampled_from(("root", "root", "nested", "nested", "odd")))
    if not topics:
        _topic(b)
        return
    root = b.draw(st.sampled_from(topics))
    parent = root
    in_thread = [r for r in replies if b.live[r].record["reply"]["root"]["uri"] == root]
    if shape == "nested" and in_thread:
        parent = b.draw(st.sampled_from(in_thread))
    elif shape == "odd":
        # A structurally wrong or dangling reply: root is a reply, parent in another
        # thread, or the root is a post that never existed.
        oddity = b.draw(st.sampled_from(("root-is-reply", "foreign-parent", "dangling")))
        if oddity == "root-is-reply" and replies:
            root = parent = b.draw(st.sampled_from(replies))
        elif oddity == "foreign-parent" and replies:
            parent = b.draw(st.sampled_from(replies))
        else:
            root = parent = at_uri(did, POST, _NEVER_RKEY)
    b.create(
        did,
        POST,
        {
            "text": b.draw(st.sampled_from(_TEXTS)),
            "reply": {"root": b.ref(root), "parent": b.ref(parent)},
            "forum": b.field_ref(FORUM_URI, "forum", POST),
            "createdAt": b.created_at(),
        },
    )


def _unseen_post(b: _Builder) -> None:
    """A topic or reply whose create we never saw: replies may wait on it, and a later
    delete of it is a tombstone with no structure."""
    b.unseen = True
    if b.draw(st.booleans()):
        _topic(b)
    else:
        _reply(b)
    b.unseen = False


def _edit_post(b: _Builder) -> None:
    uri = b.pick(b.posts())
    if uri is None:
        return
    record = {k: v for k, v in b.live[uri].record.items() if k != "$type"}
    record["text"] = b.draw(st.sampled_from(_TEXTS)) + " (edited)"
    record["updatedAt"] = b.created_at()
    if "title" in record:
        record["title"] = b.draw(st.sampled_from(("Edited title", "First!")))
    did = uri.split("/")[2]
    b.put(did, POST, uri.rsplit("/", 1)[1], record)


def _delete_post(b: _Builder) -> None:
    uri = b.pick(b.posts())
    if uri is not None:
        b.delete(uri)


def _react(b: _Builder) -> None:
    post = b.pick(b.posts())
    if post is None:
        return
    b.create(
        b.draw(st.sampled_from(MEMBER_DIDS)),
        REACTION,
        {
            "subject": b.ref(post),
            "reaction": b.draw(st.sampled_from(_REACTIONS)),
            "createdAt": b.created_at(),
        },
    )


def _unreact(b: _Builder) -> None:
    uri = b.pick(b.uris(REACTION))
    if uri is not None:
        b.delete(uri)


def _forge(b: _Builder) -> None:
    """A forum-owned record written into someone else's repo: ingest usually marks it
    invalid, but the projection must ignore it even when it does not."""
    marked = b.draw(st.booleans())
    reason = "forum-owned record from another DID" if marked else None
    kind = b.draw(st.sampled_from(("board", "category", "ban", "assign", "forum")))
    rkey = ""
    record: dict[str, Any]
    if kind == "board":
        collection = BOARD
        record = {"name": "Forged", "category": b.ref(b.target(CATEGORY))}
    elif kind == "category":
        collection, record = CATEGORY, {"name": "Forged"}
    elif kind == "ban":
        collection = MOD_ACTION
        record = {
            "action": ACTIONS[0],
            "subject": {"did": b.draw(st.sampled_from(MEMBER_DIDS))},
            "reason": "forged",
            "createdBy": FORGER_DID,
        }
    elif kind == "assign":
        collection, rkey = ROLE_ASSIGNMENT, FORGER_DID
        record = {"subject": FORGER_DID, "role": b.ref(b.target(ROLE)), "createdBy": FORGER_DID}
    else:
        collection, rkey, record = FORUM_NSID, "self", {"name": "Forged forum"}
    record = {"$type": collection, **record, "createdAt": b.created_at()}
    b.commit(
        FORGER_DID,
        "create",
        collection,
        rkey or b.next_tid(FORGER_DID),
        record,
        valid=not marked,
        reason=reason,
    )


def _invalid(b: _Builder) -> None:
    """A record the ingest validator refused: kept in the log, skipped by projections."""
    did = b.draw(st.sampled_from(MEMBER_DIDS))
    existing = b.posts(did=did)
    operation: RecordOperation = "create"
    rkey = b.next_tid(did)
    if existing and b.draw(st.booleans()):
        # An invalid update of a live post: the previous valid version must stay.
        operation, rkey = "update", existing[0].rsplit("/", 1)[1]
    b.commit(
        did,
        operation,
        POST,
        rkey,
        {"$type": POST, "title": "no text", "createdAt": b.created_at()},
        valid=False,
        reason="text: required field missing",
    )


def _superseded(b: _Builder) -> None:
    """A topic in the original atBB's shape that an earlier validator refused for it:
    the log keeps that verdict, and the projection takes it again (ADR 0012)."""
    did = b.draw(st.sampled_from(MEMBER_DIDS))
    record = {
        "$type": POST,
        "title": "Wrapped",
        "text": b.draw(st.sampled_from(_TEXTS)),
        "board": {"board": b.ref(b.target(BOARD))},
        "forum": {"forum": b.ref(FORUM_URI)},
        "createdAt": b.created_at(),
    }
    uri = b.commit(did, "create", POST, b.next_tid(did), record, valid=False,
                   reason="post.forum.uri: required field is missing")
    # the current validator reads it, so it is live like any valid post
    b.live[uri] = _Live(POST, record, record_cid(record))


def _identity(b: _Builder) -> None:
    did = b.draw(st.sampled_from((*MEMBER_DIDS, FORUM_DID)))
    name = did.split(":")[2][:5]
    handle = b.draw(st.sampled_from((f"{name}.test", f"{name}2.test", None)))
    b.seq += 1
    b.emit(did, IdentityChanged(did, handle, b.seq, b.created_at(), "jetstream", None, 0))


def _account(b: _Builder) -> None:
    did = b.draw(st.sampled_from(MEMBER_DIDS))
    active, status = b.draw(st.sampled_from(_STATUSES))
    b.seq += 1
    b.emit(
        did, AccountStatusChanged(did, active, status, b.seq, b.created_at(), "jetstream", None, 0)
    )


_OPS = {
    "forum": _forum,
    "category": _category,
    "board": _board,
    "edit_structure": _edit_structure,
    "delete_structure": _delete_structure,
    "role": _role,
    "assign": _assign,
    "unassign": _unassign_or_unrole,
    "mod": _mod_action,
    "ban": _ban,
    "unmod": _undo_mod_action,
    "theme": _theme,
    "policy": _policy,
    "join": _join,
    "leave": _leave,
    "topic": _topic,
    "reply": _reply,
    "edit_post": _edit_post,
    "unseen_post": _unseen_post,
    "delete_post": _delete_post,
    "react": _react,
    "unreact": _unreact,
    "forge": _forge,
    "invalid": _invalid,
    "superseded": _superseded,
    "identity": _identity,
    "account": _account,
}
# How often each operation comes up: posting dominates, as in a real forum.
_WEIGHTED = (
    *("topic",) * 4,
    *("reply",) * 9,
    *("mod",) * 5,
    *("ban",) * 3,
    *("board", "category", "account", "identity", "react", "delete_post", "unmod", "role") * 2,
    *("edit_post", "join", "unseen_post") * 2,
    *_OPS,
)


@st.composite
def forums(draw: st.DrawFn, max_steps: int = 40) -> ForumScenario:
    """A small forum: a few structure records up front, then ``max_steps`` random acts."""
    b = _Builder(draw)
    if draw(st.integers(0, 5)):
        _forum(b)
    for _ in range(draw(st.integers(1, 2))):
        _category(b)
    for _ in range(draw(st.integers(1, 3))):
        _board(b)
    for _ in range(draw(st.integers(min(10, max_steps), max_steps))):
        b.tick()
        _OPS[draw(st.sampled_from(_WEIGHTED))](b)
    return ForumScenario(
        forum_did=FORUM_DID,
        now=NOW,
        streams=tuple(tuple(stream) for stream in b.streams.values()),
    )


def interleave(streams: Sequence[Sequence[LogEvent]], order: Sequence[int]) -> list[LogEvent]:
    """Merge streams keeping each one's order: ``order`` names, per step, which of the
    still-open streams gives its next event (indices wrap; exhausted ones drop out)."""
    queues = [list(s) for s in streams if s]
    merged: list[LogEvent] = []
    step = 0
    while queues:
        pick = order[step] % len(queues) if step < len(order) else 0
        step += 1
        merged.append(queues[pick].pop(0))
        if not queues[pick]:
            queues.pop(pick)
    return merged


@st.composite
def deliveries(draw: st.DrawFn, scenario: ForumScenario) -> list[list[Logged]]:
    """Batches of :class:`Logged` as the projection would read them after an unruly
    ingest: a random interleaving of the repos, duplicates re-sent later at new
    positions, gaps in positions, random batch sizes, and rewinds that re-deliver
    positions already applied."""
    rnd = draw(st.randoms(use_true_random=False))
    total = sum(len(s) for s in scenario.streams)
    merged = interleave(scenario.streams, [rnd.randrange(1 << 16) for _ in range(total)])
    duplicate_rate = draw(st.sampled_from((0.0, 0.1, 0.3)))
    with_dups: list[LogEvent] = list(merged)
    for index, event in enumerate(merged):
        if rnd.random() < duplicate_rate:
            with_dups.insert(rnd.randint(index + 1, len(with_dups)), event)
    logged: list[Logged] = []
    position = 0
    for event in with_dups:
        position += rnd.choice((1, 1, 1, 2, 5))
        logged.append(Logged(position, event))
    max_batch = draw(st.sampled_from((1, 3, 10, 1000)))
    batches: list[list[Logged]] = []
    applied = 0
    while applied < len(logged):
        # A rewind starts the batch before the end of what was already applied.
        start = max(0, applied - rnd.choice((0, 0, 0, 1, 3)))
        end = min(len(logged), max(applied + 1, start + rnd.randint(1, max_batch)))
        batches.append(logged[start:end])
        applied = end
    return batches


@st.composite
def any_order(draw: st.DrawFn, scenario: ForumScenario) -> list[LogEvent]:
    """The forum's events as the network might deliver them: any permutation, not only
    of the repos' streams but of each record's own events (reversed, sometimes: every
    delete before its create), with some events re-sent before or after their first
    copy."""
    rnd = draw(st.randoms(use_true_random=False))
    events = list(scenario.events)
    if draw(st.integers(0, 3)) == 0:
        events.reverse()
    else:
        rnd.shuffle(events)
    duplicate_rate = draw(st.sampled_from((0.0, 0.1, 0.3)))
    for event in list(events):
        if rnd.random() < duplicate_rate:
            events.insert(rnd.randint(0, len(events)), event)
    return events


def flatten(batches: Sequence[Sequence[Logged]]) -> list[Logged]:
    """Every distinct position once, in order (what a well-behaved reader would see)."""
    seen: dict[int, Logged] = {}
    for batch in batches:
        for item in batch:
            seen.setdefault(item.position, item)
    return [seen[p] for p in sorted(seen)]
