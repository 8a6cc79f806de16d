"""The read-model tables of one location (a SQLite file or a PostgreSQL schema).

The same DDL text runs on both dialects: only ``TEXT``, ``BIGINT`` and ``INTEGER``
columns, booleans stored as ``INTEGER`` 0/1 (so ``WHERE counted = 1`` reads the same
everywhere), JSON stored as ``TEXT``; PostgreSQL's text columns are declared byte-wise
(``COLLATE "C"``, ``table_statement``), which SQLite's are by default. Datetimes
(``*_at`` TEXT columns) are normalised by ``projections.timestamps.normalize_datetime``
to UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` so string order is time order on both dialects;
``indexed_at`` columns are the winning event's ``observed_at`` in unix microseconds
(BIGINT).

Conventions shared by every *record table* (one row per at-uri, tombstones included):

- ``uri`` primary key; ``did``, ``rkey``; ``id`` the read model's string id
  (``projections.ids``: the rkey for forum-owned records, ``post_id(uri)`` for posts).
- ``rev``: the newest commit rev (TID text, so string order is rev order) applied to the
  row, create/update or delete. Only a strictly newer rev replaces it.
- ``deleted``: 1 when the newest rev is a delete (a tombstone). Readers skip tombstones
  except where a rule says otherwise (posts: "[deleted by author]").
- ``live_rev``: the rev of the newest NON-delete version seen; the field columns hold
  that version's fields (NULL when no live version was ever seen). Both maxima commute,
  so the row is the same whatever order the events arrive in. On posts the text and
  title of a tombstone are cleared; its structure (kind, board, root, parent, createdAt)
  is kept so it keeps its place in its thread.
- ``cid``: the CID of the ``live_rev`` version (kept on a tombstone; check ``deleted``).

Only events with ``valid`` true count, and forum-owned collections only from FORUM_DID;
everything else lands in ``rejected``. Tables marked *derived* are recomputed by the
projection for the keys a batch touched; nothing else writes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from projections import search_schema

PROJECTION_VERSIONS: Final = """
CREATE TABLE IF NOT EXISTS projection_versions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""
"""Which version of each projection built this location (name -> version). A location
built by another version is rebuilt into a new generation, never migrated in place."""

LOG_SOURCE: Final = """
CREATE TABLE IF NOT EXISTS log_source (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    log_identity TEXT NOT NULL
)"""
"""The identity of the event log this location was built from (``EventLog.identity``):
read models are only ever applied to, or served beside, that log. Not one of ``TABLES``:
it says which log, not what the log holds, so two locations built from two copies of
one forum's events are equal whatever their logs."""

REJECTED: Final = """
CREATE TABLE IF NOT EXISTS rejected (
    position BIGINT PRIMARY KEY,
    uri TEXT NOT NULL,
    did TEXT NOT NULL,
    collection TEXT NOT NULL,
    reason TEXT NOT NULL
)"""
"""Events the projection skipped: ``position`` in the log, the record's at-uri, and a
human-readable ``reason`` (the ingest verdict, "forum-owned record from another DID",
"unknown collection", ...). One row per skipped event."""

FORUM: Final = """
CREATE TABLE IF NOT EXISTS forum (
    uri TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    name TEXT,
    description TEXT,
    created_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""The forum record (``at://FORUM_DID/space.atbb.forum.forum/self``): at most one row.
``indexed_at`` is the observed_at (unix µs) of the event whose rev won."""

CATEGORIES: Final = """
CREATE TABLE IF NOT EXISTS categories (
    uri TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    name TEXT NOT NULL DEFAULT '',
    description TEXT,
    slug TEXT,
    sort_order BIGINT NOT NULL DEFAULT 0,
    created_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""Categories (forum-owned). ``id`` = rkey. ``sort_order`` is the record's sortOrder,
0 when absent; list order is (sort_order, name, uri)."""

BOARDS: Final = """
CREATE TABLE IF NOT EXISTS boards (
    uri TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    name TEXT NOT NULL DEFAULT '',
    description TEXT,
    slug TEXT,
    sort_order BIGINT NOT NULL DEFAULT 0,
    category_uri TEXT,
    category_cid TEXT,
    created_at TEXT,
    indexed_at BIGINT NOT NULL,
    listed INTEGER NOT NULL DEFAULT 0,
    topic_count BIGINT NOT NULL DEFAULT 0,
    post_count BIGINT NOT NULL DEFAULT 0,
    last_post_uri TEXT,
    last_post_thread_uri TEXT,
    last_post_did TEXT,
    last_post_at TEXT
)"""
"""Boards (forum-owned). ``id`` = rkey; ``category_uri``/``category_cid`` the category
strongRef. Derived: ``listed`` = 1 when the board is live and its category row exists and
is live (else the board is pending: not listed, shown once the category arrives).
``topic_count`` / ``post_count`` (topics + replies) count *counted* posts (see posts)
whose ``board_uri`` is this board; ``last_post_*`` is the counted post with the greatest
(created_at, uri) there: its uri, its thread (topic) uri, author DID, created_at. Bans are
NOT applied here (they expire): subtract ``board_author_counts`` of the authors banned
now, and re-query the last post when its author is banned now."""

