"""The storyline's invariants: what the seeded forum promises its readers and tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from appview.devnet.scenario import build_scenario
from appview.devnet.scenario_model import ScenarioSize, iso
from events.collections import MOD_ACTION, POST, REACTION, ROLE, ROLE_ASSIGNMENT
from events.lexicon import LexiconValidator
from events.roles import DEFAULT_ROLES


@pytest.fixture(scope="module")
def story() -> list[Any]:
    return build_scenario(11, "small").operation_list()


@pytest.fixture(scope="module")
def medium() -> list[Any]:
    size = ScenarioSize(members=40, topics=150, replies_per_topic=6.0, mod_action_rate=0.05)
    return build_scenario(12, size, real_dids=False).operation_list()


def refs(value: Any) -> list[dict[str, str]]:
    """Every strongRef ({cid, uri}) inside a record."""
    if isinstance(value, dict):
        if set(value) == {"cid", "uri"}:
            return [value]
        return [ref for item in value.values() for ref in refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs(item)]
    return []


def test_every_strong_ref_names_a_version_written_before(medium) -> None:
    written: set[tuple[str, str]] = set()
    checked = 0
    for op in medium:
        for ref in refs(op.record):
            assert (ref["uri"], ref["cid"]) in written, (op.uri, ref)
            checked += 1
        if op.cid is not None:
            written.add((op.uri, op.cid))
    assert checked > 1000


def test_writes_are_in_time_order_with_unique_rkeys_per_repo(medium) -> None:
    times = [op.at_us for op in medium]
    assert times == sorted(set(times))
    created = [(op.did, op.collection, op.rkey) for op in medium if op.op == "create"]
    assert len(created) == len(set(created))


def test_roles_and_assignments_follow_the_lexicon_notes(story) -> None:
    roles = {op.record["name"]: op for op in story if op.collection == ROLE}
    assert [(name, roles[name].record["priority"]) for name, *_ in DEFAULT_ROLES] == [
        ("Owner", 0), ("Admin", 10), ("Moderator", 20), ("Member", 30)
    ]
    assert roles["Owner"].record["permissions"] == ["*"]
    member = set(roles["Member"].record["permissions"])
    posting = ("createTopics", "createPosts", "react")
    assert member == {f"space.atbb.permission.{p}" for p in posting}
    assert "space.atbb.permission.banUsers" in roles["Moderator"].record["permissions"]
    assert "space.atbb.permission.manageForum" in roles["Admin"].record["permissions"]
    assignments = [op for op in story if op.collection == ROLE_ASSIGNMENT]
    assert all(op.rkey == op.record["subject"] for op in assignments)
    assert {op.record["role"]["uri"] for op in assignments} >= {
        roles[name].uri for name in ("Admin", "Moderator", "Member")
    }
    assert any(op.op == "put" for op in assignments)  # a promotion


def test_every_kind_of_moderation_happens_with_a_reason(story) -> None:
    actions = [op.record for op in story if op.collection == MOD_ACTION]
    kinds = Counter(record["action"].rsplit(".", 1)[1] for record in actions)
    assert set(kinds) >= {"ban", "unban", "lock", "unlock", "pin", "unpin", "delete", "undelete"}
    assert all(1 <= len(record["reason"]) <= 3000 for record in actions)
    temporary = [record for record in actions if "expiresAt" in record]
    assert len(temporary) == 1 and temporary[0]["action"].endswith(".ban")
    assert temporary[0]["expiresAt"] > temporary[0]["createdAt"]
    assert all(op.did == story[0].did for op in story if op.collection == MOD_ACTION)


def test_no_writes_that_read_side_policy_would_have_to_judge(medium) -> None:
    """No reply to a locked topic, no post by a banned member, no action on a deleted post,
    no delete or hide of a reply someone answered."""
    locked: set[str] = set()
    banned: set[str] = set()
    deleted: set[str] = set()
    answered: set[str] = set()
    for op in medium:
        record = op.record or {}
        if op.collection == MOD_ACTION:
            action = record["action"].rsplit(".", 1)[1]
            subject = record["subject"]
            if action in ("lock", "unlock"):
                (locked.add if action == "lock" else locked.discard)(subject["post"]["uri"])
            elif action in ("ban", "unban"):
                (banned.add if action == "ban" else banned.discard)(subject["did"])
            elif "post" in subject:
                assert subject["post"]["uri"] not in deleted
                if action == "delete":
                    assert subject["post"]["uri"] not in answered
        elif op.collection in (POST, REACTION) and op.op != "delete":
            assert op.did not in banned, op.uri
            if "reply" in record:
                assert record["reply"]["root"]["uri"] not in locked
                assert record["reply"]["parent"]["uri"] not in deleted
                answered.add(record["reply"]["parent"]["uri"])
        if op.collection == POST and op.op == "delete":
            assert op.uri not in answered
            deleted.add(op.uri)
            assert "reply" in next(
                o.record for o in medium if o.uri == op.uri and o.op == "create"
            )


def test_bodies_vary_in_length_and_markdown(medium) -> None:
    texts = [op.record["text"] for op in medium if op.collection == POST and op.op == "create"]
    lengths = sorted(len(text) for text in texts)
    assert lengths[0] < 200 and lengths[-1] > 3000
    assert any("\n- " in text or text.startswith("- ") for text in texts)
    assert any("```" in text for text in texts)
    assert any("](https://" in text for text in texts)
    quotes = [text for text in texts if "\n\n> " in text]
    assert quotes and all("](at://" in text for text in quotes)
    assert all(len(text.encode()) <= 100_000 for text in texts)
    titles = [op.record["title"] for op in medium if op.op == "create" and "title" in (
        op.record or {})]
    assert titles and all(0 < len(title) <= 120 for title in titles)


def test_edits_keep_created_at_and_add_updated_at(story) -> None:
    created = {op.uri: op.record for op in story if op.collection == POST and op.op == "create"}
    edits = [op for op in story if op.collection == POST and op.op == "put"]
    assert edits
    for op in edits:
        assert op.record["createdAt"] == created[op.uri]["createdAt"]
        assert op.record["updatedAt"] == iso(op.at_us)
        assert op.record["text"].startswith(created[op.uri]["text"])


def test_every_write_passes_the_projects_lexicons(medium) -> None:
    validator = LexiconValidator.load()
    forum_did = medium[0].did
    for op in medium:
        if op.record is None:
            verdict = validator.validate_delete(
                op.collection, op.rkey, did=op.did, forum_did=forum_did
            )
        else:
            verdict = validator.validate(
                op.collection, op.rkey, op.record, did=op.did, forum_did=forum_did
            )
        assert verdict.valid, (op.uri, verdict.reason)


def test_the_story_writes_records_in_the_original_atbbs_shape(story) -> None:
    by_collection: dict[str, list[dict[str, Any]]] = {}
    for op in story:
        if op.record is not None:
            by_collection.setdefault(op.collection, []).append(op.record)
    for board in by_collection["space.atbb.forum.board"]:
        assert board["category"]["$type"] == "space.atbb.forum.board#categoryRef"
        assert set(board["category"]["category"]) == {"cid", "uri"}
    for membership in by_collection["space.atbb.membership"]:
        assert membership["forum"]["$type"] == "space.atbb.membership#forumRef"
    posts = by_collection[POST]
    for post in posts:
        assert post["forum"]["$type"] == "space.atbb.post#forumRef"
        assert set(post["forum"]["forum"]) == {"cid", "uri"}
        if "reply" in post:
            assert post["reply"]["$type"] == "space.atbb.post#replyRef"
        else:
            assert post["board"]["$type"] == "space.atbb.post#boardRef"
    assert any("reply" in post for post in posts) and any("board" in post for post in posts)
    for theme in by_collection["space.atbb.forum.theme"]:
        assert theme["tokens"] and not any(name.startswith("-") for name in theme["tokens"])
