"""Jetstream v1 lines: the real capture, atBB records, every kind of bad line, and the
way back from an event to its line."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.jetstream import ParsedLine, parse_line, to_line
from events.lexicon import LexiconValidator
from events.model import AccountStatusChanged, IdentityChanged, LogEvent, RecordEvent
from tests.conftest import CAPTURE

FORUM = "did:plc:forumforumforumforum2345"
ALICE = "did:plc:alicealicealicealice2345"
MALLORY = "did:plc:mallorymallorymallory234"
CID = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i"
REV = "3mptbypluud2b"
RKEY = "3mptbypluud2a"
TIME_US = 1_783_175_888_085_434
OBSERVED = 1_783_175_889_000_000
FORUM_REF = {"uri": f"at://{FORUM}/space.atbb.forum.forum/self", "cid": CID}
BOARD_REF = {"uri": f"at://{FORUM}/space.atbb.forum.board/{RKEY}", "cid": CID}
TOPIC = {
    "$type": "space.atbb.post",
    "title": "Hello <everyone> & welcome",
    "text": "Ünïcode **text** 👨‍👩‍👧‍👦\u2028next",
    "forum": FORUM_REF,
    "board": BOARD_REF,
    "createdAt": "2026-07-04T14:38:08.999Z",
}


@pytest.fixture(scope="module")
def validator() -> LexiconValidator:
    return LexiconValidator.load()


def parse(validator: LexiconValidator, line: str | bytes, **options: Any) -> ParsedLine:
    parsed = parse_line(
        line, forum_did=FORUM, validator=validator, observed_at=OBSERVED, **options
    )
    outcomes = [parsed.event is not None, parsed.ignored is not None, parsed.error is not None]
    assert outcomes.count(True) == 1, parsed
    return parsed


def commit_line(
    record: object = TOPIC,
    *,
    did: str = ALICE,
    collection: str = "space.atbb.post",
    operation: str = "create",
    rkey: object = RKEY,
    rev: object = REV,
    cid: object = CID,
) -> str:
    commit: dict[str, Any] = {
        "rev": rev, "operation": operation, "collection": collection, "rkey": rkey
    }
    if operation != "delete":
        commit["record"] = record
        commit["cid"] = cid
    return json.dumps({"did": did, "time_us": TIME_US, "kind": "commit", "commit": commit})


def error_of(parsed: ParsedLine) -> str:
    assert parsed.error is not None, parsed
    return parsed.error


# --- the real capture --------------------------------------------------------------------


def capture_lines() -> list[bytes]:
    return (CAPTURE / "expected_v1.jsonl").read_bytes().splitlines()


def test_the_capture_yields_no_event_for_a_forum_that_knows_none_of_its_dids(
    validator: LexiconValidator,
) -> None:
    kinds: Counter[str] = Counter()
    for line in capture_lines():
        parsed = parse(validator, line, wanted_dids={FORUM})
        assert parsed.error is None and parsed.event is None
        assert parsed.ignored is not None
        kinds[str(parsed.kind)] += 1
    assert kinds == {"commit": 150, "identity": 1, "account": 1}


def test_wanted_dids_keep_identity_and_account_events_of_those_dids(
    validator: LexiconValidator,
) -> None:
    identity = json.dumps({"did": ALICE, "time_us": 1, "kind": "identity",
                           "identity": {"did": ALICE, "seq": 1}})
    assert parse(validator, identity, wanted_dids={ALICE}).event is not None
    ignored = parse(validator, identity, wanted_dids={FORUM})
    assert ignored.ignored == f"identity event of {ALICE}, a DID not wanted"
    assert (ignored.kind, ignored.time_us) == ("identity", 1)
    # Unwanted or not, a malformed one is still an error.
    broken = identity.replace('"seq": 1', '"seq": "1"')
    assert parse(validator, broken, wanted_dids={FORUM}).error is not None


def test_the_capture_parses_without_error_and_keeps_only_identity_and_account(
    validator: LexiconValidator,
) -> None:
    manifest = json.loads((CAPTURE / "manifest.json").read_text(encoding="utf-8"))
    lines = capture_lines()
    assert len(lines) == manifest["v1_events"] == 152
    counts: Counter[str] = Counter()
    kept: list[LogEvent] = []
    for line in lines:
        parsed = parse(validator, line)
        assert parsed.error is None, parsed.error
        assert parsed.time_us == json.loads(line)["time_us"]
        counts[parsed.operation or str(parsed.kind)] += 1
        if parsed.kind == "commit":
            assert parsed.event is None
            assert parsed.ignored is not None and "is not space.atbb.*" in parsed.ignored
        elif parsed.event is not None:
            kept.append(parsed.event)
    assert dict(counts) == {
        "create": manifest["creates"],
        "update": manifest["updates"],
        "delete": manifest["deletes"],
        "identity": manifest["identity"],
        "account": manifest["account"],
    }
    did = "did:plc:hqvhxrowqbemo5e4wjnj6zao"
    assert kept == [
        IdentityChanged(did, None, 31527015470, "2026-07-04T14:38:07.877Z", "jetstream",
                        1783175888384849, OBSERVED),
        AccountStatusChanged(did, True, None, 31527015471, "2026-07-04T14:38:07.877Z",
                             "jetstream", 1783175888390226, OBSERVED),
    ]


def test_to_line_reproduces_every_line_of_the_capture(validator: LexiconValidator) -> None:
    for line in capture_lines():
        text = line.decode("utf-8")
        message = json.loads(text)
        parsed = parse(validator, text)
        if message["kind"] == "commit":
            commit = message["commit"]
            event: LogEvent = RecordEvent(
                commit["operation"], message["did"], commit["collection"], commit["rkey"],
                commit["rev"], commit.get("cid"), commit.get("record"), True, None,
                "jetstream", None, 0,
            )
        else:
            assert parsed.event is not None
            event = parsed.event
        assert to_line(event, message["time_us"]) == text


# --- atBB records ------------------------------------------------------------------------


def test_a_valid_topic_becomes_a_record_event(validator: LexiconValidator) -> None:
    parsed = parse(validator, commit_line(), source="backfill")
    assert (parsed.kind, parsed.operation, parsed.time_us) == ("commit", "create", TIME_US)
    assert parsed.event == RecordEvent(
        operation="create", did=ALICE, collection="space.atbb.post", rkey=RKEY, rev=REV,
        cid=CID, record=TOPIC, valid=True, reason=None, source="backfill",
        source_cursor=TIME_US, observed_at=OBSERVED,
    )


def test_an_invalid_record_is_kept_with_its_reason(validator: LexiconValidator) -> None:
    parsed = parse(validator, commit_line({**TOPIC, "text": ""}, operation="update"))
    assert isinstance(parsed.event, RecordEvent)
    assert (parsed.event.valid, parsed.event.reason) == (
        False, "post.text: 0 graphemes, fewer than 1"
    )
    assert parsed.event.operation == "update"


def test_a_forged_forum_record_is_kept_invalid(validator: LexiconValidator) -> None:
    board = {
        "$type": "space.atbb.forum.board", "name": "Forged", "category": BOARD_REF,
        "createdAt": "2026-07-04T14:38:08Z",
    }
    line = commit_line(board, did=MALLORY, collection="space.atbb.forum.board")
    parsed = parse(validator, line)
    assert isinstance(parsed.event, RecordEvent) and not parsed.event.valid
    assert parsed.event.reason == (
        f"forum-owned collection space.atbb.forum.board from {MALLORY}, "
        f"not the Forum account {FORUM}"
    )
    assert parse(validator, commit_line(board, did=FORUM, collection="space.atbb.forum.board")
                 ).event.valid  # type: ignore[union-attr]


def test_an_unknown_atbb_collection_is_kept_invalid(validator: LexiconValidator) -> None:
    line = commit_line({"$type": "space.atbb.poll"}, collection="space.atbb.poll")
    parsed = parse(validator, line)
    assert isinstance(parsed.event, RecordEvent) and not parsed.event.valid
    assert parsed.event.reason is not None and "unknown collection" in parsed.event.reason


def test_deletes(validator: LexiconValidator) -> None:
    parsed = parse(validator, commit_line(operation="delete"))
    assert isinstance(parsed.event, RecordEvent)
    assert (parsed.event.record, parsed.event.cid, parsed.event.valid) == (None, None, True)
    forged = parse(
        validator,
        commit_line(operation="delete", did=MALLORY, collection="space.atbb.modAction"),
    )
    assert isinstance(forged.event, RecordEvent) and not forged.event.valid


def test_identity_with_a_handle_and_account_with_a_status(validator: LexiconValidator) -> None:
    body = {"did": ALICE, "handle": "alice.test", "seq": 7, "time": "2026-07-04T14:38:07Z"}
    identity = parse(validator, json.dumps(
        {"did": ALICE, "time_us": TIME_US, "kind": "identity", "identity": body}
    ))
    assert identity.event == IdentityChanged(
        ALICE, "alice.test", 7, "2026-07-04T14:38:07Z", "jetstream", TIME_US, OBSERVED
    )
    account = parse(validator, json.dumps({
        "did": ALICE, "time_us": TIME_US, "kind": "account",
        "account": {"active": False, "did": ALICE, "seq": 8, "status": "takendown"},
    }))
    assert account.event == AccountStatusChanged(
        ALICE, False, "takendown", 8, None, "jetstream", TIME_US, OBSERVED
    )


# --- bad lines ---------------------------------------------------------------------------

GOOD = json.loads(commit_line())


def with_changes(path: str, value: object) -> str:
    message = json.loads(json.dumps(GOOD))
    target = message
    *parents, last = path.split(".")
    for name in parents:
        target = target[name]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return json.dumps(message)


DROP = object()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("", "empty line"),
        ("   \n", "empty line"),
        ("{", "truncated line"),
        (commit_line()[:120], "truncated line"),
        ('{"did": }', "malformed JSON at character 8: Expecting value"),
        ('{"did": "x"} trailing', "malformed JSON at character 13: Extra data"),
        ("[1, 2]", "line is a JSON array, not an object"),
        ('"text"', "line is a JSON string, not an object"),
        ("42", "line is a JSON number, not an object"),
        ("null", "line is a JSON null, not an object"),
        ('{"did": NaN}', "malformed JSON: NaN is not a JSON value"),
        ("[" * 100_000 + "]" * 100_000, "malformed JSON"),
        (with_changes("did", DROP), "did: missing"),
        (with_changes("did", "alice.test"), "did: not a did:plc or did:web DID: 'alice.test'"),
        (with_changes("did", 5), "did: not a did:plc or did:web DID: 5"),
        (with_changes("time_us", DROP), "time_us: missing"),
        (with_changes("time_us", "1783175888085434"), "time_us: expected an integer, got string"),
        (with_changes("time_us", True), "time_us: expected an integer, got boolean"),
        (with_changes("time_us", 1.5), "time_us: expected an integer, got number"),
        (with_changes("time_us", -1), "time_us: negative (-1)"),
        (with_changes("kind", DROP), "kind: missing"),
        (with_changes("kind", "sync"), "kind: unknown kind 'sync'"),
        (with_changes("kind", ["commit"]), "kind: unknown kind a value of type list"),
        (with_changes("commit", DROP), "commit: expected an object, got null"),
        (with_changes("commit", "x"), "commit: expected an object, got string"),
        (with_changes("commit.operation", "upsert"), "commit.operation: not create, update or"),
        (with_changes("commit.operation", {"a": 1}), "commit.operation: not create, update or"),
        (with_changes("commit.collection", 5), "commit.collection: expected a string, got number"),
        (with_changes("commit.collection", "space.atbb.po st"), "commit.collection: not an NSID"),
        (with_changes("commit.rkey", ".."), "commit.rkey: not a record key: '..'"),
        (with_changes("commit.rkey", DROP), "commit.rkey: not a record key: a value of type"),
        (with_changes("commit.rev", "not-a-tid"), "commit.rev: not a TID: 'not-a-tid'"),
        (with_changes("commit.rev", 12), "commit.rev: not a TID: 12"),
        (with_changes("commit.record", DROP), "commit.record: a create needs the record object"),
        (with_changes("commit.record", [1]), "commit.record: a create needs the record object"),
        (with_changes("commit.cid", "bafy"), "commit.cid: not a CIDv1 in base32: 'bafy'"),
        (with_changes("commit.cid", DROP), "commit.cid: not a CIDv1 in base32"),
        (with_changes("commit.record.text", "a\ud800"), "line holds a lone UTF-16 surrogate"),
    ],
)
def test_bad_lines_are_errors(validator: LexiconValidator, line: str, error: str) -> None:
    assert error_of(parse(validator, line)).startswith(error)


def test_a_lone_surrogate_escape_is_an_error(validator: LexiconValidator) -> None:
    line = commit_line({**TOPIC, "text": "x\udc00"})  # json.dumps writes it as an escape
    assert "\\udc00" in line
    assert "lone UTF-16 surrogate" in error_of(parse(validator, line))
    paired = commit_line({**TOPIC, "text": "x😀"})
    assert "\\ud83d\\ude00" in paired
    assert parse(validator, paired).event is not None


def test_a_raw_lone_surrogate_in_text_is_an_error(validator: LexiconValidator) -> None:
    line = json.dumps({**GOOD, "extra": "x\udc80"}, ensure_ascii=False)
    assert error_of(parse(validator, line)).startswith("line holds a lone surrogate at character")


def test_errors_keep_what_was_read(validator: LexiconValidator) -> None:
    parsed = parse(validator, with_changes("commit.rev", "bad"))
    assert (parsed.kind, parsed.operation, parsed.time_us) == ("commit", "create", TIME_US)
    parsed = parse(validator, with_changes("did", "bad"))
    assert (parsed.kind, parsed.operation, parsed.time_us) == ("commit", None, TIME_US)
    assert parse(validator, "{").time_us is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"did": ALICE, "handle": "not a handle", "seq": 1}, "identity.handle: not a handle"),
        ({"did": MALLORY, "seq": 1}, f"identity.did: '{MALLORY}' is not the event's did"),
        ({"did": ALICE}, "identity.seq: missing"),
        ({"did": ALICE, "seq": "1"}, "identity.seq: expected an integer, got string"),
        ({"did": ALICE, "seq": 1, "time": 5}, "identity.time: expected a string, got number"),
        ("x", "identity: expected an object, got string"),
    ],
)
def test_bad_identity_events(validator: LexiconValidator, body: object, error: str) -> None:
    line = json.dumps({"did": ALICE, "time_us": TIME_US, "kind": "identity", "identity": body})
    parsed = parse(validator, line)
    assert parsed.kind == "identity"
    assert error_of(parsed).startswith(error)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"did": ALICE, "seq": 1}, "account.active: expected a boolean, got null"),
        ({"did": ALICE, "active": "false", "seq": 1}, "account.active: expected a boolean"),
        ({"did": ALICE, "active": False, "status": "gone", "seq": 1}, "account.status: unknown"),
        ({"did": ALICE, "active": False, "status": ["x"], "seq": 1}, "account.status: unknown"),
        ({"did": ALICE, "active": True}, "account.seq: missing"),
        ({"did": MALLORY, "active": True, "seq": 1}, "account.did:"),
        (None, "account: expected an object, got null"),
    ],
)
def test_bad_account_events(validator: LexiconValidator, body: object, error: str) -> None:
    line = json.dumps({"did": ALICE, "time_us": TIME_US, "kind": "account", "account": body})
    assert error_of(parse(validator, line)).startswith(error)


def test_line_size_limit(validator: LexiconValidator) -> None:
    line = commit_line()
    size = len(line.encode("utf-8"))
    assert parse(validator, line, max_bytes=size).event is not None
    assert parse(validator, line.encode("utf-8"), max_bytes=size).event is not None
    assert error_of(parse(validator, line, max_bytes=size - 1)) == (
        f"line of {size} bytes is over the limit of {size - 1}"
    )
    assert error_of(parse(validator, line.encode("utf-8"), max_bytes=size - 1)) == (
        f"line of {size} bytes is over the limit of {size - 1}"
    )


def test_bytes_must_be_utf8(validator: LexiconValidator) -> None:
    assert error_of(parse(validator, b'{"did": "\xff"}')) == "line is not UTF-8 (byte 9)"


def test_a_non_atbb_commit_is_ignored_without_a_closer_look(validator: LexiconValidator) -> None:
    line = commit_line({"anything": 1}, collection="app.bsky.feed.post", rev="bad", cid=None)
    parsed = parse(validator, line)
    assert parsed.ignored == "collection app.bsky.feed.post is not space.atbb.*"


# --- the way back ------------------------------------------------------------------------


def record_event(operation: str, record: dict[str, Any] | None) -> RecordEvent:
    return RecordEvent(
        operation, ALICE, "space.atbb.post", RKEY, REV,  # type: ignore[arg-type]
        None if record is None else CID, record, True, None, "jetstream", TIME_US, OBSERVED,
    )


@pytest.mark.parametrize(
    "event",
    [
        record_event("create", TOPIC),
        record_event("update", {**TOPIC, "text": "edited"}),
        record_event("delete", None),
        IdentityChanged(ALICE, "alice.test", 3, "2026-07-04T14:38:07Z", "jetstream", TIME_US,
                        OBSERVED),
        IdentityChanged(ALICE, None, 3, None, "jetstream", TIME_US, OBSERVED),
        AccountStatusChanged(ALICE, False, "deactivated", 4, "2026-07-04T14:38:07Z",
                             "jetstream", TIME_US, OBSERVED),
    ],
)
def test_round_trip(validator: LexiconValidator, event: LogEvent) -> None:
    line = to_line(event, TIME_US)
    assert line.startswith(f'{{"did":"{ALICE}","time_us":{TIME_US},"kind":')
    assert parse(validator, line).event == event
    assert parse(validator, line.encode("utf-8")).event == event


def test_to_line_escapes_like_go() -> None:
    line = to_line(record_event("create", TOPIC), TIME_US)
    assert "Hello \\u003ceveryone\\u003e \\u0026 welcome" in line
    assert "\\u2028next" in line
    assert "Ünïcode" in line and "👨‍👩‍👧‍👦" in line  # everything else stays UTF-8
    assert not any(c in line for c in "<>&\u2028")


def test_commit_keys_are_in_jetstream_order() -> None:
    message = json.loads(to_line(record_event("create", TOPIC), TIME_US))
    assert list(message) == ["did", "time_us", "kind", "commit"]
    assert list(message["commit"]) == ["rev", "operation", "collection", "rkey", "record", "cid"]
    deleted = json.loads(to_line(record_event("delete", None), TIME_US))
    assert list(deleted["commit"]) == ["rev", "operation", "collection", "rkey"]


POST_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=200)


@settings(max_examples=100, deadline=None)
@given(
    POST_TEXT,
    st.one_of(st.none(), POST_TEXT.filter(lambda t: len(t) <= 120)),
    st.integers(0, 2**40),
    st.sampled_from(["create", "update"]),
)
def test_round_trip_of_generated_posts(
    validator: LexiconValidator, text: str, title: str | None, time_us: int, operation: str
) -> None:
    record: dict[str, Any] = {"$type": "space.atbb.post", "text": text, "forum": FORUM_REF,
                              "createdAt": "2026-07-04T14:38:08Z"}
    if title is None:
        record["reply"] = {"root": BOARD_REF, "parent": BOARD_REF}
    else:
        record["title"] = title
    verdict = validator.validate("space.atbb.post", RKEY, record, did=ALICE, forum_did=FORUM)
    event = RecordEvent(
        operation, ALICE, "space.atbb.post", RKEY, REV, CID, record,  # type: ignore[arg-type]
        verdict.valid, verdict.reason, "jetstream", time_us, OBSERVED,
    )
    parsed = parse(validator, to_line(event, time_us))
    assert parsed.event == event
    assert parsed.time_us == time_us


# --- nothing raises ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_line_never_raises_on_bytes(validator: LexiconValidator, line: bytes) -> None:
    parse(validator, line, max_bytes=200)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters() | st.characters(categories=["Cs"]), max_size=300))
def test_parse_line_never_raises_on_text(validator: LexiconValidator, line: str) -> None:
    parse(validator, line, max_bytes=200)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["did", "time_us", "kind", "commit", "identity", "account"]),
    st.sampled_from(["", "rev", "operation", "collection", "rkey", "record", "cid", "did",
                     "handle", "active", "status", "seq", "time"]),
    JSONISH,
    st.sampled_from(["commit", "identity", "account"]),
)
def test_parse_line_never_raises_on_damaged_events(
    validator: LexiconValidator, field: str, inner: str, value: object, kind: str
) -> None:
    message = json.loads(commit_line())
    message["kind"] = kind
    message["identity"] = {"did": ALICE, "seq": 1}
    message["account"] = {"did": ALICE, "active": True, "seq": 1}
    if inner and isinstance(message.get(field), dict):
        message[field][inner] = value
    else:
        message[field] = value
    parse(validator, json.dumps(message))