POSTS: Final = """
CREATE TABLE IF NOT EXISTS posts (
    uri TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    kind TEXT,
    title TEXT,
    text TEXT,
    html TEXT,
    board_uri TEXT,
    root_uri TEXT,
    parent_uri TEXT,
    thread_uri TEXT,
    created_at TEXT,
    updated_at TEXT,
    langs TEXT,
    indexed_at BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    state_reason TEXT,
    hidden INTEGER NOT NULL DEFAULT 0,
    suspended INTEGER NOT NULL DEFAULT 0,
    counted INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    reply_count BIGINT NOT NULL DEFAULT 0,
    last_reply_uri TEXT,
    last_reply_at TEXT,
    last_activity_at TEXT
)"""
"""Posts: topics and replies, tombstones included. ``id`` = ``post_id(uri)``.

Record fields: ``kind`` 'topic' (no ``reply``) or 'reply' (NULL on a tombstone whose
live version was never seen), ``title``/``text`` (NULL on a tombstone), ``html``
(``text`` rendered and sanitised by ``projections.post_html`` when the version was
applied; NULL with no text), ``board_uri``
(topic: the record's board; reply: derived, the root topic's board), ``root_uri`` /
``parent_uri`` (replies only), ``thread_uri`` (topic: its own uri; reply: root_uri),
``created_at`` (the record's, else the time of its TID rkey), ``updated_at``, ``langs``
(JSON array text).

Derived: ``state`` and ``state_reason``:
- 'removed': the author's account is deleted (the post is treated as absent);
- topic: 'pending' while its board row is missing or a tombstone; else 'ok' (a topic
  record without a board or a title is rejected at fold time, see ``rejected``);
- reply: 'pending' while its root is missing, structure-less, removed or a pending
  topic, or its parent is missing or removed; 'invalid' when the root is a reply, the
  parent is another topic, or the parent is a reply of another thread; else 'ok' (a
  parent known only as a structure-less tombstone does not block: the reply attaches);
- a structure-less tombstone: 'pending'.
``hidden`` = the latest (greatest rkey) live delete/undelete modAction on this post is
delete; ``locked``/``pinned`` likewise for lock/unlock and pin/unpin (topics).
``suspended`` = the author's account is takendown, suspended or deactivated.
``counted`` = state 'ok' and not deleted, not hidden, not suspended (bans are applied at
query time). A post's own flags decide; a reply is not uncounted because its topic is.
Topic aggregates (topics only): ``reply_count`` counted replies of the thread,
``last_reply_uri``/``last_reply_at`` the counted reply with greatest (created_at, uri),
``last_activity_at`` = max(created_at, last_reply_at)."""

THREAD_AUTHOR_COUNTS: Final = """
CREATE TABLE IF NOT EXISTS thread_author_counts (
    thread_uri TEXT NOT NULL,
    did TEXT NOT NULL,
    replies BIGINT NOT NULL,
    PRIMARY KEY (thread_uri, did)
)"""
"""Derived: counted replies per (topic, author); rows with 0 are deleted. Query time
subtracts the banned authors' rows from ``posts.reply_count``."""

BOARD_AUTHOR_COUNTS: Final = """
CREATE TABLE IF NOT EXISTS board_author_counts (
    board_uri TEXT NOT NULL,
    did TEXT NOT NULL,
    topics BIGINT NOT NULL,
    posts BIGINT NOT NULL,
    PRIMARY KEY (board_uri, did)
)"""
"""Derived: counted topics and counted posts (topics + replies) per (board, author); rows
with 0 posts are deleted. Query time subtracts banned authors from the board counts."""

MEMBERSHIPS: Final = """
CREATE TABLE IF NOT EXISTS memberships (
    uri TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    forum_uri TEXT,
    forum_cid TEXT,
    created_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""Membership records (member-owned). Only a live one whose ``forum_uri`` is
``at://FORUM_DID/space.atbb.forum.forum/self`` makes its author a member."""

