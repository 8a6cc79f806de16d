"""The read-model queries, scenario by scenario, on SQLite and PostgreSQL.

Each test writes a small forum as repos would (tests/fakes.py), projects it with the real
forum projection and asks the queries; the property tests (test_properties.py) cover the
general case against a reference model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from events.model import AccountStatusChanged, IdentityChanged, LogEvent, Logged, RecordEvent
from projections.forum import AppviewProjection, ForumProjection
from projections.ids import post_id
from projections.queries import Queries
from projections.readmodel import ReadModelStore, open_read_models
from projections.views import DELETED_TEXT, Viewer
from tests.conftest import Backend
from tests.fakes import Repo, TidClock

FORUM = "did:plc:forumforumforumforum2345"
ALICE = "did:plc:alicealicealicealice2345"
BOB = "did:plc:bobbobbobbobbobbobbob234"
CAROL = "did:plc:carolcarolcarolcarol2345"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ANON = Viewer.anonymous()
MOD = Viewer(CAROL, frozenset({"space.atbb.permission.moderatePosts"}))

CATEGORY = "space.atbb.forum.category"
BOARD = "space.atbb.forum.board"
POST = "space.atbb.post"
ACTION = "space.atbb.modAction"
ROLE = "space.atbb.forum.role"
ASSIGNMENT = "space.atbb.forum.roleAssignment"
THEME = "space.atbb.forum.theme"
PERM = "space.atbb.permission."
E = TypeVar("E", bound=LogEvent)


def at(minute: int) -> str:
    """A createdAt ``minute`` minutes after 11:00 on the test day."""
    return (NOW - timedelta(hours=1) + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ref(event: RecordEvent) -> dict[str, Any]:
    return {"uri": event.uri, "cid": event.cid}


class World:
    """A forum being written: repos append events; ``apply`` projects what is new."""

    def __init__(self, store: ReadModelStore, *followers: AppviewProjection) -> None:
        """``followers``: projections applied after the forum one (search,
        notifications), each batch; the log applied is kept in ``log``."""
        self.clock = TidClock(start_micros=int((NOW - timedelta(days=1)).timestamp() * 1e6))
        self.forum = Repo(FORUM, self.clock)
        self.members = {did: Repo(did, self.clock) for did in (ALICE, BOB, CAROL)}
        self.projection = ForumProjection(FORUM)
        self.projection.attach(store)
        self.followers = followers
        for follower in followers:
            follower.attach(store)
        self.q = Queries(store, FORUM)
        self.pending: list[LogEvent] = []
        self.log: list[Logged] = []
        self.position = 0
        self.seq = 0

    def add(self, event: E) -> E:
        self.pending.append(event)
        return event

    def apply(self) -> Queries:
        batch = []
        for event in self.pending:
            self.position += 1
            batch.append(Logged(self.position, event))
        self.pending.clear()
        if batch:
            self.projection.apply(batch)
            for follower in self.followers:
                follower.apply(batch)
            self.log += batch
        return self.q

    # --- records -------------------------------------------------------------------------

    def category(self, name: str, order: int | None = None) -> RecordEvent:
        record: dict[str, Any] = {"$type": CATEGORY, "name": name, "createdAt": at(0)}
        if order is not None:
            record["sortOrder"] = order
        return self.add(self.forum.create(CATEGORY, record))

    def board(self, category: RecordEvent, name: str, order: int | None = None) -> RecordEvent:
        record: dict[str, Any] = {
            "$type": BOARD,
            "name": name,
            "category": ref(category),
            "createdAt": at(0),
        }
        if order is not None:
            record["sortOrder"] = order
        return self.add(self.forum.create(BOARD, record))

    def topic(self, did: str, board: RecordEvent, title: str, minute: int) -> RecordEvent:
        record = {
            "$type": POST,
            "title": title,
            "text": f"{title} body",
            "board": ref(board),
            "createdAt": at(minute),
        }
        return self.add(self.members[did].create(POST, record))

    def reply(
        self, did: str, root: RecordEvent, minute: int, parent: RecordEvent | None = None
    ) -> RecordEvent:
        record = {
            "$type": POST,
            "text": f"reply at {minute}",
            "reply": {"root": ref(root), "parent": ref(parent or root)},
            "createdAt": at(minute),
        }
        return self.add(self.members[did].create(POST, record))

    def delete(self, event: RecordEvent) -> RecordEvent:
        repo = self.forum if event.did == FORUM else self.members[event.did]
        return self.add(repo.delete(event.collection, event.rkey))

    def action(
        self, name: str, *, post: RecordEvent | None = None, did: str | None = None, **extra: Any
    ) -> RecordEvent:
        subject: dict[str, Any] = {"post": ref(post)} if post is not None else {"did": did}
        record = {
            "$type": ACTION,
            "action": f"{ACTION}.{name}",
            "subject": subject,
            "reason": f"{name} for testing",
            "createdBy": FORUM,
            "createdAt": at(30),
            **extra,
        }
        return self.add(self.forum.create(ACTION, record))

    def role(self, name: str, permissions: list[str], priority: int) -> RecordEvent:
        record = {
            "$type": ROLE,
            "name": name,
            "permissions": permissions,
            "priority": priority,
            "createdAt": at(0),
        }
        return self.add(self.forum.create(ROLE, record))

    def assign(self, did: str, role: RecordEvent) -> RecordEvent:
        record = {
            "$type": ASSIGNMENT,
            "subject": did,
            "role": ref(role),
            "createdBy": FORUM,
            "createdAt": at(0),
        }
        return self.add(self.forum.create(ASSIGNMENT, record, rkey=did))

    def join(self, did: str, minute: int) -> RecordEvent:
        forum_ref = {"uri": f"at://{FORUM}/space.atbb.forum.forum/self", "cid": "bafyforum"}
        record = {"$type": "space.atbb.membership", "forum": forum_ref, "createdAt": at(minute)}
        return self.add(self.members[did].create("space.atbb.membership", record))

    def handle(self, did: str, handle: str) -> None:
        self.seq += 1
        self.add(IdentityChanged(did, handle, self.seq, None, "local", None, 0))

    def account(self, did: str, active: bool, status: Any) -> None:
        self.seq += 1
        self.add(AccountStatusChanged(did, active, status, self.seq, None, "local", None, 0))


def location_of(backend: Backend, generation: int) -> str:
    """A read-model location of the test's own: a SQLite file, a PostgreSQL schema."""
    if backend.name == "sqlite":
        return str(backend.tmp / f"gen{generation}.sqlite3")
    return f"{backend.schema}_g{generation}"


