"""Record shapes: reading a reference in either shape, and the builders writing the
original atBB's (or the bare) shape."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.lexicon import LexiconValidator
from events.records import (
    Shape,
    StrongRef,
    board_record,
    category_record,
    css_property,
    edited,
    forum_record,
    membership_record,
    mod_action_record,
    reaction_record,
    reference,
    reply_record,
    role_assignment_record,
    role_record,
    theme_policy_record,
    theme_record,
    topic_record,
)
from tests import original_atbb

FORUM_DID = "did:plc:forumforumforumforum2345"
ALICE = "did:plc:alicealicealicealice2345"
CID = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i"
NOW = "2026-03-02T09:00:00.000Z"
FORUM = StrongRef(f"at://{FORUM_DID}/space.atbb.forum.forum/self", CID)
CATEGORY = StrongRef(f"at://{FORUM_DID}/space.atbb.forum.category/3mptbypluud2a", CID)
BOARD = StrongRef(f"at://{FORUM_DID}/space.atbb.forum.board/3mptbypluud2b", CID)
TOPIC = StrongRef(f"at://{ALICE}/space.atbb.post/3mptbypluud2c", CID)
THEME = StrongRef(f"at://{FORUM_DID}/space.atbb.forum.theme/3mptbypluud2d", CID)
ROLE = StrongRef(f"at://{FORUM_DID}/space.atbb.forum.role/3mptbypluud2e", CID)
BARE = FORUM.json()


# --- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        BARE,
        {"$type": "com.atproto.repo.strongRef", **BARE},
        {"forum": BARE},
        {"$type": "space.atbb.post#forumRef", "forum": BARE},
        {"$type": "space.atbb.membership#forumRef", "forum": BARE},
        {"$type": "space.atbb.post#forumRef", "forum": BARE, "uri": "at://elsewhere"},
    ],
)
def test_a_reference_reads_the_same_in_every_shape(value: dict[str, Any]) -> None:
    assert reference({"forum": value}, "forum") == (FORUM.uri, FORUM.cid)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, (None, None)),
        ({}, (None, None)),
        ({"forum": "at://x"}, (None, None)),
        ({"forum": {"uri": 5, "cid": CID}}, (None, CID)),
        ({"forum": {"forum": "not an object"}}, (None, None)),
        ({"forum": {"forum": {"uri": FORUM.uri}}}, (FORUM.uri, None)),
        # the wrapper is named after its field: a board's reference is not under "forum"
        ({"board": {"forum": BARE}}, (None, None)),
        # declared a strongRef: read as one, whatever it holds
        ({"forum": {"$type": "com.atproto.repo.strongRef", "forum": BARE}}, (None, None)),
    ],
)
def test_a_missing_or_malformed_reference_reads_as_nones(
    record: dict[str, Any] | None, expected: tuple[str | None, str | None]
) -> None:
    field = "board" if record is not None and "board" in record else "forum"
    assert reference(record, field) == expected


@pytest.mark.parametrize(
    ("name", "prop"),
    [("color-bg", "--color-bg"), ("--color-bg", "--color-bg"), ("font-size-2xl",
                                                                   "--font-size-2xl")],
)
def test_a_token_name_with_or_without_dashes_is_one_property(name: str, prop: str) -> None:
    assert css_property(name) == prop


# mostly well-formed, so that many drawn references pass and the reading is checked
_URIS = st.sampled_from([FORUM.uri, FORUM.uri, FORUM.uri, "at://", "https://x.example/", 7])
_CIDS = st.sampled_from([CID, CID, CID, "Qm123", None])


@st.composite
def _references(draw: st.DrawFn) -> dict[str, Any]:
    """A reference as anyone might write one: any mix of a bare strongRef's fields, a
    wrapped one and a $type, each part well-formed or not."""
    value: dict[str, Any] = {}
    if draw(st.booleans()):
        value["uri"] = draw(_URIS)
    if draw(st.booleans()):
        value["cid"] = draw(_CIDS)
    wrapped = draw(st.sampled_from(["absent", "ref", "ref", "partial", "junk"]))
    if wrapped == "ref":
        value["forum"] = {"uri": draw(_URIS), "cid": draw(_CIDS)}
    elif wrapped == "partial":
        value["forum"] = {"uri": draw(_URIS)}
    elif wrapped == "junk":
        value["forum"] = draw(st.sampled_from(["x", 1, [], None]))
    declared = draw(st.sampled_from([None, "space.atbb.post#forumRef",
                                     "com.atproto.repo.strongRef", "space.atbb.defs#forumRef"]))
    if declared is not None:
        value["$type"] = declared
    return value


@settings(max_examples=400, deadline=None)
@given(_references())
def test_what_the_validator_passes_is_what_a_reader_reads(value: dict[str, Any]) -> None:
    validator = LexiconValidator.load()
    post = topic_record("T", "x", forum=FORUM, board=BOARD, created_at=NOW, shape="bare")
    post["forum"] = value
    if not validator.validate("space.atbb.post", "3mptbypluud2f", post, did=ALICE,
                              forum_did=FORUM_DID).valid:
        return
    uri, cid = reference(post, "forum")
    assert uri is not None and cid is not None
    # the part read is one the validator checked: alone, it is a valid reference too
    post["forum"] = {"uri": uri, "cid": cid}
    assert validator.validate("space.atbb.post", "3mptbypluud2f", post, did=ALICE,
                              forum_did=FORUM_DID).valid


# --- building --------------------------------------------------------------------------------


def _key_order_sorted(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(map(_key_order_sorted, value.values()))
    if isinstance(value, list):
        return all(map(_key_order_sorted, value))
    return True


def _every_record(shape: Shape) -> list[tuple[str, str, dict[str, Any]]]:
    """(author, rkey, record) of every builder."""
    tokens = {"--color-bg": "#fff", "color-text": "#111"}
    return [
        (FORUM_DID, "self", forum_record("F", created_at=NOW, description="d")),
        (FORUM_DID, "3mptbypluud2a", category_record("C", created_at=NOW, slug="c",
                                                     sort_order=0)),
        (FORUM_DID, "3mptbypluud2b", board_record("B", CATEGORY, created_at=NOW,
                                                  sort_order=1, shape=shape)),
        (ALICE, "3mptbypluud2c", topic_record("T", "x", forum=FORUM, board=BOARD,
                                              created_at=NOW, langs=["en"], shape=shape)),
        (ALICE, "3mptbypluud2f", reply_record("r", forum=FORUM, root=TOPIC, parent=TOPIC,
                                              created_at=NOW, shape=shape)),
        (ALICE, "3mptbypluud2g", membership_record(FORUM, created_at=NOW, shape=shape)),
        (FORUM_DID, "3mptbypluud2d", theme_record("L", "light", tokens, created_at=NOW,
                                                  font_urls=["https://f.example/a.css"],
                                                  shape=shape)),
        (FORUM_DID, "self", theme_policy_record([THEME, THEME.uri + "x"],
                                                default_light=THEME.uri,
                                                default_dark=THEME.uri + "x", updated_at=NOW)),
        (FORUM_DID, "3mptbypluud2e", role_record("Member", ["*"], 30, created_at=NOW)),
        (FORUM_DID, ALICE, role_assignment_record(ALICE, ROLE, created_by=FORUM_DID,
                                                  created_at=NOW)),
        (FORUM_DID, "3mptbypluud2h", mod_action_record(
            "space.atbb.modAction.lock", subject_post=TOPIC, reason="r",
            created_by=FORUM_DID, created_at=NOW)),
        (FORUM_DID, "3mptbypluud2i", mod_action_record(
            "space.atbb.modAction.ban", subject_did=ALICE, reason="r", created_by=FORUM_DID,
            created_at=NOW, expires_at=NOW)),
        (ALICE, "3mptbypluud2j", reaction_record(TOPIC, "like", created_at=NOW)),
    ]


@pytest.mark.parametrize("shape", ["original", "bare"])
def test_every_built_record_is_valid_with_its_keys_in_jetstream_order(shape: Shape) -> None:
    validator = LexiconValidator.load()
    for author, rkey, record in _every_record(shape):
        verdict = validator.validate(record["$type"], rkey, record, did=author,
                                     forum_did=FORUM_DID)
        assert verdict.valid, (record, verdict)
        assert _key_order_sorted(record), record


def test_the_original_shape_is_what_the_original_writes() -> None:
    assert topic_record("T", "x", forum=FORUM, board=BOARD, created_at=NOW) == \
        original_atbb.topic("T", "x", BARE, BOARD.json(), NOW, typed=True)
    assert reply_record("r", forum=FORUM, root=TOPIC, parent=TOPIC, created_at=NOW) == \
        original_atbb.reply("r", BARE, TOPIC.json(), TOPIC.json(), NOW, typed=True)
    assert board_record("B", CATEGORY, created_at=NOW, description="d", sort_order=2) == \
        original_atbb.board("B", "d", 2, CATEGORY.json(), NOW, typed=True)
    assert category_record("C", created_at=NOW, description="d", sort_order=0) == \
        original_atbb.category("C", "d", 0, NOW)
    assert membership_record(FORUM, created_at=NOW) == \
        original_atbb.membership(BARE, NOW, typed=True)
    original = original_atbb.theme("N", "light", NOW)
    dashed = {css_property(name): value for name, value in original["tokens"].items()}
    assert theme_record("N", "light", dashed, created_at=NOW,
                        css_overrides=original["cssOverrides"],
                        font_urls=original["fontUrls"]) == original


def test_the_bare_shape_writes_strongrefs_and_dashed_tokens() -> None:
    topic = topic_record("T", "x", forum=FORUM, board=BOARD, created_at=NOW, shape="bare")
    assert (topic["forum"], topic["board"]) == (BARE, BOARD.json())
    reply = reply_record("r", forum=FORUM, root=TOPIC, parent=TOPIC, created_at=NOW,
                         shape="bare")
    assert reply["reply"] == {"parent": TOPIC.json(), "root": TOPIC.json()}
    assert board_record("B", CATEGORY, created_at=NOW, shape="bare")["category"] == \
        CATEGORY.json()
    assert membership_record(FORUM, created_at=NOW, shape="bare")["forum"] == BARE
    theme = theme_record("L", "dark", {"color-bg": "#000", "--radius": "0"}, created_at=NOW,
                         shape="bare")
    assert theme["tokens"] == {"--color-bg": "#000", "--radius": "0"}


def test_edited_keeps_the_shape_and_the_key_order() -> None:
    topic = topic_record("T", "x", forum=FORUM, board=BOARD, created_at=NOW)
    changed = edited(topic, text="y", updatedAt=NOW)
    assert changed == {**topic, "text": "y", "updatedAt": NOW}
    assert _key_order_sorted(changed)
    with pytest.raises(ValueError, match=r"\$type"):
        edited({"text": "x"}, text="y")


def test_builders_refuse_what_they_cannot_write() -> None:
    with pytest.raises(ValueError, match="one subject"):
        mod_action_record("space.atbb.modAction.ban", reason="r", created_by=FORUM_DID,
                          created_at=NOW)
    with pytest.raises(ValueError, match="one subject"):
        mod_action_record("space.atbb.modAction.ban", subject_did=ALICE, subject_post=TOPIC,
                          reason="r", created_by=FORUM_DID, created_at=NOW)
    odd: Any = "wrapped"
    with pytest.raises(ValueError, match="shape must be one of original, bare"):
        topic_record("T", "x", forum=FORUM, board=BOARD, created_at=NOW, shape=odd)