MEMBERS: Final = """
CREATE TABLE IF NOT EXISTS members (
    did TEXT PRIMARY KEY,
    handle TEXT,
    handle_seq BIGINT,
    account_active INTEGER NOT NULL DEFAULT 1,
    account_status TEXT,
    account_seq BIGINT,
    account_state TEXT NOT NULL DEFAULT 'active',
    is_member INTEGER NOT NULL DEFAULT 0,
    membership_uri TEXT,
    joined_at TEXT,
    first_post_at TEXT,
    post_count BIGINT NOT NULL DEFAULT 0
)"""
"""One row per DID the forum knows of (identity, account, membership, post, reaction,
role assignment). ``handle``: of the IdentityChanged with the greatest seq (None until
known, or when that event had none); ``account_*``: the AccountStatusChanged with the
greatest seq. Derived: ``account_state`` 'removed' (not active, status deleted),
'suspended' (not active, status takendown/suspended/deactivated or none) or 'active';
``membership_uri``/``joined_at`` the live forum membership with the earliest
(created_at, uri); ``first_post_at`` the earliest created_at of their counted posts;
``post_count`` their counted posts (bans applied at query time); ``is_member`` = not
removed and (a live membership or post_count > 0); ``joined_at`` falls back to
``first_post_at``."""

ROLES: Final = """
CREATE TABLE IF NOT EXISTS roles (
    uri TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    name TEXT NOT NULL DEFAULT '',
    description TEXT,
    permissions TEXT NOT NULL DEFAULT '[]',
    priority BIGINT,
    created_at TEXT,
    indexed_at BIGINT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0
)"""
"""Roles (forum-owned). ``permissions`` JSON array of full tokens
(``space.atbb.permission.*`` or ``*``). Derived: ``is_default`` = 1 on the one live role
named "Member" (case-insensitive; the smallest rkey if several), the role of every DID
without an assignment."""

ROLE_ASSIGNMENTS: Final = """
CREATE TABLE IF NOT EXISTS role_assignments (
    uri TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    subject_did TEXT,
    role_uri TEXT,
    role_cid TEXT,
    created_by TEXT,
    created_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""Role assignments (forum-owned, rkey = the member's DID)."""

MEMBER_ROLES: Final = """
CREATE TABLE IF NOT EXISTS member_roles (
    did TEXT PRIMARY KEY,
    role_uri TEXT,
    permissions TEXT NOT NULL,
    authority BIGINT
)"""
"""Derived: the effective role of every DID with a live assignment to a live role, and of
FORUM_DID (role_uri NULL, permissions '["*"]', authority -1). ``authority`` = the role's
priority (lower = more). A DID with no row here holds the default role
(``roles.is_default = 1``) if there is one, else no permission."""

MOD_ACTIONS: Final = """
CREATE TABLE IF NOT EXISTS mod_actions (
    uri TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    action TEXT,
    family TEXT,
    subject_did TEXT,
    subject_uri TEXT,
    subject_cid TEXT,
    reason TEXT,
    created_by TEXT,
    created_at TEXT,
    expires_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""The mod log (forum-owned modAction records). ``action`` the full token
(``space.atbb.modAction.ban`` ...); ``family`` groups an action with its reversal:
'ban' (ban/unban), 'lock', 'pin', 'hide' (delete/undelete); NULL for an unknown action.
``subject_did`` for user subjects, ``subject_uri``/``subject_cid`` for post subjects.
The latest live action per (family, subject) = the greatest rkey."""

BANS: Final = """
CREATE TABLE IF NOT EXISTS bans (
    did TEXT PRIMARY KEY,
    action_uri TEXT NOT NULL,
    expires_at TEXT,
    created_at TEXT,
    reason TEXT
)"""
"""Derived: the DIDs whose latest live ban/unban action is a ban, with that action.
A ban is in force at ``now`` iff ``expires_at`` IS NULL or ``expires_at`` > now
(normalised text compare). The projection never reads the clock."""

REACTIONS: Final = """
CREATE TABLE IF NOT EXISTS reactions (
    uri TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    subject_uri TEXT,
    subject_cid TEXT,
    reaction TEXT,
    created_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""Reaction records (member-owned)."""

REACTION_COUNTS: Final = """
CREATE TABLE IF NOT EXISTS reaction_counts (
    post_uri TEXT NOT NULL,
    reaction TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (post_uri, reaction)
)"""
"""Derived: distinct reactor DIDs per (post, reaction) among live reactions whose
author's account_state is 'active'; rows with 0 are deleted."""

PENDING_RECOUNTS: Final = """
CREATE TABLE IF NOT EXISTS pending_recounts (
    name TEXT PRIMARY KEY,
    argument TEXT
)"""
"""Derived tables a bulk load has left to recount in full (``BULK_RECOUNTS``): a row is
written by every batch that skips the table's refresh, and deleted in the transaction
that recounts it (the end of the load, or, after a load was killed, the next batch the
projection applies). ``argument`` is bound to every ``?`` of the recount's statements."""

DEFERRED_POSTS: Final = """
CREATE TABLE IF NOT EXISTS deferred_posts (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)"""
"""What a bulk load left the posts to re-derive at its end, because finding the posts
concerned takes a lookup by a column other than ``uri`` (whose index a private load
drops, ``LOAD_DROPPED_INDEXES``): ``kind`` 'did' (the posts of an author whose account
state changed, with the replies of each), 'board' (the topics of a stored board that
was deleted or came back), 'post' (the replies of a stored post whose signature moved).
Written by the batches, read and emptied in the transaction that recounts
(``projections.apply_posts.rederive_deferred``)."""