W = TypeVar("W", bound=World)


@contextmanager
def world_at(backend: Backend, make: Callable[[ReadModelStore], W],
             generation: int = 1) -> Iterator[W]:
    """``make``'s world on a location of the test's own (``location_of``)."""
    store = open_read_models(backend.url, location=location_of(backend, generation))
    try:
        yield make(store)
    finally:
        store.close()


@contextmanager
def first_batch_elsewhere(backend: Backend, world: W,
                          make: Callable[[ReadModelStore], W]) -> Iterator[W]:
    """A second location, ``make``'s world on it: the forum projection applies
    ``world``'s whole log, each follower only its first event (a first batch builds from
    the forum projection's tables, as in a rebuild)."""
    with world_at(backend, make, 2) as again:
        again.projection.apply(world.log)
        for follower in again.followers:
            follower.apply(world.log[:1])
        yield again


@pytest.fixture
def world(backend) -> Iterator[World]:
    with world_at(backend, World) as made:
        yield made


def uris(page: Any) -> list[str]:
    return [item.uri for item in page.items]


# --- structure ---------------------------------------------------------------------------


def test_empty_read_models_answer_nothing_without_errors(world):
    q = world.apply()
    assert q.forum() is None
    assert q.categories().total == 0 and q.categories().items == ()
    assert q.category("3abc") is None and q.category_boards("3abc", now=NOW) is None
    assert q.board("3abc", now=NOW) is None and q.board_topics("3abc", now=NOW) is None
    assert q.topic("3abc-aaaaaa", now=NOW) is None
    assert q.post_location("3abc-aaaaaa", now=NOW) is None
    assert q.member(ALICE, now=NOW) is None and q.member_profile(ALICE, now=NOW) is None
    assert q.members(now=NOW).total == 0 and q.roles().total == 0
    assert q.modlog().total == 0 and q.themes().total == 0
    assert q.theme_policy() is None and q.theme("self") is None
    assert q.reaction_counts([]) == {}
    perms = q.member_permissions(ALICE)
    assert (perms.permissions, perms.authority, perms.role) == (frozenset(), None, None)
    assert q.viewer(None) == ANON and not q.viewer(ALICE).is_moderator
    assert q.is_banned(ALICE, now=NOW) is False


