"""Posts: the derived state of every post a batch touched, and the counts it moves.

A post's derived columns (state, hidden, suspended, counted, locked, pinned, a reply's
board) are a function of its own row, its root and parent rows, its board's row, its
author's account state and the mod actions on it. A batch re-derives the posts it changed
plus those whose inputs it changed, then moves each count by the difference between the
post's old and new contribution, so the materialised counts always equal a recount.
"Last post" fields are re-read with an indexed top-1 query for the boards and threads
whose contributions moved.

A bulk load (``recount_later``) moves no counts (they are recounted at its end) and,
with ``defer_lookups``, finds no post by a column other than ``uri``, whose indexes a
private load drops: the posts of an author whose account changed, the topics of a stored
board that was deleted or came back and the replies of a stored post that moved wait for
the end of the load (``schema.DEFERRED_POSTS``, ``rederive_deferred``); a reply stored
before its root or parent, or a topic stored while its board is not live, is remembered
under the missing uri (``schema.WAITING_POSTS``) and re-derived by the batch that
stores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from events import collections as c
from projections.apply_records import TABLES, MergedTable, Row, chunks, load_rows, write_rows
from projections.db import Session, placeholders
from projections.schema import BOARD_LAST_POST

POSTS = TABLES[c.POST]

Contribution = tuple[str, str, str, str, str]  # kind, board, thread, did, created_at


@dataclass
class PostInputs:
    """What else in the batch bears on posts."""

    merged: MergedTable | None
    boards_changed: set[str] = field(default_factory=set)
    # those of boards_changed that were not stored before the batch
    boards_added: set[str] = field(default_factory=set)
    account_dids: set[str] = field(default_factory=set)
    # posts to re-derive besides the merged ones (a mod action's subjects, ...)
    rederive: set[str] = field(default_factory=set)
    # posts whose replies are re-derived whatever their own derivation gives (their
    # move was seen by a batch that deferred its replies)
    moved: set[str] = field(default_factory=set)
    # a bulk load leaves every count (boards, per-author tables, topics' aggregates,
    # members' post counts) to one grouped recount at its end (schema.BULK_RECOUNTS)
    recount_later: bool = False
    # a bulk load defers what needs a lookup by another column than uri (module doc)
    defer_lookups: bool = False


@dataclass
class _Deltas:
    boards: dict[str, list[int]] = field(default_factory=dict)
    board_authors: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)
    thread_authors: dict[tuple[str, str], int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    dirty_boards: set[str] = field(default_factory=set)
    dirty_threads: set[str] = field(default_factory=set)

    def add(self, contribution: Contribution | None, sign: int) -> None:
        if contribution is None:
            return
        kind, board, thread, did, _created = contribution
        topic = 1 if kind == "topic" else 0
        counts = self.boards.setdefault(board, [0, 0])
        counts[0] += sign * topic
        counts[1] += sign
        pair = self.board_authors.setdefault((board, did), [0, 0])
        pair[0] += sign * topic
        pair[1] += sign
        if not topic:
            self.threads[thread] = self.threads.get(thread, 0) + sign
            key = (thread, did)
            self.thread_authors[key] = self.thread_authors.get(key, 0) + sign
        self.members[did] = self.members.get(did, 0) + sign
        self.dirty_boards.add(board)
        self.dirty_threads.add(thread)


def contribution(row: Row | None) -> Contribution | None:
    if row is None or not row["counted"]:
        return None
    return (row["kind"], row["board_uri"], row["thread_uri"], row["did"], row["created_at"])


def signature(row: Row | None) -> tuple[Any, ...]:
    """What a post's dependents (its replies, and replies naming it as parent) read."""
    if row is None:
        return ()
    return (row["kind"], row["thread_uri"], row["board_uri"], row["state"], row["did"])


OTHER_COLUMNS = ("uri", "kind", "did", "state", "board_uri", "root_uri")
"""What deriving a reply reads of its root and parent rows (``_derive_reply``)."""


