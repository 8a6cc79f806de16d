"""What members may write, decided on the read models before anything is sent (unknown
board 404, banned 403 with the reason, locked topic, a parent in another thread, the
role's permissions), and the records written as the original writes them; on both
backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from appview.bootstrap import Services
from appview.writes.errors import BadWrite, Forbidden, NotFound, WriteError
from events.collections import MOD_ACTION, POST, ROLE, ROLE_ASSIGNMENT
from events.model import RecordEvent
from events.records import StrongRef, mod_action_record, role_assignment_record, role_record
from projections.ids import post_id
from tests.conftest import Backend
from tests.writes_support import (
    CREATED,
    OWNER,
    FakeRepoSession,
    WriteForum,
    write_forum,
    write_services,
)

NOW = datetime.now(UTC)


@dataclass
class World:
    services: Services
    forum: WriteForum
    owner: FakeRepoSession
    alice: FakeRepoSession
    bob: FakeRepoSession
    mod: FakeRepoSession

    def unchanged(self, head: int, *sessions: FakeRepoSession) -> None:
        """Nothing was sent and nothing logged."""
        assert self.services.event_log.head() == head
        for session in sessions:
            assert not any(c.startswith("com.atproto.repo.") for c in session.calls)


@pytest.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    with write_services(backend) as services:
        owner, mod = FakeRepoSession(OWNER), FakeRepoSession("mod")
        forum = await write_forum(services.writer, owner, moderators=(mod.did,))
        yield World(services, forum, owner, FakeRepoSession("alice"),
                    FakeRepoSession("bob"), mod)


async def moderate(world: World, action: str, *, did: str | None = None,
                   post: tuple[str, str] | None = None, reason: str = "Testing.") -> None:
    await world.services.writer.create(world.owner, MOD_ACTION, mod_action_record(
        f"space.atbb.modAction.{action}", subject_did=did,
        subject_post=None if post is None else StrongRef(*post), reason=reason,
        created_by=world.owner.did, created_at=CREATED))


async def test_a_topic_is_written_as_the_original_writes_it(world: World) -> None:
    writes = world.services.forum_writes
    done = await writes.new_topic(world.alice, board=world.forum.board.rkey,
                                  title="  Hello  ", text="Line one\r\nLine two\n")
    stored = world.alice.repo.get(POST, done.rkey)
    assert stored is not None
    assert stored.value == {
        "$type": POST, "createdAt": stored.value["createdAt"], "text": "Line one\nLine two",
        "title": "Hello",
        "board": {"$type": "space.atbb.post#boardRef",
                  "board": {"cid": world.forum.board.cid, "uri": world.forum.board.uri}},
        "forum": {"$type": "space.atbb.post#forumRef",
                  "forum": {"cid": world.forum.forum.cid, "uri": world.forum.forum.uri}}}
    page = world.services.queries.topic(post_id(done.uri), now=NOW)
    assert page is not None and page.topic.title == "Hello"


async def test_an_unknown_board_is_a_404_and_nothing_is_sent(world: World) -> None:
    head = world.services.event_log.head()
    for board in ("no-such-board", f"at://{world.owner.did}/space.atbb.forum.board/3zzz",
                  world.forum.category.uri):
        with pytest.raises(NotFound):
            await world.services.forum_writes.new_topic(world.alice, board=board, title="t",
                                                        text="x")
    world.unchanged(head, world.alice)


async def test_a_banned_member_is_told_why_and_nothing_is_sent(world: World) -> None:
    writes = world.services.forum_writes
    topic = await writes.new_topic(world.bob, board=world.forum.board.uri, title="t",
                                   text="x")
    await moderate(world, "ban", did=world.alice.did, reason="Spamming the boards.")
    head = world.services.event_log.head()
    attempts = [
        writes.new_topic(world.alice, board=world.forum.board.uri, title="t", text="x"),
        writes.reply(world.alice, root=topic.uri, parent=None, text="x"),
        writes.react(world.alice, topic.uri, "like"),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden) as refused:
            await attempt
        assert refused.value.status == 403
        assert str(refused.value) == "You are banned from this forum: Spamming the boards."
    world.unchanged(head, world.alice)


async def test_a_locked_topic_takes_replies_only_from_moderators(world: World) -> None:
    writes = world.services.forum_writes
    topic = await writes.new_topic(world.bob, board=world.forum.board.uri, title="t",
                                   text="x")
    assert topic.cid is not None
    await moderate(world, "lock", post=(topic.uri, topic.cid))
    head = world.services.event_log.head()
    with pytest.raises(Forbidden, match="locked"):
        await writes.reply(world.alice, root=post_id(topic.uri), parent=None, text="late")
    with pytest.raises(Forbidden, match="locked"):
        await writes.edit_post(world.bob, topic.uri, text="changed")
    world.unchanged(head, world.alice)
    await writes.reply(world.mod, root=topic.uri, parent=topic.uri, text="Locked, sorry.")
    page = world.services.queries.topic(topic.uri, now=NOW)
    assert page is not None and [r.text for r in page.replies.items] == ["Locked, sorry."]


async def test_the_parent_must_exist_and_be_in_the_thread(world: World) -> None:
    writes = world.services.forum_writes
    first = await writes.new_topic(world.bob, board=world.forum.board.uri, title="a", text="x")
    other = await writes.new_topic(world.bob, board=world.forum.board.uri, title="b", text="y")
    elsewhere = await writes.reply(world.bob, root=other.uri, parent=None, text="there")
    head = world.services.event_log.head()
    with pytest.raises(BadWrite, match="another thread"):
        await writes.reply(world.alice, root=first.uri, parent=elsewhere.uri, text="x")
    forged = f"at://{world.bob.did}/{POST}/3kforgedforged"
    with pytest.raises(NotFound):
        await writes.reply(world.alice, root=first.uri, parent=forged, text="x")
    with pytest.raises(NotFound):
        await writes.reply(world.alice, root=forged, parent=None, text="x")
    with pytest.raises(BadWrite, match="not a topic"):
        await writes.reply(world.alice, root=elsewhere.uri, parent=None, text="x")
    world.unchanged(head, world.alice)
    nested = await writes.reply(world.alice, root=other.uri, parent=post_id(elsewhere.uri),
                                text="nested")
    post = world.services.queries.post(post_id(nested.uri), now=NOW)
    assert post is not None and post.parent_uri == elsewhere.uri


async def test_the_role_must_grant_the_permission(world: World) -> None:
    services = world.services
    reader = await services.writer.create(world.owner, ROLE, role_record(
        "Reader", ["space.atbb.permission.react"], 40, created_at=CREATED))
    assert reader.cid is not None
    await services.writer.create(world.owner, ROLE_ASSIGNMENT, role_assignment_record(
        world.alice.did, StrongRef(reader.uri, reader.cid), created_by=world.owner.did,
        created_at=CREATED), rkey=world.alice.did)
    topic = await services.forum_writes.new_topic(world.bob, board=world.forum.board.uri,
                                                  title="t", text="x")
    head = services.event_log.head()
    with pytest.raises(Forbidden, match="createTopics"):
        await services.forum_writes.new_topic(world.alice, board=world.forum.board.uri,
                                              title="t", text="x")
    with pytest.raises(Forbidden, match="createPosts"):
        await services.forum_writes.reply(world.alice, root=topic.uri, parent=None, text="x")
    world.unchanged(head, world.alice)
    assert await services.forum_writes.react(world.alice, topic.uri, "like") is not None


async def test_only_the_author_edits_and_deletes_and_the_log_keeps_every_version(
        world: World) -> None:
    writes = world.services.forum_writes
    topic = await writes.new_topic(world.alice, board=world.forum.board.uri, title="Old",
                                   text="Old text")
    reply = await writes.reply(world.alice, root=topic.uri, parent=None, text="A reply")
    with pytest.raises(Forbidden, match="author"):
        await writes.edit_post(world.bob, topic.uri, text="Not mine")
    with pytest.raises(Forbidden, match="author"):
        await writes.delete_post(world.bob, reply.uri)
    with pytest.raises(BadWrite, match="no title"):
        await writes.edit_post(world.alice, reply.uri, text="x", title="A title")
    edited = await writes.edit_post(world.alice, post_id(topic.uri), text="New text",
                                    title="New")
    assert edited.record is not None and "updatedAt" in edited.record
    stored = world.alice.repo.get(POST, topic.rkey)
    assert stored is not None and edited.record["board"] == stored.value["board"]
    page = world.services.queries.topic(topic.uri, now=NOW)
    assert page is not None and (page.topic.title, page.topic.text) == ("New", "New text")
    assert page.topic.updated_at is not None
    versions = [e.event for e in world.services.event_log.history(topic.uri)]
    assert [v.record["text"] for v in versions if isinstance(v, RecordEvent) and v.record] \
        == ["Old text", "New text"]
    await writes.delete_post(world.alice, reply.uri)
    page = world.services.queries.topic(topic.uri, now=NOW)
    assert page is not None and page.replies.items[0].deleted_by_author
    assert world.alice.repo.get(POST, reply.rkey) is None
    with pytest.raises(NotFound):
        await writes.edit_post(world.alice, reply.uri, text="back")


async def test_reactions_are_one_per_kind_and_removable(world: World) -> None:
    writes, queries = world.services.forum_writes, world.services.queries
    topic = await writes.new_topic(world.alice, board=world.forum.board.uri, title="t",
                                   text="x")
    assert await writes.react(world.bob, topic.uri, "like") is not None
    assert await writes.react(world.bob, topic.uri, "like") is None  # again: nothing new
    assert await writes.react(world.mod, post_id(topic.uri), "👍") is not None
    found = queries.reactions([topic.uri])[topic.uri]
    assert [(r, [a.did for a in who]) for r, who in found.by_reaction] == [
        ("like", [world.bob.did]), ("👍", [world.mod.did])]
    with pytest.raises(WriteError) as invalid:
        await writes.react(world.bob, topic.uri, "x" * 65)
    assert invalid.value.status == 400
    removed = await writes.unreact(world.bob, topic.uri, "like")
    assert [w.operation for w in removed] == ["delete"]
    assert [r for r, _ in queries.reactions([topic.uri])[topic.uri].by_reaction] == ["👍"]
    with pytest.raises(NotFound):
        await writes.unreact(world.bob, topic.uri, "like")


async def test_joining_writes_one_membership(world: World) -> None:
    writes = world.services.forum_writes
    assert await writes.membership(world.alice.did) is None
    joined = await writes.join(world.alice)
    assert joined is not None and joined.collection == "space.atbb.membership"
    assert await writes.membership(world.alice.did) == joined.uri
    assert await writes.join(world.alice) is None
    member = world.services.queries.member(world.alice.did, now=NOW)
    assert member is not None and member.joined_at is not None
