"""The record validator: every lexicon with valid and invalid records, the rules beyond
the lexicons, the reasons, and that nothing raises out of it."""

from __future__ import annotations

import copy
import filecmp
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.lexicon import (
    LexiconError,
    LexiconValidator,
    grapheme_count,
    is_datetime,
    is_forum_owned,
    is_superseded,
    read_documents,
)
from events.model import RecordEvent, Verdict
from tests import original_atbb

ROOT = Path(__file__).resolve().parent.parent
FORUM = "did:plc:forumforumforumforum2345"
ALICE = "did:plc:alicealicealicealice2345"
MALLORY = "did:plc:mallorymallorymallory234"
CID = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i"
TID = "3mptbypluud2a"
NOW = "2026-07-04T14:38:08.999Z"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 1 grapheme, 25 bytes
E_ACUTE = "e\u0301"  # 1 grapheme, 2 code points, 3 bytes


def ref(collection: str, rkey: str = TID, did: str = FORUM) -> dict[str, str]:
    return {"uri": f"at://{did}/{collection}/{rkey}", "cid": CID}


FORUM_REF = ref("space.atbb.forum.forum", "self")
THEME_URI = f"at://{FORUM}/space.atbb.forum.theme/{TID}"

# collection -> (rkey, author, a valid record with every field the lexicon knows)
VALID: dict[str, tuple[str, str, dict[str, Any]]] = {
    "space.atbb.forum.forum": (
        "self",
        FORUM,
        {"name": "atBB test forum", "description": "A forum", "createdAt": NOW},
    ),
    "space.atbb.forum.category": (
        TID,
        FORUM,
        {
            "name": "General",
            "description": "About things",
            "slug": "general-1",
            "sortOrder": 0,
            "createdAt": NOW,
        },
    ),
    "space.atbb.forum.board": (
        TID,
        FORUM,
        {
            "name": "Off-topic",
            "description": "",
            "slug": "off-topic",
            "sortOrder": 3,
            "category": ref("space.atbb.forum.category"),
            "createdAt": NOW,
        },
    ),
    "space.atbb.forum.role": (
        TID,
        FORUM,
        {
            "name": "Moderator",
            "description": "Keeps the peace",
            "permissions": [
                "space.atbb.permission.banUsers",
                "space.atbb.permission.lockTopics",
                "*",
            ],
            "priority": 20,
            "createdAt": NOW,
        },
    ),
    "space.atbb.forum.roleAssignment": (
        ALICE,
        FORUM,
        {
            "subject": ALICE,
            "role": ref("space.atbb.forum.role"),
            "createdBy": FORUM,
            "createdAt": NOW,
        },
    ),
    "space.atbb.forum.theme": (
        TID,
        FORUM,
        {
            "name": "Neon",
            "colorScheme": "dark",
            "tokens": {"--bg": "#000", "--font-body": '"Inter", sans-serif', "--gap-2": "4px"},
            "cssOverrides": ".post { color: red; }",
            "fontUrls": ["https://fonts.example/a.css?family=Inter"],
            "createdAt": NOW,
        },
    ),
    "space.atbb.forum.themePolicy": (
        "self",
        FORUM,
        {
            "availableThemes": [{"uri": THEME_URI}, {"uri": THEME_URI + "x", "cid": CID}],
            "defaultLightTheme": THEME_URI,
            "defaultDarkTheme": THEME_URI + "x",
            "allowUserChoice": False,
            "updatedAt": NOW,
        },
    ),
    "space.atbb.modAction": (
        TID,
        FORUM,
        {
            "action": "space.atbb.modAction.ban",
            "subject": {"did": ALICE},
            "reason": "spam",
            "createdBy": FORUM,
            "createdAt": NOW,
            "expiresAt": "2026-07-05T00:00:00+02:00",
        },
    ),
    "space.atbb.membership": (TID, ALICE, {"forum": FORUM_REF, "createdAt": NOW}),
    "space.atbb.post": (
        TID,
        ALICE,
        {
            "title": "Hello",
            "text": "Hello **world**",
            "forum": FORUM_REF,
            "board": ref("space.atbb.forum.board"),
            "langs": ["en", "pt-BR"],
            "createdAt": NOW,
            "updatedAt": NOW,
        },
    ),
    "space.atbb.reaction": (
        TID,
        ALICE,
        {"subject": ref("space.atbb.post", did=ALICE), "reaction": "👍", "createdAt": NOW},
    ),
}
REQUIRED: dict[str, list[str]] = {
    "space.atbb.forum.forum": ["name"],
    "space.atbb.forum.category": ["name", "createdAt"],
    "space.atbb.forum.board": ["name", "category", "createdAt"],
    "space.atbb.forum.role": ["name"],
    "space.atbb.forum.roleAssignment": ["subject", "role"],
    "space.atbb.forum.theme": ["name"],
    "space.atbb.forum.themePolicy": ["availableThemes"],
    "space.atbb.modAction": ["action", "subject", "createdAt"],
    "space.atbb.membership": ["forum", "createdAt"],
    "space.atbb.post": ["text", "createdAt"],
    "space.atbb.reaction": ["subject", "reaction", "createdAt"],
}
WRONG_KEY = {
    "space.atbb.forum.forum": TID,
    "space.atbb.forum.category": "self",
    "space.atbb.forum.board": "general",
    "space.atbb.forum.role": "3mptbypluud2",
    "space.atbb.forum.roleAssignment": "..",
    "space.atbb.forum.theme": "kmptbypluud2a",
    "space.atbb.forum.themePolicy": "policy",
    "space.atbb.modAction": "self",
    "space.atbb.membership": "self",
    "space.atbb.post": "my-post",
    "space.atbb.reaction": ALICE,
}


@pytest.fixture(scope="module")
def validator() -> LexiconValidator:
    return LexiconValidator.load()


def record_of(collection: str, **changes: Any) -> dict[str, Any]:
    record = {"$type": collection, **copy.deepcopy(VALID[collection][2])}
    for name, value in changes.items():
        if value is DROP:
            record.pop(name, None)
        else:
            record[name] = value
    return record


