"""In-memory fakes of our ports, faithful to their contracts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from events.log import AppendResult, CursorState, CursorUpdate, RecordHead
from events.model import (
    LogEvent,
    Logged,
    RecordEvent,
    is_atbb_collection,
    originator_of,
    tid_to_int,
)


class MemoryEventLog:
    """An EventLog in memory: the same dedup (originator, version), non-``space.atbb.*``
    drop, monotonic cursor and positions as the real store.
    ``gap`` leaves holes between positions, as a real notification log may."""

    def __init__(self, *, gap: int = 1) -> None:
        self._lock = threading.Lock()
        self._events: list[Logged] = []
        self._keys: set[tuple[str, int]] = set()
        self._cursors: dict[str, CursorState] = {}
        self._gap = gap
        self._next = gap
        self._identity = uuid.uuid4().hex

    def append(
        self, events: Sequence[LogEvent], cursor: CursorUpdate | None = None
    ) -> AppendResult:
        result = AppendResult()
        with self._lock:
            for index, event in enumerate(events):
                if isinstance(event, RecordEvent) and not is_atbb_collection(event.collection):
                    result.dropped += 1
                    continue
                key = originator_of(event)
                if key in self._keys:
                    result.duplicates += 1
                    result.duplicate_indexes.append(index)
                    continue
                self._keys.add(key)
                self._events.append(Logged(self._next, event))
                result.positions.append(self._next)
                result.appended += 1
                self._next += self._gap
            if cursor is not None:
                known = self._cursors.get(cursor.source)
                value = cursor.value if known is None else max(known.value, cursor.value)
                self._cursors[cursor.source] = CursorState(
                    cursor.source, value, time.time_ns() // 1000
                )
        return result

    def read(self, after: int, limit: int, until: int | None = None) -> list[Logged]:
        with self._lock:
            out = []
            for logged in self._events:
                if logged.position <= after:
                    continue
                if until is not None and logged.position > until:
                    break
                out.append(logged)
                if len(out) >= limit:
                    break
            return out

    def iter_from(
        self, after: int = 0, until: int | None = None, page: int = 2000
    ) -> Iterator[Logged]:
        position = after
        while True:
            batch = self.read(position, page, until)
            if not batch:
                return
            yield from batch
            position = batch[-1].position

    def head(self) -> int:
        with self._lock:
            return self._events[-1].position if self._events else 0

    def count(self) -> int:
        with self._lock:
            return len(self._events)

    def identity(self) -> str:
        return self._identity

    def cursor(self, source: str) -> CursorState | None:
        with self._lock:
            return self._cursors.get(source)

    def history(self, uri: str) -> list[Logged]:
        with self._lock:
            found = [
                logged
                for logged in self._events
                if isinstance(logged.event, RecordEvent) and logged.event.uri == uri
            ]
        return sorted(found, key=lambda logged: originator_of(logged.event)[1])

    def repo_heads(self, did: str) -> dict[str, RecordHead]:
        heads: dict[str, tuple[int, RecordHead]] = {}
        with self._lock:
            for logged in self._events:
                event = logged.event
                if not isinstance(event, RecordEvent) or event.did != did:
                    continue
                known = heads.get(event.uri)
                if known is None or event.version > known[0]:
                    heads[event.uri] = (
                        event.version,
                        RecordHead(event.uri, event.rev, event.cid, event.operation == "delete"),
                    )
        return {uri: head for uri, (_v, head) in heads.items()}

    def known_dids(self) -> list[str]:
        with self._lock:
            return sorted(
                {e.event.did for e in self._events if isinstance(e.event, RecordEvent)}
            )

    def close(self) -> None:
        return None


class TidClock:
    """Strictly increasing TIDs from a fixed start, so test data is deterministic."""

    def __init__(self, start_micros: int = 1_700_000_000_000_000) -> None:
        self._micros = start_micros

    def next(self) -> str:
        from events.model import int_to_tid

        self._micros += 1
        return int_to_tid(self._micros << 10)

    def iso(self) -> str:
        """The clock's current time as an RFC 3339 datetime."""
        from datetime import UTC, datetime

        moment = datetime.fromtimestamp(self._micros / 1_000_000, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Repo:
    """Writes record events as one repo would: each commit has a newer rev."""

    def __init__(self, did: str, clock: TidClock) -> None:
        self.did = did
        self.clock = clock

    def uri(self, collection: str, rkey: str) -> str:
        return f"at://{self.did}/{collection}/{rkey}"

    def _event(
        self, operation: str, collection: str, rkey: str, record: dict[str, Any] | None, *,
        valid: bool = True, reason: str | None = None,
    ) -> RecordEvent:
        rev = self.clock.next()
        cid = None if record is None else f"bafy{rev}{len(str(record))}"
        return RecordEvent(
            operation=operation,  # type: ignore[arg-type]
            did=self.did,
            collection=collection,
            rkey=rkey,
            rev=rev,
            cid=cid,
            record=record,
            valid=valid,
            reason=reason,
            source="local",
            source_cursor=None,
            observed_at=tid_to_int(rev) >> 10,
        )

    def create(
        self, collection: str, record: dict[str, Any], rkey: str | None = None, **kw: Any
    ) -> RecordEvent:
        return self._event("create", collection, rkey or self.clock.next(), record, **kw)

    def update(
        self, collection: str, rkey: str, record: dict[str, Any], **kw: Any
    ) -> RecordEvent:
        return self._event("update", collection, rkey, record, **kw)

    def delete(self, collection: str, rkey: str) -> RecordEvent:
        return self._event("delete", collection, rkey, None)


def as_logged(events: Sequence[LogEvent], start: int = 1) -> list[Logged]:
    return [Logged(start + i, event) for i, event in enumerate(events)]


POST = "space.atbb.post"
MOD = "space.atbb.modAction"


def forum_workload(
    forum_did: str, *, seed: int, events: int, members: int = 200
) -> list[LogEvent]:
    """A realistic, deterministic stream of forum events in commit order: structure and
    roles first, then mostly replies, some topics, edits, deletes, reactions, moderation,
    identity and account changes."""
    import random

    from events.model import AccountStatus, AccountStatusChanged, IdentityChanged

    rng = random.Random(seed)
    clock = TidClock()
    forum = Repo(forum_did, clock)
    out: list[LogEvent] = []

    def ref(event: RecordEvent) -> dict[str, str]:
        return {"uri": event.uri, "cid": event.cid or ""}

    forum_rec = forum.create(
        "space.atbb.forum.forum", {"name": "Forum", "createdAt": clock.iso()}, rkey="self"
    )
    out.append(forum_rec)
    categories = [
        forum.create("space.atbb.forum.category",
                     {"name": f"Cat {i}", "sortOrder": i, "createdAt": clock.iso()})
        for i in range(3)
    ]
    boards = [
        forum.create("space.atbb.forum.board",
                     {"name": f"Board {i}", "sortOrder": i % 4,
                      "category": ref(categories[i % 3]), "createdAt": clock.iso()})
        for i in range(10)
    ]
    roles = [
        forum.create("space.atbb.forum.role",
                     {"name": name, "permissions": perms, "priority": prio,
                      "createdAt": clock.iso()})
        for name, perms, prio in (
            ("Owner", ["*"], 0),
            ("Moderator", ["space.atbb.permission.moderatePosts"], 20),
            ("Member", ["space.atbb.permission.createPosts"], 30),
        )
    ]
    out += categories + boards + roles
    repos = [Repo(f"did:plc:member{i:05d}", clock) for i in range(members)]
    seq = 0
    for repo in repos:
        seq += 1
        out.append(IdentityChanged(repo.did, f"m{repo.did[-5:]}.test", seq, None, "local",
                                   None, 0))
        out.append(repo.create("space.atbb.membership",
                               {"forum": ref(forum_rec), "createdAt": clock.iso()}))
    for repo in repos[:3]:
        out.append(forum.create("space.atbb.forum.roleAssignment",
                                {"subject": repo.did, "role": ref(roles[1]),
                                 "createdBy": forum_did, "createdAt": clock.iso()},
                                rkey=repo.did))
    topics: list[RecordEvent] = []
    posts: list[tuple[Repo, RecordEvent]] = []
    replies_of: dict[str, list[RecordEvent]] = {}
    while len(out) < events:
        roll = rng.random()
        author = repos[min(int(rng.expovariate(1 / (members / 4))), members - 1)]
        if roll < 0.10 or not topics:
            board = rng.choice(boards)
            topic = author.create(POST, {"text": "opening post " * rng.randint(1, 20),
                                         "title": f"Topic {len(topics)}",
                                         "board": ref(board), "createdAt": clock.iso()})
            topics.append(topic)
            posts.append((author, topic))
            out.append(topic)
        elif roll < 0.80:
            root = topics[-1 - min(int(rng.expovariate(0.05)), len(topics) - 1)]
            siblings = replies_of.setdefault(root.uri, [])
            parent = rng.choice(siblings) if siblings and rng.random() < 0.3 else root
            reply = author.create(POST, {"text": "a reply " * rng.randint(1, 40),
                                         "reply": {"root": ref(root), "parent": ref(parent)},
                                         "createdAt": clock.iso()})
            siblings.append(reply)
            posts.append((author, reply))
            out.append(reply)
        elif roll < 0.84 and posts:
            repo, post = rng.choice(posts)
            record = dict(post.record or {})
            record["text"] = "edited " + str(record.get("text", ""))
            out.append(repo.update(POST, post.rkey, record))
        elif roll < 0.86 and posts:
            repo, post = posts.pop(rng.randrange(len(posts)))
            out.append(repo.delete(POST, post.rkey))
        elif roll < 0.94 and posts:
            _repo, post = rng.choice(posts)
            out.append(author.create("space.atbb.reaction",
                                     {"subject": ref(post), "reaction": rng.choice("👍❤🎉"),
                                      "createdAt": clock.iso()}))
        elif roll < 0.97 and posts:
            _repo, post = rng.choice(posts)
            action = rng.choice(["delete", "undelete", "lock", "unlock", "pin", "unpin",
                                 "ban", "unban"])
            subject = ({"did": post.did} if action in ("ban", "unban")
                       else {"post": ref(post)})
            out.append(forum.create(MOD, {"action": f"space.atbb.modAction.{action}",
                                          "subject": subject, "reason": "because",
                                          "createdBy": forum_did, "createdAt": clock.iso()}))
        elif roll < 0.975:
            _rare_event(rng, forum, author, out, boards, categories, roles, posts, topics,
                        clock, ref)
        elif roll < 0.98:
            seq += 1
            status: AccountStatus | None = rng.choice(
                [None, "takendown", "deactivated", "deleted"]
            )
            out.append(AccountStatusChanged(author.did, status is None, status, seq, None,
                                            "local", None, 0))
        else:
            seq += 1
            out.append(IdentityChanged(author.did, f"renamed{seq}.test", seq, None, "local",
                                       None, 0))
    return out


def open_test_store(backend, name: str = "g1"):
    """The read models of a test: a SQLite file in the test's tmp dir, or a PostgreSQL
    schema named after the test's (so the fixture drops it)."""
    from projections.readmodel import open_read_models

    if backend.name == "sqlite":
        return open_read_models(backend.url, location=str(backend.tmp / f"{name}.sqlite3"))
    return open_read_models(backend.url, location=f"{backend.schema}_{name}")


def dump_tables(
    store: Any, *, skip: tuple[str, ...] = ("rejected",)
) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted: equal dumps mean equal read models."""
    from projections.schema import TABLES

    out = {}
    with store.read() as session:
        for table in TABLES:
            if table in skip:
                continue
            rows = session.query(f"SELECT * FROM {table}")
            out[table] = sorted(rows, key=repr)
    return out


RECOUNTS = {
    "board counts": (
        "SELECT uri, topic_count, post_count FROM boards",
        "SELECT b.uri,"
        " (SELECT COUNT(*) FROM posts p WHERE p.board_uri = b.uri AND p.counted = 1"
        "  AND p.kind = 'topic'),"
        " (SELECT COUNT(*) FROM posts p WHERE p.board_uri = b.uri AND p.counted = 1)"
        " FROM boards b",
    ),
    "board last post": (
        "SELECT uri, last_post_uri, last_post_thread_uri, last_post_did, last_post_at"
        " FROM boards",
        "SELECT b.uri, p.uri, p.thread_uri, p.did, p.created_at FROM boards b"
        " LEFT JOIN posts p ON p.uri = (SELECT x.uri FROM posts x WHERE x.board_uri = b.uri"
        " AND x.counted = 1 ORDER BY x.created_at DESC, x.uri DESC LIMIT 1)",
    ),
    "reply counts": (
        "SELECT uri, reply_count, last_reply_uri, last_reply_at FROM posts WHERE kind = 'topic'",
        "SELECT t.uri, (SELECT COUNT(*) FROM posts r WHERE r.thread_uri = t.uri"
        " AND r.kind = 'reply' AND r.counted = 1), r.uri, r.created_at FROM posts t"
        " LEFT JOIN posts r ON r.uri = (SELECT x.uri FROM posts x WHERE x.thread_uri = t.uri"
        " AND x.kind = 'reply' AND x.counted = 1 ORDER BY x.created_at DESC, x.uri DESC LIMIT 1)"
        " WHERE t.kind = 'topic'",
    ),
    "board author counts": (
        "SELECT board_uri, did, topics, posts FROM board_author_counts",
        "SELECT board_uri, did, SUM(CASE WHEN kind = 'topic' THEN 1 ELSE 0 END), COUNT(*)"
        " FROM posts WHERE counted = 1 GROUP BY board_uri, did",
    ),
    "thread author counts": (
        "SELECT thread_uri, did, replies FROM thread_author_counts",
        "SELECT thread_uri, did, COUNT(*) FROM posts WHERE counted = 1 AND kind = 'reply'"
        " GROUP BY thread_uri, did",
    ),
    "member post counts": (
        "SELECT did, post_count FROM members",
        "SELECT m.did, (SELECT COUNT(*) FROM posts p WHERE p.did = m.did AND p.counted = 1)"
        " FROM members m",
    ),
    "reaction counts": (
        "SELECT post_uri, reaction, count FROM reaction_counts",
        "SELECT r.subject_uri, r.reaction, COUNT(DISTINCT r.did) FROM reactions r"
        " JOIN members m ON m.did = r.did WHERE r.deleted = 0 AND m.account_state = 'active'"
        " AND r.subject_uri IS NOT NULL AND r.reaction IS NOT NULL"
        " GROUP BY r.subject_uri, r.reaction",
    ),
}
"""Materialised counts and what a recount from the rows gives."""


def recount_mismatches(store: Any) -> dict[str, tuple[list[Any], list[Any]]]:
    """Every materialised count that differs from a recount: name -> (stored, recount)."""
    bad = {}
    with store.read() as session:
        for name, (stored_sql, recount_sql) in RECOUNTS.items():
            stored = sorted(session.query(stored_sql), key=repr)
            recount = sorted(
                (row for row in session.query(recount_sql)
                 if not (name.endswith("author counts") and row[-1] == 0)),
                key=repr,
            )
            if stored != recount:
                bad[name] = (
                    [r for r in stored if r not in recount],
                    [r for r in recount if r not in stored],
                )
    return bad


def _rare_event(
    rng: Any, forum: Repo, author: Repo, out: list[LogEvent], boards: list[RecordEvent],
    categories: list[RecordEvent], roles: list[RecordEvent],
    posts: list[tuple[Repo, RecordEvent]], topics: list[RecordEvent], clock: TidClock,
    ref: Any,
) -> None:
    """The rarer things a forum sees: structure changes, moved topics, deleted mod
    actions and reactions, malformed threads, role changes."""
    choice = rng.randrange(8)
    if choice == 0:  # delete or recreate (a newer rev) a board
        board = rng.choice(boards)
        if rng.random() < 0.5:
            out.append(forum.delete("space.atbb.forum.board", board.rkey))
        else:
            out.append(forum.update("space.atbb.forum.board", board.rkey, dict(board.record)))
    elif choice == 1:  # delete or recreate a category
        category = rng.choice(categories)
        if rng.random() < 0.5:
            out.append(forum.delete("space.atbb.forum.category", category.rkey))
        else:
            out.append(forum.update("space.atbb.forum.category", category.rkey,
                                    dict(category.record)))
    elif choice == 2 and topics:  # move a topic to another board
        topic = rng.choice(topics)
        record = dict(topic.record or {})
        record["board"] = ref(rng.choice(boards))
        out.append(Repo(topic.did, clock).update(POST, topic.rkey, record))
    elif choice == 3:  # delete the latest mod action
        actions = [e for e in out if isinstance(e, RecordEvent) and e.collection == MOD
                   and e.operation == "create"]
        if actions:
            out.append(forum.delete(MOD, rng.choice(actions[-5:]).rkey))
    elif choice == 4:  # delete a reaction
        reactions = [e for e in out if isinstance(e, RecordEvent)
                     and e.collection == "space.atbb.reaction" and e.operation == "create"]
        if reactions:
            reaction = rng.choice(reactions)
            out.append(Repo(reaction.did, clock).delete("space.atbb.reaction", reaction.rkey))
    elif choice == 5 and posts:  # a reply whose root is a reply, or whose parent is elsewhere
        _repo, root = rng.choice(posts)
        _repo, parent = rng.choice(posts)
        out.append(author.create(POST, {"text": "odd", "reply": {"root": ref(root),
                                                                  "parent": ref(parent)},
                                        "createdAt": clock.iso()}))
    elif choice == 6:  # (re)assign or withdraw a role
        if rng.random() < 0.7:
            out.append(forum.update("space.atbb.forum.roleAssignment", author.did,
                                    {"subject": author.did, "role": ref(rng.choice(roles)),
                                     "createdBy": forum.did, "createdAt": clock.iso()}))
        else:
            out.append(forum.delete("space.atbb.forum.roleAssignment", author.did))
    else:  # leave the forum
        memberships = [e for e in out if isinstance(e, RecordEvent)
                       and e.collection == "space.atbb.membership" and e.did == author.did]
        if memberships:
            out.append(author.delete("space.atbb.membership", memberships[0].rkey))