class _Context:
    """Rows and facts the derivation reads, loaded in bulk."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: dict[str, Row] = {}  # posts being derived (new versions)
        self.others: dict[str, Row] = {}  # posts only read (stored versions)
        self.account: dict[str, str] = {}
        self.live_boards: set[str] = set()
        self.known_boards: set[str] = set()

    def post(self, uri: str | None) -> Row | None:
        if uri is None:
            return None
        return self.rows.get(uri) or self.others.get(uri)

    def load_others(self, uris: Iterable[str]) -> None:
        missing = {u for u in uris if u and u not in self.rows and u not in self.others}
        # only what a derivation reads of a root or a parent: not the bodies (measured:
        # whole rows made these reads 7 % of a bulk load's writer)
        self.others.update(load_rows(self.session, POSTS, missing, OTHER_COLUMNS))

    def load_accounts(self, dids: Iterable[str]) -> None:
        missing = sorted({d for d in dids if d not in self.account})
        for did, state in self.session.query_in(
            "SELECT did, account_state FROM members WHERE did {in}", missing
        ):
            self.account[did] = state
        for did in missing:
            self.account.setdefault(did, "active")

    def load_boards(self, uris: Iterable[str]) -> None:
        missing = sorted({u for u in uris if u and u not in self.known_boards})
        self.known_boards.update(missing)
        for (uri,) in self.session.query_in(
            "SELECT uri FROM boards WHERE deleted = 0 AND uri {in}", missing
        ):
            self.live_boards.add(uri)

    def prepare(self, rows: Iterable[Row]) -> None:
        """Load what deriving ``rows`` reads."""
        rows = list(rows)
        refs = set()
        for row in rows:
            if row["kind"] == "reply":
                refs.add(row["root_uri"])
                refs.add(row["parent_uri"])
        self.load_others(refs)
        dids = {row["did"] for row in rows}
        dids.update(r["did"] for u in refs if (r := self.post(u)) is not None)
        self.load_accounts(dids)
        self.load_boards(row["board_uri"] for row in rows if row["kind"] == "topic")


def _mod_flags(session: Session, uris: Iterable[str]) -> dict[str, dict[str, bool]]:
    """Per post: whether the latest live action of each post family is the enforcing
    one ('hide' -> hidden, 'lock' -> locked, 'pin' -> pinned)."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    for subject, family, action, rkey in session.query_in(
        "SELECT subject_uri, family, action, rkey FROM mod_actions"
        " WHERE deleted = 0 AND family IN ('hide', 'lock', 'pin') AND subject_uri {in}",
        sorted(set(uris)),
    ):
        key = (subject, family)
        known = latest.get(key)
        if known is None or rkey > known[0]:
            latest[key] = (rkey, action)
    flags: dict[str, dict[str, bool]] = {}
    for (subject, family), (_rkey, action) in latest.items():
        name = action.removeprefix("space.atbb.modAction.")
        flags.setdefault(subject, {})[family] = name in ("delete", "lock", "pin")
    return flags


def _derive_topic(row: Row, ctx: _Context) -> None:
    if ctx.account.get(row["did"]) == "removed":
        row["state"], row["state_reason"] = "removed", "the author's account is deleted"
    elif row["kind"] is None:
        row["state"], row["state_reason"] = "pending", "only the deletion was observed"
    elif row["board_uri"] in ctx.live_boards:
        row["state"], row["state_reason"] = "ok", None
    else:
        row["state"] = "pending"
        row["state_reason"] = f"board {row['board_uri']} is not known yet"


def _unknown(row: Row | None, ctx: _Context) -> bool:
    return row is None or row["kind"] is None or ctx.account.get(row["did"]) == "removed"


def _derive_reply(row: Row, ctx: _Context) -> None:
    state, reason = "ok", None
    root = ctx.post(row["root_uri"])
    parent = ctx.post(row["parent_uri"])
    if ctx.account.get(row["did"]) == "removed":
        state, reason = "removed", "the author's account is deleted"
    elif row["kind"] is None:
        state, reason = "pending", "only the deletion was observed"
    elif _unknown(root, ctx):
        state, reason = "pending", f"root {row['root_uri']} is not known yet"
    elif root is not None and root["kind"] == "reply":
        state, reason = "invalid", f"root {row['root_uri']} is a reply, not a topic"
    elif root is not None and root["state"] != "ok":
        state, reason = "pending", f"topic {row['root_uri']} is pending"
    elif parent is None or ctx.account.get(parent["did"]) == "removed":
        state, reason = "pending", f"parent {row['parent_uri']} is not known yet"
    elif parent["kind"] is None:
        # known only as a tombstone (its deletion was seen, never its record): its thread
        # cannot be checked and its body is gone anyway, so the reply attaches to its root
        pass
    elif parent["kind"] == "topic" and parent["uri"] != row["root_uri"]:
        state, reason = "invalid", f"parent {row['parent_uri']} is another topic"
    elif parent["kind"] == "reply" and parent["root_uri"] != row["root_uri"]:
        state, reason = "invalid", f"parent {row['parent_uri']} is in another thread"
    row["state"], row["state_reason"] = state, reason
    row["board_uri"] = root["board_uri"] if root is not None and state == "ok" else None


