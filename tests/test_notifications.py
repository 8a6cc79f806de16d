"""The notifications projection (projections/notifications.py): who each post version
concerns, and the rows it folds, the same whatever the batches."""

from __future__ import annotations

from projections.notifications import recipients

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