DROP = object()


def check(
    validator: LexiconValidator,
    collection: str,
    record: object,
    *,
    rkey: str | None = None,
    did: str | None = None,
) -> Verdict:
    default_rkey, author, _ = VALID[collection]
    return validator.validate(
        collection,
        default_rkey if rkey is None else rkey,
        record,
        did=author if did is None else did,
        forum_did=FORUM,
    )


def reason_of(verdict: Verdict) -> str:
    assert not verdict.valid, "expected an invalid verdict"
    assert verdict.reason
    return verdict.reason


# --- the documents -----------------------------------------------------------------------


def test_the_shipped_lexicons_and_the_top_level_copy_are_identical() -> None:
    packaged = ROOT / "events" / "lexicons"
    top = ROOT / "lexicons"
    names = sorted(p.name for p in packaged.glob("*.json"))
    assert names == sorted(p.name for p in top.glob("*.json"))
    match, mismatch, errors = filecmp.cmpfiles(packaged, top, names, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert len(match) == 12


def test_every_record_type_of_the_spec_has_a_lexicon(validator: LexiconValidator) -> None:
    assert validator.collections == set(VALID)
    assert {d["id"] for d in read_documents()} == {*VALID, "com.atproto.repo.strongRef"}
    for document in read_documents():
        assert document["lexicon"] == 1
        path = ROOT / "lexicons" / f"{document['id']}.json"
        assert json.loads(path.read_text(encoding="utf-8")) == document


@pytest.mark.parametrize(
    ("collection", "key"),
    [
        ("space.atbb.forum.forum", "literal:self"),
        ("space.atbb.forum.themePolicy", "literal:self"),
        ("space.atbb.forum.roleAssignment", "any"),
        ("space.atbb.post", "tid"),
        ("space.atbb.modAction", "tid"),
    ],
)
def test_record_key_types(validator: LexiconValidator, collection: str, key: str) -> None:
    assert validator.record_key_type(collection) == key
    assert validator.record_key_type("space.atbb.nothing") is None


def test_forum_ownership_by_collection() -> None:
    assert is_forum_owned("space.atbb.forum.board")
    assert is_forum_owned("space.atbb.modAction")
    assert not is_forum_owned("space.atbb.post")
    assert not is_forum_owned("space.atbb.membership")


# --- every lexicon: valid, each required field, $type, key, ownership ---------------------


@pytest.mark.parametrize("collection", sorted(VALID))
def test_the_valid_example_is_valid(validator: LexiconValidator, collection: str) -> None:
    assert check(validator, collection, record_of(collection)) == Verdict.ok()


@pytest.mark.parametrize(
    ("collection", "field"),
    [(collection, field) for collection, fields in REQUIRED.items() for field in fields],
)
def test_a_missing_required_field_is_invalid(
    validator: LexiconValidator, collection: str, field: str
) -> None:
    verdict = check(validator, collection, record_of(collection, **{field: DROP}))
    root = collection.rsplit(".", 1)[1]
    assert reason_of(verdict) == f"{root}.{field}: required field is missing"


@pytest.mark.parametrize("collection", sorted(VALID))
def test_optional_fields_may_be_left_out(validator: LexiconValidator, collection: str) -> None:
    record = {"$type": collection}
    record.update({k: v for k, v in record_of(collection).items() if k in REQUIRED[collection]})
    if collection == "space.atbb.post":
        record["title"] = "A topic needs a title"
    assert check(validator, collection, record).valid, check(validator, collection, record)


@pytest.mark.parametrize("collection", sorted(VALID))
def test_type_must_be_the_collection(validator: LexiconValidator, collection: str) -> None:
    missing = check(validator, collection, record_of(collection, **{"$type": DROP}))
    assert reason_of(missing) == f"record has no $type (it must be {collection})"
    wrong = check(validator, collection, record_of(collection, **{"$type": "app.bsky.feed.post"}))
    assert reason_of(wrong) == (
        f"record $type 'app.bsky.feed.post' does not match its collection {collection}"
    )
    odd = check(validator, collection, record_of(collection, **{"$type": ["x"]}))
    assert "does not match" in reason_of(odd)


@pytest.mark.parametrize("collection", sorted(VALID))
def test_a_wrong_record_key_is_invalid(validator: LexiconValidator, collection: str) -> None:
    verdict = check(validator, collection, record_of(collection), rkey=WRONG_KEY[collection])
    key_type = validator.record_key_type(collection)
    assert reason_of(verdict).startswith(f"record key '{WRONG_KEY[collection]}' is not")
    assert f"key type is {key_type}" in reason_of(verdict)


@pytest.mark.parametrize(
    "collection",
    [*sorted(c for c in VALID if c.startswith("space.atbb.forum.")), "space.atbb.modAction"],
)
def test_forum_owned_records_from_another_did_are_forged(
    validator: LexiconValidator, collection: str
) -> None:
    verdict = check(validator, collection, record_of(collection), did=MALLORY)
    assert reason_of(verdict) == (
        f"forum-owned collection {collection} from {MALLORY}, not the Forum account {FORUM}"
    )


@pytest.mark.parametrize("collection", ["space.atbb.post", "space.atbb.membership"])
def test_member_records_come_from_anyone(validator: LexiconValidator, collection: str) -> None:
    assert check(validator, collection, record_of(collection), did=MALLORY).valid
    assert check(validator, collection, record_of(collection), did=FORUM).valid


def test_unknown_and_foreign_collections(validator: LexiconValidator) -> None:
    unknown = validator.validate(
        "space.atbb.forum.poll", TID, {"$type": "space.atbb.forum.poll"}, did=FORUM,
        forum_did=FORUM,
    )
    assert reason_of(unknown) == "unknown collection 'space.atbb.forum.poll': no lexicon defines it"
    foreign = validator.validate(
        "app.bsky.feed.post", TID, {"$type": "app.bsky.feed.post"}, did=ALICE, forum_did=FORUM
    )
    assert "not a space.atbb.* record type" in reason_of(foreign)


@pytest.mark.parametrize("record", [None, [], "a post", 5, [{"text": "x"}]])
def test_a_record_must_be_an_object(validator: LexiconValidator, record: object) -> None:
    assert reason_of(check(validator, "space.atbb.post", record)).startswith(
        "record is not a JSON object"
    )


# --- lengths: graphemes and bytes --------------------------------------------------------


def test_post_text_grapheme_limit_counts_combining_sequences(validator: LexiconValidator) -> None:
    at_limit = E_ACUTE * 10_000  # 20,000 code points, 30,000 bytes, 10,000 graphemes
    assert check(validator, "space.atbb.post", record_of("space.atbb.post", text=at_limit)).valid
    over = check(validator, "space.atbb.post", record_of("space.atbb.post", text=at_limit + "x"))
    assert reason_of(over) == "post.text: 10001 graphemes, more than 10000"


def test_post_text_byte_limit_counts_utf8(validator: LexiconValidator) -> None:
    at_limit = FAMILY * 4000  # 4,000 graphemes, 100,000 bytes
    assert check(validator, "space.atbb.post", record_of("space.atbb.post", text=at_limit)).valid
    over = check(validator, "space.atbb.post", record_of("space.atbb.post", text=at_limit + "é"))
    assert reason_of(over) == "post.text: 100002 bytes, more than 100000"


def test_post_text_may_not_be_empty(validator: LexiconValidator) -> None:
    verdict = check(validator, "space.atbb.post", record_of("space.atbb.post", text=""))
    assert reason_of(verdict) == "post.text: 0 graphemes, fewer than 1"


def test_title_limit_in_emoji(validator: LexiconValidator) -> None:
    flags = "\U0001f1f5\U0001f1f9"  # one flag: 2 code points, 1 grapheme
    ok = record_of("space.atbb.post", title=flags * 120)
    assert check(validator, "space.atbb.post", ok).valid
    over = check(validator, "space.atbb.post", record_of("space.atbb.post", title=flags * 121))
    assert reason_of(over) == "post.title: 121 graphemes, more than 120"


def test_names_and_reasons(validator: LexiconValidator) -> None:
    long_name = check(
        validator, "space.atbb.forum.board", record_of("space.atbb.forum.board", name="x" * 101)
    )
    assert reason_of(long_name) == "board.name: 101 graphemes, more than 100"
    empty_name = check(
        validator, "space.atbb.forum.category", record_of("space.atbb.forum.category", name="")
    )
    assert reason_of(empty_name) == "category.name: 0 bytes, fewer than 1"
    empty_reason = check(validator, "space.atbb.modAction", record_of("space.atbb.modAction",
                                                                        reason=""))
    assert reason_of(empty_reason) == "modAction.reason: 0 graphemes, fewer than 1"
    long_reason = check(
        validator, "space.atbb.modAction", record_of("space.atbb.modAction", reason="é" * 3001)
    )
    assert reason_of(long_reason) == "modAction.reason: 3001 graphemes, more than 3000"
    assert check(
        validator, "space.atbb.modAction", record_of("space.atbb.modAction", reason="é" * 3000)
    ).valid


def test_a_lone_surrogate_is_not_text(validator: LexiconValidator) -> None:
    verdict = check(validator, "space.atbb.post", record_of("space.atbb.post", text="a\ud800b"))
    assert reason_of(verdict) == "post.text: holds a lone surrogate, not valid Unicode"


def test_grapheme_count() -> None:
    assert grapheme_count(FAMILY * 3) == 3
    assert grapheme_count(E_ACUTE * 2 + "ab") == 4
    assert grapheme_count("") == 0


# --- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-29T23:59:60.123456Z",
        "2024-01-01T00:00:00+05:30",
        "2024-12-31T23:59:59.999999999Z",
        "1985-04-12T23:20:50.52Z",
        "2000-02-29T00:00:00Z",
        "2024-04-30T00:00:00-07:00",
    ],
)
def test_valid_datetimes(value: str) -> None:
    assert is_datetime(value)


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01",
        "2024-01-01T00:00:00",
        "2024-01-01t00:00:00Z",
        "2024-01-01T00:00:00z",
        "2024-01-01 00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:00-00:00",
        "2024-01-01T00:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "2024-01-01T00:00:00.Z",
        "２０２４-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z\n",
        "",
    ],
)
def test_invalid_datetimes(validator: LexiconValidator, value: str) -> None:
    assert not is_datetime(value)
    verdict = check(validator, "space.atbb.post", record_of("space.atbb.post", createdAt=value))
    assert reason_of(verdict).startswith(
        "post.createdAt: not an RFC 3339 datetime with a timezone"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"forum": {"uri": "https://example.com/forum", "cid": CID}},
            "post.forum.uri: not an at-uri (at://<did or handle>[/<nsid>[/<rkey>]]): "
            "'https://example.com/forum'",
        ),
        (
            {"board": {"uri": f"at://{FORUM}/space.atbb.forum.board/", "cid": CID}},
            "post.board.uri: not an at-uri",
        ),
        ({"forum": {"uri": FORUM_REF["uri"], "cid": "Qm123"}}, "post.forum.cid: not a CIDv1"),
        ({"forum": {"uri": FORUM_REF["uri"], "cid": CID.upper()}}, "post.forum.cid: not a CIDv1"),
        ({"forum": {"uri": FORUM_REF["uri"]}}, "post.forum.cid: required field is missing"),
        (
            {"forum": FORUM_REF["uri"]},
            "post.forum: expected an object (one of space.atbb.post#forumRef, "
            "com.atproto.repo.strongRef), got string",
        ),
        ({"langs": ["en", "not a tag!"]}, "post.langs[1]: not a BCP-47 language tag"),
        ({"langs": ["en", "fr", "de", "pt"]}, "post.langs: 4 items, more than 3"),
        ({"langs": "en"}, "post.langs: expected an array, got string"),
        ({"text": 5}, "post.text: expected a string, got integer"),
        ({"text": None}, "post.text: expected a string, got null"),
        ({"title": ["x"]}, "post.title: expected a string, got array"),
        ({"createdAt": 1720000000}, "post.createdAt: expected a string, got integer"),
        ({"reply": "at://x"}, "post.reply: expected an object, got string"),
        ({"reply": {"root": FORUM_REF}}, "post.reply.parent: required field is missing"),
        (
            {"reply": {"root": FORUM_REF, "parent": {"uri": "at://x", "cid": CID}}},
            "post.reply.parent.uri: not an at-uri",
        ),
    ],
)
def test_post_fields(validator: LexiconValidator, changes: dict[str, Any], reason: str) -> None:
    verdict = check(validator, "space.atbb.post", record_of("space.atbb.post", **changes))
    assert reason_of(verdict).startswith(reason)