def _finish(row: Row, ctx: _Context) -> None:
    row["suspended"] = 1 if ctx.account.get(row["did"]) == "suspended" else 0
    row["counted"] = (
        1
        if row["state"] == "ok"
        and not row["deleted"]
        and not row["hidden"]
        and not row["suspended"]
        else 0
    )


def _derive(rows: Iterable[Row], ctx: _Context) -> None:
    rows = list(rows)
    for row in rows:
        if row["kind"] != "reply":
            _derive_topic(row, ctx)
    for row in rows:
        if row["kind"] == "reply":
            _derive_reply(row, ctx)
    for row in rows:
        _finish(row, ctx)


def _select_uris(session: Session, sql: str, keys: Iterable[str]) -> set[str]:
    return {uri for (uri,) in session.query_in(sql, sorted(set(keys)))}


def project_posts(session: Session, inputs: PostInputs) -> set[str]:
    """Re-derive and write the posts the batch bears on, move the counts; returns the
    DIDs whose counted posts changed (their member rows need re-deriving)."""
    ctx = _Context(session)
    before: dict[str, Row] = {}
    if inputs.merged is not None:
        before.update(inputs.merged.before)
        ctx.rows.update({uri: dict(row) for uri, row in inputs.merged.after.items()})

    extra = set(inputs.rederive)
    if inputs.defer_lookups:
        _defer(session, "did", inputs.account_dids)
        # a new board's topics, if any, were stored before it: they wait for it
        _defer(session, "board", inputs.boards_changed - inputs.boards_added)
        extra |= _take_waiting(session, inputs.boards_changed)
    else:
        extra |= posts_of(session, inputs.account_dids, inputs.boards_changed)
    extra -= set(ctx.rows)
    stored = load_rows(session, POSTS, extra)
    before.update(stored)
    ctx.rows.update({uri: dict(row) for uri, row in stored.items()})

    flags = _mod_flags(session, ctx.rows)
    for uri, row in ctx.rows.items():
        post_flags = flags.get(uri, {})
        row["hidden"] = int(post_flags.get("hide", False))
        row["locked"] = int(post_flags.get("lock", False))
        row["pinned"] = int(post_flags.get("pin", False))

    ctx.prepare(ctx.rows.values())
    _derive(ctx.rows.values(), ctx)

    moved = {uri for uri, row in ctx.rows.items() if signature(before.get(uri)) != signature(row)}
    if inputs.defer_lookups:
        _defer(session, "post", (uri for uri in moved if uri in before))
        dependents = _take_waiting(session, (uri for uri in moved if uri not in before))
    else:
        dependents = _replies_of(session, moved | inputs.moved)
    dependents -= set(ctx.rows)
    if dependents:
        dependent_rows = load_rows(session, POSTS, dependents)
        before.update(dependent_rows)
        fresh = {uri: dict(row) for uri, row in dependent_rows.items()}
        ctx.rows.update(fresh)
        ctx.prepare(fresh.values())
        # only replies name a root or a parent, so every dependent is a reply
        for row in fresh.values():
            _derive_reply(row, ctx)
            _finish(row, ctx)

    changed = [row for uri, row in ctx.rows.items() if before.get(uri) != row]
    write_rows(session, POSTS, changed, before)
    if inputs.defer_lookups:
        _remember_waiting(session, ctx)
    if inputs.recount_later:
        return set()

    deltas = _Deltas()
    for row in changed:
        old, new = contribution(before.get(row["uri"])), contribution(row)
        if old != new:
            deltas.add(old, -1)
            deltas.add(new, +1)
        if row["kind"] == "topic":
            deltas.dirty_threads.add(row["uri"])
    _write_board_deltas(session, deltas)
    _refresh_boards(session, deltas)
    _write_author_deltas(session, deltas)
    _write_member_deltas(session, deltas)
    _refresh_threads(session, deltas)
    return set(deltas.members)


def posts_of(session: Session, dids: Iterable[str], boards: Iterable[str]) -> set[str]:
    """The posts of ``dids`` and the topics of ``boards``."""
    found = _select_uris(session, "SELECT uri FROM posts WHERE did {in}", dids)
    found |= _select_uris(
        session, "SELECT uri FROM posts WHERE kind = 'topic' AND board_uri {in}", boards)
    return found


def _replies_of(session: Session, uris: set[str]) -> set[str]:
    """Replies naming one of ``uris`` as their root (thread_uri = root_uri), whatever its
    kind (a reply whose root turns out to be a reply must become invalid), or as their
    parent."""
    found = _select_uris(
        session, "SELECT uri FROM posts WHERE kind = 'reply' AND thread_uri {in}", uris)
    found |= _select_uris(
        session, "SELECT uri FROM posts WHERE parent_uri {in} AND parent_uri <> root_uri", uris)
    return found