def test_forum_record_and_when_it_was_indexed(world):
    event = world.add(
        world.forum.create(
            "space.atbb.forum.forum",
            {"$type": "space.atbb.forum.forum", "name": "Übertest", "description": "d"},
            rkey="self",
        )
    )
    forum = world.apply().forum()
    assert forum is not None
    assert (forum.id, forum.did, forum.name, forum.description) == ("self", FORUM, "Übertest", "d")
    assert forum.uri == f"at://{FORUM}/space.atbb.forum.forum/self"
    expected = datetime.fromtimestamp(event.observed_at / 1e6, tz=UTC)
    assert forum.indexed_at == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_categories_and_boards_sort_by_order_then_name_then_uri(world):
    later = world.category("Zeta", 0)
    first = world.category("alpha", 0)
    upper = world.category("Alpha", 0)
    unordered = world.category("Beta")
    board_b = world.board(first, "b", 1)
    board_a = world.board(first, "a", 1)
    board_0 = world.board(first, "z", 0)
    q = world.apply()
    cats = q.categories()
    # sortOrder 0 for all (absent means 0); names by code point: "Alpha" < "Beta" < ...
    assert uris(cats) == [upper.uri, unordered.uri, later.uri, first.uri]
    assert {c.name: c.board_count for c in cats.items}["alpha"] == 3
    boards = q.category_boards(first.rkey, now=NOW)
    assert boards is not None
    assert uris(boards) == [board_0.uri, board_a.uri, board_b.uri]
    # every id also accepts the full at-uri, but only the Forum account's
    assert q.category(first.uri) == q.category(first.rkey)
    assert q.board(board_a.uri, now=NOW) == q.board(board_a.rkey, now=NOW)
    forged = f"at://{ALICE}/{CATEGORY}/{first.rkey}"
    assert q.category(forged) is None
    assert q.category(f"at://{FORUM}/{BOARD}/{first.rkey}") is None


def test_a_board_is_listed_only_once_its_category_exists(world):
    category_event = world.forum.create(
        CATEGORY, {"$type": CATEGORY, "name": "Late", "createdAt": at(0)}
    )
    board = world.board(category_event, "Early")
    q = world.apply()
    assert q.board(board.rkey, now=NOW) is None
    assert q.board_topics(board.rkey, now=NOW) is None
    world.add(category_event)
    q = world.apply()
    found = q.board(board.rkey, now=NOW)
    assert found is not None and found.category_id == category_event.rkey
    world.delete(category_event)
    assert world.apply().board(board.rkey, now=NOW) is None


# --- topics and replies ------------------------------------------------------------------


@pytest.fixture
def board(world: World) -> RecordEvent:
    category = world.category("General")
    return world.board(category, "Chat")


def test_board_topics_list_pinned_first_then_by_last_activity(world, board):
    old = world.topic(ALICE, board, "old but active", 1)
    new = world.topic(BOB, board, "new", 10)
    quiet = world.topic(ALICE, board, "quiet", 5)
    pinned = world.topic(BOB, board, "rules", 0)
    world.reply(BOB, old, 20)
    world.reply(ALICE, old, 21)
    world.action("pin", post=pinned)
    world.action("lock", post=new)
    q = world.apply()
    page = q.board_topics(board.rkey, now=NOW)
    assert page is not None
    assert uris(page) == [pinned.uri, old.uri, new.uri, quiet.uri]
    by_uri = {t.uri: t for t in page.items}
    assert (by_uri[old.uri].reply_count, by_uri[old.uri].last_reply_at) == (
        2,
        "2025-06-01T11:21:00.000000Z",
    )
    assert by_uri[old.uri].last_activity_at == "2025-06-01T11:21:00.000000Z"
    assert by_uri[pinned.uri].pinned and not by_uri[pinned.uri].locked
    assert by_uri[new.uri].locked and not by_uri[new.uri].pinned
    assert by_uri[quiet.uri].author.did == ALICE and by_uri[quiet.uri].title == "quiet"
    # unpinning (a newer action) restores activity order
    world.action("unpin", post=pinned)
    q = world.apply()
    page = q.board_topics(board.rkey, now=NOW)
    assert page is not None
    assert uris(page) == [old.uri, new.uri, quiet.uri, pinned.uri]