def test_topics_need_a_title_and_replies_do_not(validator: LexiconValidator) -> None:
    topic = check(validator, "space.atbb.post", record_of("space.atbb.post", title=DROP))
    assert reason_of(topic) == "post.title: required on a topic (a post without reply)"
    reply = record_of(
        "space.atbb.post", title=DROP, board=DROP, reply={"root": FORUM_REF, "parent": FORUM_REF}
    )
    assert check(validator, "space.atbb.post", reply).valid


def test_unknown_fields_are_allowed(validator: LexiconValidator) -> None:
    record = record_of("space.atbb.post", extra={"anything": [1, 2.5, None]}, **{"x-y": 1})
    assert check(validator, "space.atbb.post", record).valid


# --- the original atBB's record shapes ---------------------------------------------------

BOARD_REF = ref("space.atbb.forum.board")
CATEGORY_REF = ref("space.atbb.forum.category")
POST_REF = ref("space.atbb.post", did=ALICE)
ORIGINAL_RECORDS = [
    *(
        pytest.param(collection, record, id=f"{name}-{'typed' if typed else 'untyped'}")
        for typed in (False, True)
        for name, collection, record in (
            ("topic", "space.atbb.post",
             original_atbb.topic("Hello", "First post", FORUM_REF, BOARD_REF, NOW, typed=typed)),
            ("reply", "space.atbb.post",
             original_atbb.reply("Me too", FORUM_REF, POST_REF, POST_REF, NOW, typed=typed)),
            ("board", "space.atbb.forum.board",
             original_atbb.board("Help", "Ask here", 1, CATEGORY_REF, NOW, typed=typed)),
            ("membership", "space.atbb.membership",
             original_atbb.membership(FORUM_REF, NOW, typed=typed)),
        )
    ),
    pytest.param("space.atbb.forum.category",
                 original_atbb.category("General", "About things", 0, NOW), id="category"),
    pytest.param("space.atbb.forum.theme", original_atbb.theme("Neobrutal", "light", NOW),
                 id="theme"),
]