WAITING_POSTS: Final = """
CREATE TABLE IF NOT EXISTS waiting_posts (
    ref_uri TEXT NOT NULL,
    uri TEXT NOT NULL,
    PRIMARY KEY (ref_uri, uri)
)"""
"""During a bulk load: replies stored before their root or parent (``ref_uri``) was, and
topics stored while their board was not live, so the batch that stores it re-derives
them without a lookup by ``thread_uri``, ``parent_uri`` or ``board_uri``. A row is
deleted when its ``ref_uri`` arrives; the rest at the end of the load. Empty outside
bulk loads."""

THEMES: Final = """
CREATE TABLE IF NOT EXISTS themes (
    uri TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    did TEXT NOT NULL,
    rkey TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    name TEXT NOT NULL DEFAULT '',
    color_scheme TEXT,
    tokens TEXT NOT NULL DEFAULT '{}',
    css_overrides TEXT,
    font_urls TEXT NOT NULL DEFAULT '[]',
    created_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""Themes (forum-owned), latest version. ``tokens`` JSON object, ``font_urls`` JSON
array. ``cid`` is the latest version's CID (the ETag)."""

THEME_VERSIONS: Final = """
CREATE TABLE IF NOT EXISTS theme_versions (
    uri TEXT NOT NULL,
    cid TEXT NOT NULL,
    rev TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    color_scheme TEXT,
    tokens TEXT NOT NULL DEFAULT '{}',
    css_overrides TEXT,
    font_urls TEXT NOT NULL DEFAULT '[]',
    created_at TEXT,
    PRIMARY KEY (uri, cid)
)"""
"""Every live version of every theme ever seen, by (uri, cid), so a policy entry can pin
a cid. ``rev`` = the smallest rev that carried this cid."""

THEME_POLICY: Final = """
CREATE TABLE IF NOT EXISTS theme_policy (
    uri TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    rev TEXT NOT NULL,
    live_rev TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cid TEXT,
    available_themes TEXT NOT NULL DEFAULT '[]',
    default_light_theme TEXT,
    default_dark_theme TEXT,
    allow_user_choice INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT,
    indexed_at BIGINT NOT NULL
)"""
"""The themePolicy singleton (rkey self, forum-owned). ``available_themes`` JSON array
of ``{"uri": ..., "cid": ...?}`` as in the record."""

NOTIFICATIONS: Final = """
CREATE TABLE IF NOT EXISTS notifications (
    recipient TEXT NOT NULL,
    post_uri TEXT NOT NULL,
    reason TEXT NOT NULL,
    author_did TEXT NOT NULL,
    PRIMARY KEY (recipient, post_uri)
)"""
"""*The notifications projection's* (``projections.notifications``): one row per post
and member it concerns. ``recipient`` is a DID, or ``@handle`` (lower case) for a
mention; ``reason`` one of reply-post, reply-topic, quote, mention. A function of the
posts as they are (no log position: two logs of one forum build the same rows); shown in
the order of the posts' times."""

TABLES: Final[dict[str, str]] = {
    "projection_versions": PROJECTION_VERSIONS,
    "rejected": REJECTED,
    "forum": FORUM,
    "categories": CATEGORIES,
    "boards": BOARDS,
    "posts": POSTS,
    "thread_author_counts": THREAD_AUTHOR_COUNTS,
    "board_author_counts": BOARD_AUTHOR_COUNTS,
    "memberships": MEMBERSHIPS,
    "members": MEMBERS,
    "roles": ROLES,
    "role_assignments": ROLE_ASSIGNMENTS,
    "member_roles": MEMBER_ROLES,
    "mod_actions": MOD_ACTIONS,
    "bans": BANS,
    "reactions": REACTIONS,
    "reaction_counts": REACTION_COUNTS,
    "pending_recounts": PENDING_RECOUNTS,
    "deferred_posts": DEFERRED_POSTS,
    "waiting_posts": WAITING_POSTS,
    "themes": THEMES,
    "theme_versions": THEME_VERSIONS,
    "theme_policy": THEME_POLICY,
    "notifications": NOTIFICATIONS,
    **search_schema.TABLES,
}
"""Every read-model table by name, in creation order (the search projection's last)."""