def test_topic_page_keeps_deleted_replies_in_place_and_marks_for_moderators(world, board):
    topic = world.topic(ALICE, board, "thread", 0)
    first = world.reply(BOB, topic, 1)
    gone = world.reply(ALICE, topic, 2)
    hidden = world.reply(BOB, topic, 3, parent=first)
    last = world.reply(ALICE, topic, 4)
    world.delete(gone)
    world.action("delete", post=hidden)
    q = world.apply()
    page = q.topic(topic.rkey + "-" + post_id(topic.uri).split("-")[1], now=NOW)
    assert page is not None and page.topic.uri == topic.uri
    assert page.topic.title == "thread" and page.topic.kind == "topic"
    assert uris(page.replies) == [first.uri, gone.uri, last.uri]
    assert [r.position for r in page.replies.items] == [1, 2, 4]
    placeholder = page.replies.items[1]
    assert placeholder.deleted_by_author and placeholder.text == DELETED_TEXT
    assert placeholder.title is None and not placeholder.hidden_by_moderator
    assert page.reply_count == 2 and page.replies.total == 3
    mod_page = q.topic(topic.uri, viewer=MOD, now=NOW)
    assert mod_page is not None
    assert uris(mod_page.replies) == [first.uri, gone.uri, hidden.uri, last.uri]
    marked = mod_page.replies.items[2]
    assert marked.hidden_by_moderator and not marked.deleted_by_author
    assert not marked.author_banned and not marked.author_suspended
    assert marked.parent_uri == first.uri and marked.text == "reply at 3"
    # undelete (a newer action) shows it again to everyone
    world.action("undelete", post=hidden)
    page = world.apply().topic(topic.uri, now=NOW)
    assert page is not None and hidden.uri in uris(page.replies)


def test_a_reply_waits_for_its_topic_and_a_reply_to_a_reply_root_is_never_shown(world, board):
    topic_event = world.members[ALICE].create(
        POST,
        {"$type": POST, "title": "t", "text": "x", "board": ref(board), "createdAt": at(0)},
    )
    early = world.reply(BOB, topic_event, 1)
    q = world.apply()
    assert q.topic(topic_event.uri, now=NOW) is None
    world.add(topic_event)
    bad = world.reply(BOB, early, 2)  # its root is a reply
    q = world.apply()
    page = q.topic(topic_event.uri, viewer=MOD, now=NOW)
    assert page is not None and uris(page.replies) == [early.uri]
    assert q.post(bad.uri, viewer=MOD, now=NOW) is None


def test_a_parent_seen_only_as_deleted_does_not_hold_its_reply_back(world, board):
    topic = world.topic(ALICE, board, "t", 0)
    never_seen = world.members[BOB].create(
        POST,
        {
            "$type": POST,
            "text": "lost",
            "reply": {"root": ref(topic), "parent": ref(topic)},
            "createdAt": at(1),
        },
    )
    child = world.reply(ALICE, topic, 2, parent=never_seen)
    world.delete(never_seen)
    orphan_root = world.members[BOB].create(
        POST,
        {"$type": POST, "title": "lost", "text": "x", "board": ref(board), "createdAt": at(3)},
    )
    waiting = world.reply(ALICE, orphan_root, 4)
    world.delete(orphan_root)
    q = world.apply()
    page = q.topic(topic.uri, viewer=MOD, now=NOW)
    assert page is not None and uris(page.replies) == [child.uri]
    assert page.replies.items[0].position == 1
    assert q.post(waiting.uri, viewer=MOD, now=NOW) is None


def test_paging_is_clamped_and_partitions(world, board):
    topic = world.topic(ALICE, board, "long", 0)
    replies = [world.reply(BOB, topic, minute) for minute in range(1, 8)]
    q = world.apply()
    page = q.topic(topic.uri, now=NOW, offset=-5, limit=0)
    assert page is not None and (page.replies.offset, page.replies.limit) == (0, 1)
    assert uris(page.replies) == [replies[0].uri]
    page = q.topic(topic.uri, now=NOW, limit=10_000)
    assert page is not None and page.replies.limit == 250 and page.replies.total == 7
    page = q.topic(topic.uri, now=NOW)
    assert page is not None and page.replies.limit == 25
    topics = q.board_topics(board.rkey, now=NOW, limit=10_000)
    assert topics is not None and topics.limit == 100
    seen = []
    for offset in range(0, 7, 3):
        part = q.topic(topic.uri, now=NOW, offset=offset, limit=3)
        assert part is not None
        seen += uris(part.replies)
    assert seen == [r.uri for r in replies]
    past = q.topic(topic.uri, now=NOW, offset=100, limit=3)
    assert past is not None and past.replies.items == () and past.replies.total == 7