@pytest.mark.parametrize(("collection", "record"), ORIGINAL_RECORDS)
def test_records_as_the_original_atbb_writes_them_are_valid(
    validator: LexiconValidator, collection: str, record: dict[str, Any]
) -> None:
    assert check(validator, collection, record) == Verdict.ok()


def test_both_spellings_of_a_token_name_are_valid(validator: LexiconValidator) -> None:
    tokens = {"color-bg": "#fff", "--color-text": "#000", "space-2xl": "48px", "--a": "1"}
    record = record_of("space.atbb.forum.theme", tokens=tokens)
    assert check(validator, "space.atbb.forum.theme", record).valid


def test_a_post_longer_than_the_original_allows_is_still_ours(
    validator: LexiconValidator,
) -> None:
    # the original caps text at 300 graphemes / 3000 bytes; we read up to 10,000
    record = record_of("space.atbb.post", text=FAMILY * 2000)
    assert check(validator, "space.atbb.post", record).valid


WRAPPED_FORUM = {"forum": FORUM_REF}
FORUM_UNION = "space.atbb.post#forumRef, com.atproto.repo.strongRef"


@pytest.mark.parametrize(
    "forum",
    [
        FORUM_REF,
        {"$type": "com.atproto.repo.strongRef", **FORUM_REF},
        WRAPPED_FORUM,
        {"$type": "space.atbb.post#forumRef", **WRAPPED_FORUM},
        # the $type of another document's wrapper def: matched by shape
        {"$type": "space.atbb.defs#forumRef", **WRAPPED_FORUM},
        {"forum": {"$type": "com.atproto.repo.strongRef", **FORUM_REF}},
    ],
)
def test_a_reference_reads_bare_or_wrapped(
    validator: LexiconValidator, forum: dict[str, Any]
) -> None:
    record = record_of("space.atbb.post", forum=forum)
    assert check(validator, "space.atbb.post", record).valid


@pytest.mark.parametrize(
    ("forum", "reason"),
    [
        ({"forum": {"uri": FORUM_REF["uri"]}}, "post.forum.forum.cid: required field is missing"),
        ({"uri": FORUM_REF["uri"]}, "post.forum.cid: required field is missing"),
        ({"forum": {**FORUM_REF, "cid": "Qm1"}}, "post.forum.forum.cid: not a CIDv1"),
        ({"forum": FORUM_REF["uri"]}, "post.forum.forum: expected an object, got string"),
        (
            {"$type": "space.atbb.post#forumRef", **FORUM_REF},
            "post.forum.forum: required field is missing",
        ),
        (
            {"$type": "com.atproto.repo.strongRef", **WRAPPED_FORUM},
            "post.forum.uri: required field is missing",
        ),
        ({**FORUM_REF, **WRAPPED_FORUM}, f"post.forum: no $type, and it fits more than one of "
                                         f"{FORUM_UNION}"),
        ({}, f"post.forum: no $type, and it has the required fields of none of {FORUM_UNION}"),
        (
            {"$type": "x.y#z"},
            f"post.forum: $type 'x.y#z' names none of {FORUM_UNION}, and it has the required "
            f"fields of none of {FORUM_UNION}",
        ),
    ],
)
def test_reference_mismatches(
    validator: LexiconValidator, forum: dict[str, Any], reason: str
) -> None:
    record = record_of("space.atbb.post", forum=forum)
    assert reason_of(check(validator, "space.atbb.post", record)).startswith(reason)