def _defer(session: Session, kind: str, keys: Iterable[str]) -> None:
    session.execute_values(
        "INSERT INTO deferred_posts (kind, key) VALUES {values}"
        " ON CONFLICT (kind, key) DO NOTHING",
        ((kind, key) for key in sorted(set(keys))),
    )


def _take_waiting(session: Session, uris: Iterable[str]) -> set[str]:
    """The posts waiting for one of ``uris`` (now stored), no longer waiting."""
    wanted = sorted(set(uris))
    # most batches store no board, and in log order nothing is waiting
    if not wanted or session.scalar("SELECT 1 FROM waiting_posts LIMIT 1") is None:
        return set()
    found = session.query_in(
        "SELECT ref_uri, uri FROM waiting_posts WHERE ref_uri {in}", wanted)
    refs = sorted({ref for ref, _uri in found})
    for part in chunks(refs):
        session.execute(
            f"DELETE FROM waiting_posts WHERE ref_uri IN ({placeholders(len(part))})", part)
    return {uri for _ref, uri in found}


def _remember_waiting(session: Session, ctx: _Context) -> None:
    """Replies whose root or parent is not stored yet, and topics whose board is not live,
    wait for it (its batch finds them in ``waiting_posts``); any other reason to be
    pending is resolved by a change deferred to the end of the load (an account, a
    board that existed, a stored post that moved)."""
    waiting = set()
    for row in ctx.rows.values():
        if row["kind"] == "topic" and row["state"] == "pending" and row["board_uri"] \
                and row["board_uri"] not in ctx.live_boards:
            waiting.add((row["board_uri"], row["uri"]))
        elif row["kind"] == "reply" and row["state"] == "pending":
            for ref in (row["root_uri"], row["parent_uri"]):
                if ref is not None and ctx.post(ref) is None:
                    waiting.add((ref, row["uri"]))
    session.execute_values(
        "INSERT INTO waiting_posts (ref_uri, uri) VALUES {values}"
        " ON CONFLICT (ref_uri, uri) DO NOTHING",
        sorted(waiting),
    )


DEFERRED_CHUNK = 500
"""Posts re-derived at a time at the end of a bulk load, with their replies."""


def rederive_deferred(session: Session) -> None:
    """The end of a bulk load, with every index back: re-derive the posts its batches
    left (``deferred_posts``) and the replies of those that moved, a chunk at a time;
    forget the replies still waiting (what they wait for never came: they are rightly
    pending). Counts are recounted after (``schema.BULK_RECOUNTS``)."""
    seeds: dict[str, list[str]] = {"did": [], "board": [], "post": []}
    for kind, key in session.query("SELECT kind, key FROM deferred_posts"):
        seeds[kind].append(key)
    session.execute("DELETE FROM waiting_posts")
    if not any(seeds.values()):
        return
    session.execute("DELETE FROM deferred_posts")
    # an author's posts with their replies, whether or not they move now: a reply stored
    # meanwhile read the account state of its time, which the rows of its root and
    # parent (not re-derived then) do not show
    for part in chunks(sorted(posts_of(session, seeds["did"], [])), DEFERRED_CHUNK):
        uris = set(part)
        project_posts(session, PostInputs(None, rederive=uris, moved=uris, recount_later=True))
    for part in chunks(sorted(posts_of(session, [], seeds["board"])), DEFERRED_CHUNK):
        project_posts(session, PostInputs(None, rederive=set(part), recount_later=True))
    for part in chunks(sorted(seeds["post"]), DEFERRED_CHUNK):
        project_posts(session, PostInputs(None, moved=set(part), recount_later=True))


def _write_board_deltas(session: Session, deltas: _Deltas) -> None:
    session.execute_values(
        "WITH v (uri, topics, posts) AS (VALUES {values})"
        " UPDATE boards SET topic_count = boards.topic_count + v.topics,"
        " post_count = boards.post_count + v.posts FROM v WHERE boards.uri = v.uri",
        ((board, t, p) for board, (t, p) in sorted(deltas.boards.items()) if t or p),
    )


def _write_member_deltas(session: Session, deltas: _Deltas) -> None:
    session.execute_values(
        "WITH v (did, n) AS (VALUES {values})"
        " UPDATE members SET post_count = members.post_count + v.n FROM v"
        " WHERE members.did = v.did",
        sorted((did, n) for did, n in deltas.members.items() if n),
    )


