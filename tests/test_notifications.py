"""The notifications projection (projections/notifications.py): who each post version
concerns, and the rows it folds, the same whatever the batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.notifications import NotificationsProjection, recipients
from projections.readmodel import ReadModelStore
from projections.rebuild import compare
from tests.conftest import Backend
from tests.test_queries import ALICE as MEMBER_A
from tests.test_queries import BOB as MEMBER_B
from tests.test_queries import CAROL as MEMBER_C
from tests.test_queries import POST as POST_NSID
from tests.test_queries import World, at, first_batch_elsewhere, ref, world_at

ALICE, BOB, CAROL = "did:plc:alice", "did:plc:bob", "did:plc:carol"
TOPIC = f"at://{ALICE}/space.atbb.post/3topic"
POST = f"at://{BOB}/space.atbb.post/3post"


def test_replies_quotes_and_mentions() -> None:
    reply = {"text": f"[@bob.test wrote]({POST}):\n\n> hi\n\nThanks @Carol.Example.com and"
                     " @dave.test, not mail@x.test nor https://x.test/@eve.test",
             "reply": {"root": {"uri": TOPIC}, "parent": {"uri": POST}}}
    # a mention of one's own handle is kept (handles are matched when read, where one's
    # own posts are left out)
    assert recipients(CAROL, reply) == [
        (BOB, "reply-post"), (ALICE, "reply-topic"), ("@bob.test", "mention"),
        ("@carol.example.com", "mention"), ("@dave.test", "mention")]


def test_nobody_is_told_of_their_own_post_and_a_topic_reply_is_one_reason() -> None:
    direct = {"text": "Me again", "reply": {"root": {"uri": TOPIC}, "parent": {"uri": TOPIC}}}
    assert recipients(BOB, direct) == [(ALICE, "reply-topic")]
    assert recipients(ALICE, direct) == []
    assert recipients(ALICE, {"text": "A topic", "title": "T"}) == []
    assert recipients(ALICE, {"text": 5, "reply": "nonsense"}) == []


def test_recipients_are_capped() -> None:
    text = " ".join(f"@m{n}.test" for n in range(200))
    assert len(recipients(ALICE, {"text": text})) == 50


class NotifiedWorld(World):
    """The queries' test forum, projected by the forum and notifications projections,
    keeping the log it applied."""

    def __init__(self, store: ReadModelStore) -> None:
        self.notifications = NotificationsProjection()
        super().__init__(store, self.notifications)


@pytest.fixture
def world(backend: Backend) -> Iterator[NotifiedWorld]:
    with world_at(backend, NotifiedWorld) as made:
        yield made


def test_a_first_batch_builds_every_notification_as_batches_would(
        world: NotifiedWorld, backend: Backend) -> None:
    board = world.board(world.category("General"), "Cats")
    topic = world.topic(MEMBER_A, board, "Cats", minute=1)
    reply = world.reply(MEMBER_B, topic, minute=2)
    world.apply()
    world.reply(MEMBER_C, topic, minute=3, parent=reply)
    world.add(world.members[MEMBER_C].create(POST_NSID, {
        "$type": POST_NSID, "createdAt": at(4),
        "text": f"As [@a wrote]({topic.uri}) and @someone.example said",
        "reply": {"root": ref(topic), "parent": ref(topic)}}))
    world.apply()
    world.delete(reply)
    world.apply()
    notified = world.notifications.store
    with notified.read() as session:
        assert session.scalar("SELECT COUNT(*) FROM notifications") > 0
    # the first batch is a single event: it builds from every post
    with first_batch_elsewhere(backend, world, NotifiedWorld) as again:
        assert again.notifications.position() == world.log[-1].position
        assert compare(notified, again.projection.store, tables=("notifications",)) == []