def test_wrapped_references_of_boards_and_memberships(validator: LexiconValidator) -> None:
    board = record_of("space.atbb.forum.board", category={"category": {"uri": "at://x"}})
    assert reason_of(check(validator, "space.atbb.forum.board", board)).startswith(
        "board.category.category.uri: not an at-uri"
    )
    membership = record_of("space.atbb.membership", forum={"forum": {}})
    assert reason_of(check(validator, "space.atbb.membership", membership)) == (
        "membership.forum.forum.uri: required field is missing"
    )


# --- verdicts an earlier validator gave ---------------------------------------------------


def _event(collection: str, record: dict[str, Any] | None, reason: str | None, *,
           did: str = ALICE, rkey: str = TID) -> RecordEvent:
    return RecordEvent(
        operation="create" if record is not None else "delete", did=did,
        collection=collection, rkey=rkey, rev=TID, cid=None if record is None else CID,
        record=record, valid=reason is None, reason=reason, source="jetstream",
        source_cursor=None, observed_at=0,
    )


# What the validator said of the original's records until it read their shapes.
EARLIER_VERDICTS = [
    ("space.atbb.post", "topic", "post.forum.uri: required field is missing"),
    ("space.atbb.post", "topic-typed", "post.forum.uri: required field is missing"),
    ("space.atbb.post", "topic-bare-forum", "post.board.uri: required field is missing"),
    ("space.atbb.forum.board", "board", "board.category.uri: required field is missing"),
    ("space.atbb.membership", "membership", "membership.forum.uri: required field is missing"),
    ("space.atbb.forum.theme", "theme",
     "theme.tokens: 'color-bg' is not a CSS custom property (--[a-z0-9-]+)"),
]


def _earlier_record(name: str) -> dict[str, Any]:
    if name == "topic-bare-forum":
        return {**original_atbb.topic("T", "x", FORUM_REF, BOARD_REF, NOW, typed=False),
                "forum": FORUM_REF}
    if name.startswith("topic"):
        return original_atbb.topic("T", "x", FORUM_REF, BOARD_REF, NOW, typed="typed" in name)
    if name == "board":
        return original_atbb.board("B", "", 0, CATEGORY_REF, NOW, typed=True)
    if name == "membership":
        return original_atbb.membership(FORUM_REF, NOW, typed=False)
    return original_atbb.theme("Neobrutal", "dark", NOW)


@pytest.mark.parametrize(("collection", "name", "reason"), EARLIER_VERDICTS)
def test_a_superseded_verdict_is_taken_again(
    validator: LexiconValidator, collection: str, name: str, reason: str
) -> None:
    assert is_superseded(reason)
    did = FORUM if collection.startswith("space.atbb.forum.") else ALICE
    event = _event(collection, _earlier_record(name), reason, did=did)
    assert validator.reconsider(event, forum_did=FORUM) == Verdict.ok()


def test_a_superseded_verdict_taken_again_may_stay_invalid(validator: LexiconValidator) -> None:
    record = {**original_atbb.topic("T", "x", FORUM_REF, BOARD_REF, NOW, typed=True),
              "title": "x" * 121}
    event = _event("space.atbb.post", record, "post.forum.uri: required field is missing")
    assert validator.reconsider(event, forum_did=FORUM) == Verdict.invalid(
        "post.title: 121 graphemes, more than 120"
    )
    forged = _event("space.atbb.forum.board", _earlier_record("board"),
                    "board.category.uri: required field is missing", did=MALLORY)
    assert reason_of(validator.reconsider(forged, forum_did=FORUM)).startswith(
        "forum-owned collection space.atbb.forum.board from did:plc:mallory"
    )


@pytest.mark.parametrize(
    "reason",
    [
        "commit signature does not verify against did:plc:alice's signing key",
        "post.text: 10001 graphemes, more than 10000",
        "post.forum.uri: required field is missing (and more)",
        "forum-owned collection space.atbb.forum.board from did:plc:x, not the Forum account",
    ],
)
def test_any_other_verdict_stands(validator: LexiconValidator, reason: str) -> None:
    # the record reads as valid today, but it was refused for another reason: it stays so
    event = _event("space.atbb.post", record_of("space.atbb.post"), reason)
    assert validator.reconsider(event, forum_did=FORUM) == Verdict.invalid(reason)
    assert not is_superseded(reason)


def test_valid_verdicts_and_deletions_are_never_taken_again(
    validator: LexiconValidator,
) -> None:
    # a record valid when stored stays valid (the reader is never stricter after the fact)
    long_title = {**record_of("space.atbb.post"), "title": "x" * 500}
    assert validator.reconsider(_event("space.atbb.post", long_title, None),
                                forum_did=FORUM) == Verdict.ok()
    deletion = _event("space.atbb.post", None, "post.forum.uri: required field is missing")
    assert not validator.reconsider(deletion, forum_did=FORUM).valid


def test_the_current_validator_gives_no_superseded_theme_reason(
    validator: LexiconValidator,
) -> None:
    # its reasons for token names differ, so a verdict it gives is never taken again
    record = record_of("space.atbb.forum.theme", tokens={"-bg": "#fff"})
    assert not is_superseded(reason_of(check(validator, "space.atbb.forum.theme", record)))


# --- integers, booleans, enums -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "category.sortOrder: -1 is less than the minimum 0"),
        ("1", "category.sortOrder: expected an integer, got string"),
        (True, "category.sortOrder: expected an integer, got boolean"),
        (1.5, "category.sortOrder: expected an integer, got number"),
        (1.0, "category.sortOrder: expected an integer, got number"),
        (2**53, f"category.sortOrder: {2**53} is more than the maximum {2**53 - 1}"),
    ],
)
def test_sort_order(validator: LexiconValidator, value: object, reason: str) -> None:
    record = record_of("space.atbb.forum.category", sortOrder=value)
    assert reason_of(check(validator, "space.atbb.forum.category", record)) == reason