INDEXES: Final[tuple[str, ...]] = (
    "CREATE UNIQUE INDEX IF NOT EXISTS categories_id ON categories (id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS boards_id ON boards (id)",
    "CREATE INDEX IF NOT EXISTS boards_category ON boards (category_uri)",
    # not unique: the id's DID digest is short, and a crafted collision must not stop
    # the projection (a query by id then sees both rows and can tell them by uri)
    "CREATE INDEX IF NOT EXISTS posts_id ON posts (id)",
    # thread page: replies of a thread in (created_at, uri) order; also rank in thread.
    # Covering for a topic page's count and ranking (the visibility columns too), so a
    # page reads the table's rows of its own replies only, not every reply's body
    "CREATE INDEX IF NOT EXISTS posts_thread"
    " ON posts (thread_uri, kind, created_at, uri, state, hidden, suspended, did)",
    # children by parent, for the replies whose parent is not their root (the others
    # are found through posts_thread): most replies never enter it
    "CREATE INDEX IF NOT EXISTS posts_parent ON posts (parent_uri) WHERE parent_uri <> root_uri",
    # board page: pinned first, then last activity; partial (topics only) so the many
    # replies never enter it: a query uses it when it says `kind = 'topic'`
    "CREATE INDEX IF NOT EXISTS posts_board_topics"
    " ON posts (board_uri, pinned, last_activity_at, uri) WHERE kind = 'topic'",
    # last post of a board (also the fallback when its author is banned now)
    "CREATE INDEX IF NOT EXISTS posts_board_last ON posts (board_uri, counted, created_at, uri)",
    "CREATE INDEX IF NOT EXISTS posts_author ON posts (did, counted, created_at)",
    "CREATE INDEX IF NOT EXISTS board_author_counts_did ON board_author_counts (did)",
    "CREATE INDEX IF NOT EXISTS thread_author_counts_did ON thread_author_counts (did)",
    "CREATE INDEX IF NOT EXISTS memberships_did ON memberships (did)",
    "CREATE INDEX IF NOT EXISTS members_handle ON members (handle)",
    # the members list: is_member = 1, paged by (joined_at, did)
    "CREATE INDEX IF NOT EXISTS members_list ON members (is_member, joined_at, did)",
    "CREATE UNIQUE INDEX IF NOT EXISTS roles_id ON roles (id)",
    "CREATE INDEX IF NOT EXISTS role_assignments_role ON role_assignments (role_uri)",
    "CREATE INDEX IF NOT EXISTS role_assignments_subject ON role_assignments (subject_did)",
    "CREATE UNIQUE INDEX IF NOT EXISTS mod_actions_id ON mod_actions (id)",
    "CREATE INDEX IF NOT EXISTS mod_actions_post ON mod_actions (subject_uri, family, rkey)",
    "CREATE INDEX IF NOT EXISTS mod_actions_did ON mod_actions (subject_did, family, rkey)",
    "CREATE INDEX IF NOT EXISTS mod_actions_log ON mod_actions (deleted, rkey)",
    "CREATE INDEX IF NOT EXISTS reactions_subject ON reactions (subject_uri, reaction, did)",
    "CREATE INDEX IF NOT EXISTS reactions_did ON reactions (did)",
    "CREATE UNIQUE INDEX IF NOT EXISTS themes_id ON themes (id)",
    # a member's notifications, newest first
    "CREATE INDEX IF NOT EXISTS notifications_post ON notifications (post_uri)",
)
"""Secondary indexes, created with the tables."""

READ_SIDE_INDEXES: Final[frozenset[str]] = frozenset(
    {
        "posts_id",
        "posts_board_topics",
        "members_handle",
        "members_list",
        "mod_actions_log",
        "board_author_counts_did",
        "thread_author_counts_did",
    }
)
"""Indexes only the queries read, never the projections: a bulk load into a fresh
location drops them and builds them once at its end (one sorted build instead of an
entry moved on every batch). Unique indexes are not among them: a violation must stop
the write that causes it, not the index build at the end."""

LOAD_DROPPED_INDEXES: Final[frozenset[str]] = READ_SIDE_INDEXES | {
    "posts_thread",
    "posts_parent",
    "posts_author",
    "posts_board_last",
    "reactions_subject",
    "reactions_did",
}
"""What a *private* bulk load (``ReadModelStore.bulk_load(private=True)``: nothing reads
the location meanwhile) drops and builds at its end: the read side's indexes and those
the projection reads only to find the posts a change bears on, which a bulk load defers
(``DEFERRED_POSTS``, ``WAITING_POSTS``) or recounts (``BULK_RECOUNTS``). Each entry
costs a random insert per row into a B-tree larger than the page cache: on a 1M-event
SQLite load, dropping these four posts indexes and the two reactions ones cut the load
from 78.4 s to 61.2 s (the file's reads and writes of evicted index pages were a fifth
of its time). Only the primary keys stay."""