def _write_author_deltas(session: Session, deltas: _Deltas) -> None:
    pairs = sorted((k, v) for k, v in deltas.board_authors.items() if v[0] or v[1])
    session.upsert(
        "board_author_counts",
        ("board_uri", "did", "topics", "posts"),
        ((board, did, t, p) for (board, did), (t, p) in pairs),
        conflict="board_uri, did",
        action="UPDATE SET topics = board_author_counts.topics + excluded.topics,"
        " posts = board_author_counts.posts + excluded.posts",
    )
    # only a decrement can bring a pair to zero
    session.execute_values(
        "WITH v (board_uri, did) AS (VALUES {values})"
        " DELETE FROM board_author_counts WHERE posts = 0"
        " AND (board_uri, did) IN (SELECT board_uri, did FROM v)",
        (key for key, (_t, p) in pairs if p < 0),
    )
    # a thread's reply_count moves with its last reply, in _refresh_threads
    authors = sorted((k, n) for k, n in deltas.thread_authors.items() if n)
    session.upsert(
        "thread_author_counts",
        ("thread_uri", "did", "replies"),
        ((thread, did, n) for (thread, did), n in authors),
        conflict="thread_uri, did",
        action="UPDATE SET replies = thread_author_counts.replies + excluded.replies",
    )
    session.execute_values(
        "WITH v (thread_uri, did) AS (VALUES {values})"
        " DELETE FROM thread_author_counts WHERE replies = 0"
        " AND (thread_uri, did) IN (SELECT thread_uri, did FROM v)",
        (key for key, n in authors if n < 0),
    )


def _refresh_threads(session: Session, deltas: _Deltas) -> None:
    """Re-read the last counted reply of each dirty thread (an indexed top-1 lookup) and
    write the topics whose aggregates moved, with their moved reply counts."""
    threads: list[tuple[Any, ...]] = []
    for part in chunks(sorted(deltas.dirty_threads)):
        for uri, created, count, old_uri, old_at, old_activity, last_uri, last_at in session.query(
            "SELECT t.uri, t.created_at, t.reply_count, t.last_reply_uri, t.last_reply_at,"
            " t.last_activity_at, r.uri, r.created_at FROM posts t"
            " LEFT JOIN posts r ON r.uri = (SELECT x.uri FROM posts x"
            " WHERE x.thread_uri = t.uri AND x.kind = 'reply' AND x.counted = 1"
            " ORDER BY x.kind DESC, x.created_at DESC, x.uri DESC LIMIT 1)"
            f" WHERE t.kind = 'topic' AND t.uri IN ({placeholders(len(part))})",
            part,
        ):
            activity = last_at if last_at is not None and last_at > created else created
            replies = count + deltas.threads.get(uri, 0)
            if (count, old_uri, old_at, old_activity) != (replies, last_uri, last_at, activity):
                threads.append((uri, replies, last_uri, last_at, activity))
    # one write per topic row: on PostgreSQL every UPDATE is a new row version
    session.execute_values(
        "WITH v (uri, replies, last_uri, last_at, activity) AS (VALUES {values})"
        " UPDATE posts SET reply_count = v.replies, last_reply_uri = v.last_uri,"
        " last_reply_at = v.last_at, last_activity_at = v.activity"
        " FROM v WHERE posts.uri = v.uri",
        threads,
    )


def _refresh_boards(session: Session, deltas: _Deltas) -> None:
    """Re-read the last counted post of each dirty board (an indexed top-1 lookup)."""
    for part in chunks(sorted(deltas.dirty_boards)):
        where = f" WHERE uri IN ({placeholders(len(part))})"
        for statement in BOARD_LAST_POST:
            session.execute(statement + where, part)


def mod_subject_changes(merged: MergedTable) -> tuple[set[str], set[str]]:
    """(post uris, DIDs) whose moderation state a batch's mod-action changes may move."""
    posts: set[str] = set()
    dids: set[str] = set()
    for uri in merged.changed():
        for row in (merged.before.get(uri), merged.after[uri]):
            if row is None:
                continue
            if row["family"] == "ban" and row["subject_did"]:
                dids.add(row["subject_did"])
            elif row["family"] and row["subject_uri"]:
                posts.add(row["subject_uri"])
    return posts, dids


def existence_changes(merged: MergedTable) -> set[str]:
    """Records whose existence (a live row) changed in the batch."""
    return {
        uri
        for uri, row in merged.after.items()
        if (before := merged.before.get(uri)) is None or before["deleted"] != row["deleted"]
    }


def by_did(rows: Mapping[str, Row]) -> set[str]:
    return {row["did"] for row in rows.values()}