def test_booleans(validator: LexiconValidator) -> None:
    policy = record_of("space.atbb.forum.themePolicy", allowUserChoice="yes")
    assert reason_of(check(validator, "space.atbb.forum.themePolicy", policy)) == (
        "themePolicy.allowUserChoice: expected a boolean, got string"
    )
    policy = record_of("space.atbb.forum.themePolicy", allowUserChoice=1)
    assert "expected a boolean, got integer" in reason_of(
        check(validator, "space.atbb.forum.themePolicy", policy)
    )


def test_role_permissions_are_closed(validator: LexiconValidator) -> None:
    record = record_of(
        "space.atbb.forum.role",
        permissions=["space.atbb.permission.react", "space.atbb.permission.godMode"],
    )
    reason = reason_of(check(validator, "space.atbb.forum.role", record))
    assert reason.startswith(
        "role.permissions[1]: 'space.atbb.permission.godMode' is not one of "
        "space.atbb.permission.manageForum, "
    )
    not_a_list = record_of("space.atbb.forum.role", permissions="*")
    assert reason_of(check(validator, "space.atbb.forum.role", not_a_list)) == (
        "role.permissions: expected an array, got string"
    )
    too_many = record_of("space.atbb.forum.role", permissions=["*"] * 65)
    assert reason_of(check(validator, "space.atbb.forum.role", too_many)) == (
        "role.permissions: 65 items, more than 64"
    )
    negative = record_of("space.atbb.forum.role", priority=-1)
    assert reason_of(check(validator, "space.atbb.forum.role", negative)) == (
        "role.priority: -1 is less than the minimum 0"
    )


@pytest.mark.parametrize(
    "action", ["ban", "unban", "lock", "unlock", "delete", "undelete", "pin", "unpin"]
)
def test_every_mod_action_with_its_subject_kind(validator: LexiconValidator, action: str) -> None:
    user = action in ("ban", "unban")
    subject = {"did": ALICE} if user else {"post": ref("space.atbb.post", did=ALICE)}
    record = record_of("space.atbb.modAction", action=f"space.atbb.modAction.{action}",
                       subject=subject)
    assert check(validator, "space.atbb.modAction", record).valid
    wrong = {"post": ref("space.atbb.post", did=ALICE)} if user else {"did": ALICE}
    record["subject"] = wrong
    expected = (
        f"modAction.subject: a {action} needs a user subject {{did}}, got a post subject"
        if user
        else f"modAction.subject: a {action} needs a post subject {{post: strongRef}}, "
        "got a user subject"
    )
    assert reason_of(check(validator, "space.atbb.modAction", record)) == expected


def test_mod_action_is_closed(validator: LexiconValidator) -> None:
    record = record_of("space.atbb.modAction", action="space.atbb.modAction.mute")
    assert reason_of(check(validator, "space.atbb.modAction", record)).startswith(
        "modAction.action: 'space.atbb.modAction.mute' is not one of space.atbb.modAction.ban,"
    )


# --- the subject union -------------------------------------------------------------------

USER = "space.atbb.modAction#subjectUser"
POST = "space.atbb.modAction#subjectPost"
A_POST = ref("space.atbb.post", did=ALICE)


@pytest.mark.parametrize(
    ("action", "subject"),
    [
        ("ban", {"$type": USER, "did": ALICE}),
        ("ban", {"did": ALICE}),
        ("ban", {"did": ALICE, "note": "extra fields are fine"}),
        ("lock", {"$type": POST, "post": A_POST}),
        ("lock", {"post": A_POST}),
    ],
)
def test_union_members_match_by_type_or_by_shape(
    validator: LexiconValidator, action: str, subject: dict[str, Any]
) -> None:
    record = record_of("space.atbb.modAction", action=f"space.atbb.modAction.{action}",
                       subject=subject)
    assert check(validator, "space.atbb.modAction", record).valid


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        (
            {"did": ALICE, "post": A_POST},
            f"modAction.subject: no $type, and it fits more than one of {USER}, {POST}",
        ),
        (
            {"user": ALICE},
            f"modAction.subject: no $type, and it has the required fields of none of "
            f"{USER}, {POST}",
        ),
        (
            {"$type": "space.atbb.modAction#subjectBoard", "did": ALICE},
            f"modAction.subject: $type 'space.atbb.modAction#subjectBoard' is not one of "
            f"{USER}, {POST}",
        ),
        ({"$type": 7, "did": ALICE}, "modAction.subject.$type: expected a string, got integer"),
        (
            {"$type": USER, "post": A_POST},
            "modAction.subject.did: required field is missing",
        ),
        ({"did": "alice.test"}, "modAction.subject.did: not a did:plc or did:web DID"),
        (ALICE, "modAction.subject: expected an object (one of"),
        (
            {"post": {"uri": A_POST["uri"], "cid": "bafy"}},
            "modAction.subject.post.cid: not a CIDv1 in base32: 'bafy'",
        ),
    ],
)
def test_union_mismatches(
    validator: LexiconValidator, subject: object, reason: str
) -> None:
    record = record_of("space.atbb.modAction", subject=subject)
    assert reason_of(check(validator, "space.atbb.modAction", record)).startswith(reason)


# --- the rules beyond the lexicons -------------------------------------------------------


def test_role_assignment_subject_must_be_the_record_key(validator: LexiconValidator) -> None:
    record = record_of("space.atbb.forum.roleAssignment", subject=MALLORY)
    verdict = check(validator, "space.atbb.forum.roleAssignment", record)
    assert reason_of(verdict) == (
        f"roleAssignment.subject: '{MALLORY}' is not the record key '{ALICE}' "
        "(an assignment is keyed by the member's DID)"
    )
    not_a_did = record_of("space.atbb.forum.roleAssignment", subject="alice")
    assert reason_of(
        check(validator, "space.atbb.forum.roleAssignment", not_a_did, rkey="alice")
    ).startswith("roleAssignment.subject: not a did:plc or did:web DID")