MEMBER_DERIVATION: Final[tuple[str, str]] = (
    # the one parameter: the forum's at-uri
    "UPDATE members SET"
    " first_post_at = (SELECT MIN(p.created_at) FROM posts p"
    " WHERE p.did = members.did AND p.counted = 1),"
    " membership_uri = (SELECT m.uri FROM memberships m"
    " WHERE m.did = members.did AND m.deleted = 0 AND m.forum_uri = ?"
    " ORDER BY COALESCE(m.created_at, ''), m.uri LIMIT 1)",
    "UPDATE members SET"
    " joined_at = COALESCE((SELECT m.created_at FROM memberships m"
    " WHERE m.uri = members.membership_uri), first_post_at),"
    " is_member = CASE WHEN account_state <> 'removed'"
    " AND (membership_uri IS NOT NULL OR post_count > 0) THEN 1 ELSE 0 END",
)
"""The members' derived columns, in this order, for every member; a refresh of some
members appends its own ``WHERE did IN (...)``."""

REACTION_COUNT: Final = (
    "INSERT INTO reaction_counts (post_uri, reaction, count)"
    " SELECT r.subject_uri, r.reaction, COUNT(DISTINCT r.did)"
    " FROM {reactions} JOIN members m ON m.did = r.did"
    " WHERE r.deleted = 0 AND m.account_state = 'active'"
    " AND r.subject_uri IS NOT NULL AND r.reaction IS NOT NULL"
    " GROUP BY r.subject_uri, r.reaction"
)
"""The reaction counts of the reactions ``{reactions}`` names (aliased ``r``): the whole
table, or a refresh's join of its keys with it."""


def _recount_reactions(reactions: str) -> tuple[str, str]:
    """The full recount of the reaction counts from ``reactions`` (``REACTION_COUNT``)."""
    return ("DELETE FROM reaction_counts", REACTION_COUNT.format(reactions=reactions))

RECOUNT_SOURCE: Final[tuple[str, str]] = (
    "SELECT uri, kind, counted, thread_uri, board_uri, did, created_at FROM posts"
    " WHERE counted = 1 OR kind = 'topic'",
    "DROP TABLE recount_posts",
)
"""The posts' recounts read a narrow copy, ``recount_posts``, of the columns they group
by (made by ``recount_source_statement`` from this query, then dropped, around them):
``posts`` rows carry their bodies (about 1 KB), and grouping them directly cost a random
row read per index entry or a sort of whole rows. On a 1M-event generation (SQLite) the
four posts recounts took 15.0 to 15.7 s from ``posts`` and 8.0 to 8.3 s from this copy,
which takes 0.5 s to make. Topics are kept whatever their counting: each gets its
aggregates."""


def recount_source_statement(*, shared: bool) -> str:
    """Make ``recount_posts``: a temporary table (its session's own), or with ``shared``
    (PostgreSQL) an unlogged one, which the parallel sessions of a private load's end all
    read (``projections.load_end``); the load's location is discarded if it fails."""
    kind = "UNLOGGED" if shared else "TEMP"
    return f"CREATE {kind} TABLE recount_posts AS {RECOUNT_SOURCE[0]}"

BOARD_LAST_POST: Final[tuple[str, str]] = (
    "UPDATE boards SET last_post_uri = (SELECT p.uri FROM posts p"
    " WHERE p.board_uri = boards.uri AND p.counted = 1"
    " ORDER BY p.created_at DESC, p.uri DESC LIMIT 1)",
    "UPDATE boards SET"
    " last_post_thread_uri = (SELECT p.thread_uri FROM posts p"
    " WHERE p.uri = boards.last_post_uri),"
    " last_post_did = (SELECT p.did FROM posts p WHERE p.uri = boards.last_post_uri),"
    " last_post_at = (SELECT p.created_at FROM posts p"
    " WHERE p.uri = boards.last_post_uri)",
)
"""The boards' last counted post (an indexed top-1 read each), then its thread, author
and time, in this order, for every board; a refresh of some boards appends its own
``WHERE uri IN (...)``."""

_THREADS_UPDATE: Final = (
    "UPDATE posts SET reply_count = COALESCE(x.replies, 0), last_reply_uri = x.last_uri,"
    " last_reply_at = x.last_at, last_activity_at = CASE"
    " WHEN x.last_at IS NOT NULL AND x.last_at > x.created_at THEN x.last_at"
    " ELSE x.created_at END"
    " FROM (SELECT t.uri AS uri, t.created_at AS created_at, r.replies AS replies,"
)
"""The start of the topics' recount (``BULK_RECOUNTS["threads"]``), both forms: what
follows picks each topic's last reply."""