def test_a_permalink_lands_on_the_page_holding_the_post(world, board):
    topic = world.topic(ALICE, board, "long", 0)
    replies = [world.reply(BOB, topic, minute) for minute in range(1, 8)]
    world.action("delete", post=replies[0])
    q = world.apply()
    spot = q.post_location(replies[4].uri, viewer=MOD, now=NOW, limit=3)
    assert spot is not None
    assert (spot.topic_id, spot.post_id, spot.offset) == (
        post_id(topic.uri),
        post_id(replies[4].uri),
        3,
    )
    # without the hidden first reply, the fifth is the fourth the public sees
    spot = q.post_location(replies[4].uri, now=NOW, limit=3)
    assert spot is not None and spot.offset == 3
    spot = q.post_location(replies[3].uri, now=NOW, limit=3)
    assert spot is not None and spot.offset == 0
    assert q.post_location(replies[0].uri, now=NOW, limit=3) is None
    topic_spot = q.post_location(topic.uri, now=NOW)
    assert topic_spot is not None and topic_spot.offset == 0


# --- bans, hiding and suspension ---------------------------------------------------------


def test_a_temporary_ban_hides_the_author_and_their_counts_until_it_expires(world, board):
    topic = world.topic(ALICE, board, "hello", 0)
    world.reply(ALICE, topic, 1)
    by_bob = world.reply(BOB, topic, 2)
    world.reply(BOB, topic, 3, parent=by_bob)
    expires = NOW + timedelta(hours=1)
    world.action("ban", did=BOB, expiresAt=expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    q = world.apply()
    found = q.board(board.rkey, now=NOW)
    assert found is not None
    assert (found.topic_count, found.post_count) == (1, 2)
    assert found.last_post is not None and found.last_post.created_at.startswith("2025-06-01T11:01")
    assert q.is_banned(BOB, now=NOW) and not q.is_banned(BOB, now=expires)
    page = q.topic(topic.uri, now=NOW)
    assert page is not None and page.reply_count == 1 and len(page.replies.items) == 1
    topics = q.board_topics(board.rkey, now=NOW)
    assert topics is not None and topics.items[0].reply_count == 1
    assert topics.items[0].last_reply_at == "2025-06-01T11:01:00.000000Z"
    mod_page = q.topic(topic.uri, viewer=MOD, now=NOW)
    assert mod_page is not None and [r.author_banned for r in mod_page.replies.items] == [
        False,
        True,
        True,
    ]
    # at the expiry instant the ban is over (in force only while expiresAt > now)
    found = q.board(board.rkey, now=expires)
    assert found is not None and (found.topic_count, found.post_count) == (1, 4)
    assert found.last_post is not None and found.last_post.author.did == BOB


def test_unban_restores_posts_but_not_the_ones_the_author_deleted(world, board):
    topic = world.topic(BOB, board, "mine", 0)
    deleted = world.reply(BOB, topic, 1)
    world.delete(deleted)
    world.action("ban", did=BOB)
    q = world.apply()
    assert q.topic(topic.uri, now=NOW) is None
    topics = q.board_topics(board.rkey, now=NOW)
    assert topics is not None and topics.total == 0
    unban = world.action("unban", did=BOB)
    q = world.apply()
    page = q.topic(topic.uri, now=NOW)
    assert page is not None and page.replies.items[0].deleted_by_author
    assert page.reply_count == 0
    member = q.member(BOB, now=NOW)
    assert member is not None and member.post_count == 1 and not member.banned
    # deleting the unban record makes the ban the latest action again
    world.delete(unban)
    q = world.apply()
    assert q.topic(topic.uri, now=NOW) is None and q.is_banned(BOB, now=NOW)


def test_the_last_post_never_reveals_a_hidden_topic_title(world, board):
    topic = world.topic(ALICE, board, "secret title", 0)
    world.reply(BOB, topic, 5)
    world.action("delete", post=topic)
    q = world.apply()
    public = q.board(board.rkey, now=NOW)
    assert public is not None and public.last_post is not None
    assert public.last_post.topic_title is None and public.post_count == 1
    assert public.topic_count == 0
    for_mod = q.board(board.rkey, viewer=MOD, now=NOW)
    assert for_mod is not None and for_mod.last_post is not None
    assert for_mod.last_post.topic_title == "secret title"


def test_a_suspended_account_is_hidden_and_restored_when_active(world, board):
    topic = world.topic(ALICE, board, "by alice", 0)
    world.account(ALICE, False, "takendown")
    q = world.apply()
    assert q.topic(topic.uri, now=NOW) is None
    mod_page = q.topic(topic.uri, viewer=MOD, now=NOW)
    assert mod_page is not None and mod_page.topic.author_suspended
    assert not mod_page.topic.author_banned and not mod_page.topic.hidden_by_moderator
    world.account(ALICE, True, None)
    assert world.apply().topic(topic.uri, now=NOW) is not None


def test_a_deleted_account_disappears_from_the_read_models(world, board):
    topic = world.topic(ALICE, board, "by alice", 0)
    world.join(ALICE, 0)
    world.account(ALICE, False, "deleted")
    q = world.apply()
    assert q.topic(topic.uri, viewer=MOD, now=NOW) is None
    assert q.member(ALICE, now=NOW) is None


# --- members and roles -------------------------------------------------------------------


def test_members_profiles_and_counts(world, board):
    world.join(BOB, 3)
    first = world.topic(ALICE, board, "first", 1)
    world.topic(ALICE, board, "second", 2)
    reply = world.reply(ALICE, first, 4)
    world.handle(ALICE, "alice.test")
    world.handle(ALICE, "alice2.test")
    q = world.apply()
    members = q.members(now=NOW)
    assert [m.did for m in members.items] == [ALICE, BOB]  # by join date (first post)
    alice = members.items[0]
    assert (alice.handle, alice.post_count, alice.joined_at) == (
        "alice2.test",
        3,
        "2025-06-01T11:01:00.000000Z",
    )
    bob = q.member(BOB, now=NOW)
    assert bob is not None and bob.post_count == 0 and bob.joined_at.startswith("2025-06-01T11:03")
    profile = q.member_profile(ALICE, now=NOW)
    assert profile is not None
    assert [t.title for t in profile.recent_topics] == ["second", "first"]
    assert [p.title for p in profile.recent_posts] == [None, "second", "first"]
    assert profile.recent_posts[0].uri == reply.uri
    assert profile.recent_posts[0].position == 1
    assert q.member(CAROL, now=NOW) is None


def test_permissions_come_from_the_assigned_or_default_role(world):
    member = world.role("Member", [PERM + "createPosts"], 30)
    moderator = world.role("Moderator", [PERM + "moderatePosts", PERM + "banUsers"], 20)
    world.role("Owner", ["*"], 0)
    world.assign(BOB, moderator)
    q = world.apply()
    bob = q.member_permissions(BOB)
    assert bob.permissions == {PERM + "moderatePosts", PERM + "banUsers"}
    assert bob.authority == 20 and bob.role is not None and bob.role.name == "Moderator"
    alice = q.member_permissions(ALICE)
    assert alice.permissions == {PERM + "createPosts"} and alice.authority == 30
    assert alice.role is not None and alice.role.is_default
    forum = q.member_permissions(FORUM)
    assert (forum.permissions, forum.authority) == (frozenset({"*"}), -1)
    assert q.viewer(BOB).is_moderator and not q.viewer(ALICE).is_moderator
    assert q.viewer(FORUM).is_moderator and q.viewer(FORUM).has("manageForum")
    assert [r.name for r in q.roles().items] == ["Owner", "Moderator", "Member"]
    assert q.role(member.uri) == q.role(member.rkey)
    # a deleted role falls back to the default role; without a default, nothing
    world.delete(moderator)
    q = world.apply()
    assert q.member_permissions(BOB).permissions == {PERM + "createPosts"}
    world.delete(member)
    q = world.apply()
    assert q.member_permissions(BOB).permissions == frozenset()
    assert q.member_permissions(BOB).authority is None


# --- mod log, themes, reactions ----------------------------------------------------------


def test_modlog_lists_live_actions_newest_first_with_the_moderator_handle(world, board):
    topic = world.topic(ALICE, board, "t", 0)
    lock = world.action("lock", post=topic)
    ban = world.action("ban", did=BOB, expiresAt="2025-06-02T00:00:00Z")
    pin = world.action("pin", post=topic)
    world.handle(FORUM, "forum.test")
    world.delete(pin)
    q = world.apply()
    log = q.modlog()
    assert uris(log) == [ban.uri, lock.uri]
    entry = log.items[0]
    assert (entry.action, entry.subject_did, entry.expires_at) == (
        f"{ACTION}.ban",
        BOB,
        "2025-06-02T00:00:00.000000Z",
    )
    assert entry.moderator is not None and entry.moderator.handle == "forum.test"
    assert log.items[1].subject_uri == topic.uri and log.items[1].reason == "lock for testing"
    page = q.topic(topic.uri, now=NOW)
    assert page is not None and page.locked and not page.pinned


def test_themes_keep_every_version_and_the_policy(world):
    record = {
        "$type": THEME,
        "name": "Light",
        "colorScheme": "light",
        "tokens": {"--bg": "#fff"},
        "fontUrls": ["https://fonts.example/a.css"],
        "createdAt": at(0),
    }
    v1 = world.add(world.forum.create(THEME, record))
    v2 = world.add(world.forum.update(THEME, v1.rkey, {**record, "tokens": {"--bg": "#eee"}}))
    world.add(
        world.forum.create(
            "space.atbb.forum.themePolicy",
            {
                "$type": "space.atbb.forum.themePolicy",
                "availableThemes": [{"uri": v1.uri, "cid": v1.cid}, {"uri": v1.uri}],
                "defaultLightTheme": v1.uri,
                "allowUserChoice": False,
            },
            rkey="self",
        )
    )
    q = world.apply()
    latest = q.theme(v1.rkey)
    assert latest is not None and latest.cid == v2.cid and latest.tokens == {"--bg": "#eee"}
    assert latest.font_urls == ("https://fonts.example/a.css",)
    assert q.theme(v1.uri) == latest and q.themes().items == (latest,)
    old = q.theme_version(v1.uri, v1.cid or "")
    assert old is not None and old.tokens == {"--bg": "#fff"} and old.cid == v1.cid
    assert q.theme_version(v1.uri, "bafynothing") is None
    policy = q.theme_policy()
    assert policy is not None and not policy.allow_user_choice
    assert [(r.uri, r.cid) for r in policy.available_themes] == [(v1.uri, v1.cid), (v1.uri, None)]
    assert policy.default_light_theme == v1.uri and policy.default_dark_theme is None


def test_reactions_count_one_per_reactor_and_reaction(world, board):
    topic = world.topic(ALICE, board, "t", 0)
    for did, reaction in ((BOB, "like"), (CAROL, "like"), (BOB, "👍")):
        world.add(
            world.members[did].create(
                "space.atbb.reaction",
                {
                    "$type": "space.atbb.reaction",
                    "subject": ref(topic),
                    "reaction": reaction,
                    "createdAt": at(1),
                },
            )
        )
    q = world.apply()
    counts = q.reaction_counts([topic.uri, "at://nothing"])
    assert {(c.reaction, c.count) for c in counts[topic.uri]} == {("like", 2), ("👍", 1)}
    page = q.topic(topic.uri, now=NOW)
    assert page is not None and {c.reaction for c in page.topic.reactions} == {"like", "👍"}


@pytest.mark.parametrize(
    "bad",
    ["", "at://", "at://x/y", "../../etc/passwd", "' OR 1=1 --", "%", "?", "x" * 5000, "é/☃"],
)
def test_malformed_ids_are_simply_not_found(world, board, bad):
    world.topic(ALICE, board, "t", 0)
    q = world.apply()
    assert q.category(bad) is None and q.board(bad, now=NOW) is None
    assert q.category_boards(bad, now=NOW) is None and q.board_topics(bad, now=NOW) is None
    assert q.topic(bad, now=NOW) is None and q.post(bad, now=NOW) is None
    assert q.post_location(bad, now=NOW) is None and q.member(bad, now=NOW) is None
    assert q.role(bad) is None and q.theme(bad) is None
    assert q.theme_version(bad, bad) is None
    assert q.member_permissions(bad).permissions == frozenset()