@pytest.mark.parametrize("slug", ["General", "off topic", "", "a" * 65, "naïve", "a_b"])
def test_bad_slugs(validator: LexiconValidator, slug: str) -> None:
    for collection in ("space.atbb.forum.category", "space.atbb.forum.board"):
        reason = reason_of(check(validator, collection, record_of(collection, slug=slug)))
        assert reason.startswith(f"{collection.rsplit('.', 1)[1]}.slug: ")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tokens": {"-bg": "#fff"}}, "theme.tokens: '-bg' is not a CSS custom property name"),
        ({"tokens": {"b g": "#fff"}}, "theme.tokens: 'b g' is not a CSS custom property name"),
        ({"tokens": {"Bg": "#fff"}}, "theme.tokens: 'Bg' is not a CSS custom property name"),
        ({"tokens": {"--Bg": "#fff"}}, "theme.tokens: '--Bg' is not a CSS custom property"),
        ({"tokens": {"--bg": 5}}, "theme.tokens.--bg: expected a string, got integer"),
        ({"tokens": {"--bg": "red; } body { x"}}, "theme.tokens.--bg: 'red; } body { x' holds"),
        ({"tokens": {"--bg": "</style>"}}, "theme.tokens.--bg: '</style>' holds"),
        ({"tokens": {"--bg": "a\nb"}}, "theme.tokens.--bg: 'a\\nb' holds"),
        ({"tokens": {"--bg": "x" * 1001}}, "theme.tokens.--bg: 1001 bytes, more than 1000"),
        ({"tokens": {f"--t{i}": "1" for i in range(501)}}, "theme.tokens: 501 entries"),
        ({"tokens": ["--bg"]}, "theme.tokens: expected an object, got array"),
        ({"fontUrls": ["http://fonts.example/a.css"]}, "theme.fontUrls[0]: only https URLs"),
        (
            {"fontUrls": ["https://ok.example/a.css", "javascript:alert(1)"]},
            "theme.fontUrls[1]: only https URLs",
        ),
        ({"fontUrls": ["https://"]}, "theme.fontUrls[0]: only https URLs"),
        ({"fontUrls": ["not a url"]}, "theme.fontUrls[0]: not a URI"),
        ({"colorScheme": "blue"}, "theme.colorScheme: 'blue' is not one of light, dark"),
        ({"cssOverrides": "x" * 100_001}, "theme.cssOverrides: 100001 bytes, more than 100000"),
    ],
)
def test_theme_rules(validator: LexiconValidator, changes: dict[str, Any], reason: str) -> None:
    record = record_of("space.atbb.forum.theme", **changes)
    assert reason_of(check(validator, "space.atbb.forum.theme", record)).startswith(reason)


def test_theme_policy_defaults_must_be_offered(validator: LexiconValidator) -> None:
    other = f"at://{FORUM}/space.atbb.forum.theme/3mptbypluud2b"
    record = record_of("space.atbb.forum.themePolicy", defaultDarkTheme=other)
    assert reason_of(check(validator, "space.atbb.forum.themePolicy", record)) == (
        f"themePolicy.defaultDarkTheme: '{other}' is not in availableThemes"
    )
    empty = record_of(
        "space.atbb.forum.themePolicy", availableThemes=[], defaultLightTheme=DROP,
        defaultDarkTheme=DROP,
    )
    assert check(validator, "space.atbb.forum.themePolicy", empty).valid
    no_uri = record_of("space.atbb.forum.themePolicy", availableThemes=[{"cid": CID}])
    assert reason_of(check(validator, "space.atbb.forum.themePolicy", no_uri)) == (
        "themePolicy.availableThemes[0].uri: required field is missing"
    )


# --- deletions ---------------------------------------------------------------------------


def test_deletions(validator: LexiconValidator) -> None:
    assert validator.validate_delete("space.atbb.post", TID, did=ALICE, forum_did=FORUM).valid
    forged = validator.validate_delete(
        "space.atbb.forum.board", TID, did=MALLORY, forum_did=FORUM
    )
    assert reason_of(forged).startswith("forum-owned collection space.atbb.forum.board from")
    bad_key = validator.validate_delete("space.atbb.post", "self", did=ALICE, forum_did=FORUM)
    assert reason_of(bad_key).startswith("record key 'self' is not a TID")
    unknown = validator.validate_delete("space.atbb.x", TID, did=ALICE, forum_did=FORUM)
    assert reason_of(unknown).startswith("unknown collection")


# --- the lexicon machinery on documents of our own ---------------------------------------


def lexicon(defs: dict[str, Any], doc_id: str = "com.example.thing") -> dict[str, Any]:
    return {"lexicon": 1, "id": doc_id, "defs": defs}