BULK_RECOUNTS: Final[dict[str, tuple[str, ...]]] = {
    "reaction_counts": _recount_reactions("reactions r"),
    # the topics' aggregates, by the rules of projections.apply_posts._refresh_threads;
    # the longest of the recounts, so that parallel sessions start it first
    "threads": (
        _THREADS_UPDATE +
        " r.uri AS last_uri, r.created_at AS last_at FROM recount_posts t LEFT JOIN"
        " (SELECT thread_uri, uri, created_at,"
        " COUNT(*) OVER (PARTITION BY thread_uri) AS replies, ROW_NUMBER() OVER"
        " (PARTITION BY thread_uri ORDER BY created_at DESC, uri DESC) AS rank"
        " FROM recount_posts WHERE kind = 'reply' AND counted = 1) r"
        " ON r.thread_uri = t.uri AND r.rank = 1 WHERE t.kind = 'topic') x"
        " WHERE posts.uri = x.uri",
    ),
    # the rules of projections.apply_posts._write_author_deltas (rows with 0 never exist)
    "thread_author_counts": (
        "DELETE FROM thread_author_counts",
        "INSERT INTO thread_author_counts (thread_uri, did, replies)"
        " SELECT thread_uri, did, COUNT(*) FROM recount_posts"
        " WHERE counted = 1 AND kind = 'reply' GROUP BY thread_uri, did",
    ),
    "board_author_counts": (
        "DELETE FROM board_author_counts",
        "INSERT INTO board_author_counts (board_uri, did, topics, posts)"
        " SELECT board_uri, did, SUM(CASE WHEN kind = 'topic' THEN 1 ELSE 0 END), COUNT(*)"
        " FROM recount_posts WHERE counted = 1 GROUP BY board_uri, did",
    ),
    # after board_author_counts, which it sums (recounts run in this dict's order)
    "boards": (
        "UPDATE boards SET topic_count = COALESCE((SELECT SUM(a.topics)"
        " FROM board_author_counts a WHERE a.board_uri = boards.uri), 0),"
        " post_count = COALESCE((SELECT SUM(a.posts)"
        " FROM board_author_counts a WHERE a.board_uri = boards.uri), 0)",
        *BOARD_LAST_POST,
    ),
    # the argument is the forum's at-uri; post_count first: is_member reads it. Summed
    # from board_author_counts (every counted post has a board): a count per member of
    # its posts cost a probe of each in the posts' author index, on PostgreSQL with a
    # heap fetch each (a fresh table has no visibility map): 4.6 s at 1M events, 0.24 s
    # this way
    "members": (
        "UPDATE members SET post_count = COALESCE(x.posts, 0) FROM members m LEFT JOIN"
        " (SELECT did, SUM(posts) AS posts FROM board_author_counts GROUP BY did) x"
        " ON x.did = m.did WHERE members.did = m.did",
        *MEMBER_DERIVATION,
    ),
}
"""Derived tables and columns that a bulk load recounts once, in full, at its end, in
this order, instead of batch by batch: a refresh per batch of the keys it touched is a
random probe per key, which grows with the tables (the reaction counts alone: 8 s of a
575k-event replay), and for the topics' aggregates a top-1 read and a rewrite of every
topic row a batch replied to (on PostgreSQL a new version of a ~1 KB row each), where
one grouped pass takes a fraction of it. Nothing the projection reads while it loads
comes from these: members' ``post_count`` and derived columns, the boards' counts and
last posts, the topics' ``reply_count``/``last_reply_*``/``last_activity_at``, the
per-author and reaction counts. The statements that name ``recount_posts`` read
``RECOUNT_SOURCE``. In one transaction they run in this order; over parallel sessions
(``projections.load_end``) each follows only what ``RECOUNT_AFTER`` names."""

SQLITE_RECOUNTS: Final[dict[str, tuple[str, ...]]] = {
    # the whole table read in its order and grouped by a sort, not walked in the order
    # of its subject index with a random row read per entry (measured on a 1M-event
    # generation: 1.5 s → 0.9 s, the same rows)
    "reaction_counts": _recount_reactions("reactions r NOT INDEXED"),
    # the topics' aggregates as one grouping, not a window ranking every reply: the last
    # reply is the greatest ``created_at || char(1) || uri``, which orders as (created_at,
    # uri) under SQLite's byte-wise comparison (char(1) sorts below every character of
    # both, and every counted post has a created_at); measured on a 1M-event generation:
    # 1.3 s → 0.64 s, the same rows. PostgreSQL keeps the window: the grouping, which
    # its byte-wise columns (ADR 0010) would allow, measured 2.4 → 2.1 s there.
    "threads": (
        _THREADS_UPDATE +
        " substr(r.last, instr(r.last, char(1)) + 1) AS last_uri,"
        " substr(r.last, 1, instr(r.last, char(1)) - 1) AS last_at"
        " FROM recount_posts t LEFT JOIN"
        " (SELECT thread_uri, COUNT(*) AS replies, MAX(created_at || char(1) || uri) AS last"
        " FROM recount_posts WHERE kind = 'reply' AND counted = 1 GROUP BY thread_uri) r"
        " ON r.thread_uri = t.uri WHERE t.kind = 'topic') x"
        " WHERE posts.uri = x.uri",
    ),
}
"""Recounts of ``BULK_RECOUNTS`` that SQLite runs in a form of its own (same rows)."""


