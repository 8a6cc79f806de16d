"""The expected read models of a scenario, folded from hand-written operations."""

from __future__ import annotations

from typing import Any

from appview.devnet.forum_summary import summarize
from appview.devnet.scenario_model import Operation

FORUM = "did:plc:forumforumforumforumforu"
ALICE = "did:plc:aliceealiceealiceealicee"
BOB = "did:plc:bobbbbbobbbbbobbbbbobbbb"
MALLORY = "did:plc:mallorymallorymallorymal"


class Log:
    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def write(self, did: str, collection: str, rkey: str, record: dict[str, Any] | None,
              op: str = "create") -> str:
        at = 1_000_000 * (len(self.ops) + 1)
        cid = None if record is None else f"bafy{len(self.ops)}"
        self.ops.append(Operation("x", did, op, collection, rkey, record, cid, at))  # type: ignore[arg-type]
        return f"at://{did}/{collection}/{rkey}"

    def post(self, did: str, rkey: str, root: str | None = None, board: str = "") -> str:
        record: dict[str, Any] = {"text": rkey}
        if root is None:
            record |= {"title": rkey, "board": {"uri": board, "cid": "b"}}
        else:
            ref = {"uri": root, "cid": "c"}
            record["reply"] = {"root": ref, "parent": ref}
        return self.write(did, "space.atbb.post", rkey, record)

    def act(self, action: str, subject: dict[str, Any], did: str = FORUM, **extra: str) -> None:
        record = {"action": f"space.atbb.modAction.{action}", "subject": subject, **extra}
        self.write(did, "space.atbb.modAction", f"m{len(self.ops)}", record)


def test_counts_by_reason_latest_action_wins_and_bans_lapse() -> None:
    log = Log()
    log.write(FORUM, "space.atbb.forum.forum", "self", {"name": "F"})
    log.write(FORUM, "space.atbb.forum.category", "c1", {"name": "C"})
    board = log.write(FORUM, "space.atbb.forum.board", "b1", {"name": "B"})
    log.write(MALLORY, "space.atbb.forum.board", "b2", {"name": "fake"})
    topic = log.post(ALICE, "t1", board=board)
    spam_topic = log.post(MALLORY, "t2", board=board)
    kept = log.post(BOB, "r1", root=topic)
    deleted = log.post(BOB, "r2", root=topic)
    hidden = log.post(BOB, "r3", root=topic)
    log.post(MALLORY, "r4", root=topic)
    log.write(BOB, "space.atbb.post", "r2", None, op="delete")
    log.act("delete", {"post": {"uri": hidden, "cid": "x"}})
    log.act("delete", {"post": {"uri": kept, "cid": "x"}})
    log.act("undelete", {"post": {"uri": kept, "cid": "x"}})
    log.act("lock", {"post": {"uri": topic, "cid": "x"}})
    log.act("pin", {"post": {"uri": topic, "cid": "x"}})
    log.act("unpin", {"post": {"uri": topic, "cid": "x"}})
    log.act("ban", {"did": MALLORY})
    log.act("ban", {"did": BOB}, expiresAt="1970-01-01T00:00:05.000Z")
    log.act("ban", {"did": ALICE}, did=MALLORY)  # not the forum: no effect
    summary = summarize(log.ops, FORUM)
    assert (summary.forum_name, summary.categories, summary.boards) == ("F", 1, (board,))
    assert summary.banned == {MALLORY} and summary.mod_actions == 8
    main = summary.topic(topic)
    assert (main.replies, main.deleted_replies, main.hidden_replies, main.banned_replies,
            main.visible_replies) == (3, 1, 1, 1, 1)
    assert main.locked and not main.pinned and main.visible
    assert not summary.topic(spam_topic).visible
    assert summary.board_topics == {board: 1} and summary.visible_topics == 1
    assert deleted not in [t.uri for t in summary.topics]
    assert summary.posts == 5 and summary.operations == len(log.ops)


def test_a_ban_still_running_at_the_reference_time_counts() -> None:
    log = Log()
    log.act("ban", {"did": BOB}, expiresAt="1970-01-01T00:00:05.000Z")
    assert summarize(log.ops, FORUM, as_of_us=4_000_000).banned == {BOB}
    assert summarize(log.ops, FORUM, as_of_us=5_000_000).banned == frozenset()


def test_malformed_moderation_records_are_ignored() -> None:
    log = Log()
    log.act("ban", {"did": 42})
    log.write(FORUM, "space.atbb.modAction", "bad", {"action": "x", "subject": "nope"})
    log.act("lock", {"post": "nope"})
    summary = summarize(log.ops, FORUM)
    assert summary.banned == frozenset() and summary.mod_actions == 3