def test_other_field_types_of_lexicon_v1() -> None:
    body = {
        "type": "object",
        "required": ["link", "blob"],
        "nullable": ["maybe"],
        "properties": {
            "link": {"type": "cid-link"},
            "data": {"type": "bytes", "maxLength": 4},
            "blob": {"type": "blob"},
            "maybe": {"type": "string"},
            "fixed": {"type": "string", "const": "v1"},
            "level": {"type": "integer", "minimum": 1, "maximum": 3, "enum": [1, 3]},
            "flag": {"type": "boolean", "const": True},
            "open": {"type": "union", "refs": ["#a"]},
            "nothing": {"type": "null"},
            "handle": {"type": "string", "format": "handle"},
            "nsid": {"type": "string", "format": "nsid"},
            "who": {"type": "string", "format": "at-identifier"},
        },
    }
    validator = LexiconValidator(
        [lexicon({"main": {"type": "record", "key": "nsid", "record": body},
                  "a": {"type": "object", "properties": {}}})]
    )
    link = {"$link": CID}
    blob = {"$type": "blob", "ref": link, "mimeType": "image/png", "size": 10}
    base = {"$type": "com.example.thing", "link": link, "blob": blob}

    def verdict(**changes: Any) -> Verdict:
        return validator.validate(
            "com.example.thing", "com.example.key", {**base, **changes}, did=ALICE,
            forum_did=FORUM,
        )

    assert verdict(maybe=None, data={"$bytes": "AAEC"}, fixed="v1", level=3, flag=True,
                   open={"$type": "com.example.other#x"}, nothing=None, handle="a.test",
                   nsid="a.b.c", who=ALICE).valid
    assert reason_of(verdict(link={"$link": "x"})) == "thing.link.$link: not a CIDv1 in base32: 'x'"
    assert reason_of(verdict(link=CID)).startswith("thing.link: expected a CID link")
    assert reason_of(verdict(data={"$bytes": "AAECAwQ"})) == "thing.data: 5 bytes, more than 4"
    assert reason_of(verdict(data={"$bytes": "!!"})) == "thing.data.$bytes: not base64"
    assert reason_of(verdict(blob={**blob, "size": -1})) == (
        "thing.blob.size: expected a non-negative integer"
    )
    assert reason_of(verdict(blob={**blob, "ref": CID})).startswith("thing.blob.ref: expected")
    assert reason_of(verdict(fixed="v2")) == "thing.fixed: must be 'v1', got 'v2'"
    assert reason_of(verdict(level=2)) == "thing.level: 2 is not one of [1, 3]"
    assert reason_of(verdict(level=4)) == "thing.level: 4 is more than the maximum 3"
    assert reason_of(verdict(flag=False)) == "thing.flag: must be true"
    assert reason_of(verdict(nothing=0)) == "thing.nothing: expected null, got integer"
    assert reason_of(verdict(handle="nope")) == "thing.handle: not a handle: 'nope'"
    assert reason_of(verdict(who="x")) == "thing.who: not a DID or a handle: 'x'"
    wrong_key = validator.validate(
        "com.example.thing", "self", base, did=ALICE, forum_did=FORUM
    )
    assert reason_of(wrong_key).startswith("record key 'self' is not an NSID")


def record_lexicon(
    properties: dict[str, Any], key: str = "tid", **extra_defs: Any
) -> list[dict[str, Any]]:
    body = {"type": "object", "properties": properties}
    return [lexicon({"main": {"type": "record", "key": key, "record": body}, **extra_defs})]


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([{"lexicon": 2, "id": "com.example.thing", "defs": {}}], "not a Lexicon v1"),
        ([{"lexicon": 1, "id": "not an nsid", "defs": {}}], "not a Lexicon v1"),
        ([{"lexicon": 1, "id": "com.example.thing"}], "no defs"),
        (record_lexicon({"x": {"type": "float"}}), "unsupported type 'float'"),
        (
            record_lexicon({"x": {"type": "ref", "ref": "com.example.missing"}}),
            "unknown lexicon",
        ),
        (
            record_lexicon(
                {"x": {"type": "ref", "ref": "#loop"}},
                loop={"type": "object", "properties": {"again": {"type": "ref", "ref": "#loop"}}},
            ),
            "recursively",
        ),
        (
            record_lexicon(
                {"x": {"type": "union", "refs": ["#member"]}}, member={"type": "string"}
            ),
            "is not an object",
        ),
        (record_lexicon({"x": {"type": "union", "refs": []}}), "union without refs"),
        (record_lexicon({"x": {"type": "string", "format": "colour"}}), "unknown string format"),
        (record_lexicon({}, key="uuid"), "unsupported record key type"),
        (
            [lexicon({"main": {"type": "record", "key": "tid", "record": {
                "type": "object", "required": ["x"], "properties": {}}}})],
            "requires undeclared",
        ),
        (
            record_lexicon({"x": {"type": "string", "maxLength": "10"}}),
            "maxLength must be an integer",
        ),
    ],
)
def test_unusable_lexicons_are_refused_at_load(
    documents: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(LexiconError, match=message):
        LexiconValidator(documents)


# --- nothing raises ----------------------------------------------------------------------

# Lone surrogates included: a str from elsewhere than a strict UTF-8 decoder may hold them.
TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=20)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = sorted({name for _, _, record in VALID.values() for name in record} | {"$type"})


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([*sorted(VALID), "space.atbb.other", "x"]),
    st.one_of(st.sampled_from([TID, "self", ALICE, "..", ""]), st.text(max_size=15)),
    JSONISH,
    st.sampled_from([FORUM, ALICE, ""]),
)
def test_validate_never_raises_on_anything(
    validator: LexiconValidator, collection: str, rkey: str, record: object, did: str
) -> None:
    verdict = validator.validate(collection, rkey, record, did=did, forum_did=FORUM)
    assert isinstance(verdict, Verdict)
    assert verdict.valid == (verdict.reason is None)
    assert not verdict.valid  # a random value is never a whole valid record


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(VALID)), st.sampled_from(FIELD_NAMES), JSONISH, st.data())
def test_validate_never_raises_on_a_mutated_valid_record(
    validator: LexiconValidator, collection: str, field: str, value: object, data: st.DataObject
) -> None:
    record = record_of(collection)
    if data.draw(st.booleans()) and isinstance(record.get(field), dict):
        record[field][data.draw(st.sampled_from(sorted(record[field]) or ["x"]))] = value
    else:
        record[field] = value
    verdict = check(validator, collection, record)
    assert verdict.valid == (verdict.reason is None)
    if not verdict.valid:
        assert verdict.reason and verdict.reason.isprintable()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=5), max_size=3))
def test_validate_survives_unhashable_and_odd_arguments(
    validator: LexiconValidator, junk: list[str]
) -> None:
    odd: Any = junk
    verdict = validator.validate(odd, odd, {"$type": odd}, did=odd, forum_did=FORUM)
    assert not verdict.valid
    assert not validator.validate_delete(odd, odd, did=odd, forum_did=FORUM).valid