def recount_statements(name: str, dialect: str) -> tuple[str, ...]:
    """The statements of the recount ``name`` of ``BULK_RECOUNTS`` in ``dialect``."""
    if dialect == "sqlite" and name in SQLITE_RECOUNTS:
        return SQLITE_RECOUNTS[name]
    return BULK_RECOUNTS[name]


RECOUNT_AFTER: Final[dict[str, tuple[str, ...]]] = {
    "boards": ("board_author_counts",),
    "members": ("board_author_counts",),
}
"""The recounts of ``BULK_RECOUNTS`` that read what another one writes: they follow it
(when both are pending). Every recount follows the re-derivation of the deferred posts."""

RECOUNTS_WITHOUT_POSTS: Final[frozenset[str]] = frozenset({"reaction_counts"})
"""The recounts of ``BULK_RECOUNTS`` that read no posts (the reactions and the members'
account states): they need not follow the re-derivation of the deferred posts, which
every other one follows."""


def recounted_table(name: str) -> str:
    """The table the recount ``name`` of ``BULK_RECOUNTS`` rewrites (the topics'
    aggregates are columns of ``posts``)."""
    return "posts" if name == "threads" else name


def analyze_statement(tables: Iterable[str]) -> str:
    """PostgreSQL's ``ANALYZE`` of ``tables``, named: a bare ``ANALYZE`` would visit every
    schema of the database."""
    return "ANALYZE " + ", ".join(tables)


def index_name(statement: str) -> str:
    """The index a ``CREATE [UNIQUE] INDEX IF NOT EXISTS name ON ...`` statement makes."""
    return statement.split(" IF NOT EXISTS ", 1)[1].split(" ", 1)[0]


def index_table(statement: str) -> str:
    """The table a ``CREATE [UNIQUE] INDEX IF NOT EXISTS name ON table ...`` indexes."""
    return statement.split(" ON ", 1)[1].split(" ", 1)[0]


RECOUNTED_KEYS: Final[dict[str, str]] = {
    "reaction_counts": "post_uri, reaction",
    "thread_author_counts": "thread_uri, did",
    "board_author_counts": "board_uri, did",
}
"""The primary keys (their columns) of the tables that a bulk load's recounts refill
whole (``BULK_RECOUNTS``; nothing writes them while it loads). A private PostgreSQL load
drops them at its start and adds each back once its table is recounted: one sort of the
final rows, where a recount inserting into the key wrote each entry and its log record
(measured at 1M events: the author counts per thread 3.5 s → 2.1 s, per board 2.0 s →
0.9 s). SQLite cannot drop a table's primary key."""


def drop_key_statement(table: str) -> str:
    """Drop the primary key of ``table`` (one of ``RECOUNTED_KEYS``; PostgreSQL)."""
    return f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_pkey"


def add_key_statement(table: str) -> str:
    """Add back the primary key of ``table`` (one of ``RECOUNTED_KEYS``; PostgreSQL)."""
    return f"ALTER TABLE {table} ADD PRIMARY KEY ({RECOUNTED_KEYS[table]})"


def load_dropped_index_statements(*, private: bool) -> list[str]:
    """The indexes a bulk load drops and builds at its end (``LOAD_DROPPED_INDEXES``
    when ``private``, else ``READ_SIDE_INDEXES``), in creation order."""
    dropped = LOAD_DROPPED_INDEXES if private else READ_SIDE_INDEXES
    return [s for s in INDEXES if index_name(s) in dropped]

DERIVED_TABLES: Final[frozenset[str]] = frozenset(
    {
        "thread_author_counts",
        "board_author_counts",
        "member_roles",
        "bans",
        "reaction_counts",
    }
)
"""Tables holding only derived rows (recomputed from the record tables)."""


_TEXT_COLUMN = re.compile(r"^(\s+\w+ TEXT)\b", re.MULTILINE)


def table_statement(ddl: str, dialect: str) -> str:
    """``ddl`` (a ``CREATE TABLE`` of ``TABLES``) for ``dialect``: on PostgreSQL its
    ``TEXT`` columns compare byte-wise (``COLLATE "C"``), as SQLite's always do. Every
    text column is an identifier, a normalised time, a keyword or a body; what readers
    order by is compared by code point on both dialects anyway
    (``queries_common.Context.text_order``), which the database's locale collation could
    not serve from an index; and a locale comparison costs several times a byte-wise one
    in every key lookup, sort, grouping and index build (measured at 1M events: ADR
    0010)."""
    if dialect != "postgresql":
        return ddl
    return _TEXT_COLUMN.sub(r'\1 COLLATE "C"', ddl)


def all_statements(dialect: str = "sqlite") -> list[str]:
    """The DDL of a fresh location in ``dialect``, tables first, then indexes."""
    return [*(table_statement(ddl, dialect) for ddl in TABLES.values()),
            table_statement(LOG_SOURCE, dialect), *INDEXES,
            *search_schema.statements(dialect)]
