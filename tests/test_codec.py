"""events.codec: every domain event to a stored event and back, exactly."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import (
    TOPICS,
    CodecError,
    decode,
    decode_stored,
    encode,
)
from events.model import (
    AccountStatusChanged,
    CommitRejected,
    IdentityChanged,
    LogEvent,
    RecordEvent,
    int_to_tid,
    originator_of,
)

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
REV = int_to_tid(1_735_000_000_000_000 << 10)


def record_event(
    operation: str = "create", record: dict[str, Any] | None = None, **changes: Any
) -> RecordEvent:
    event = RecordEvent(
        operation="create",
        did=DID,
        collection="space.atbb.post",
        rkey="3lbq2dfxyz22a",
        rev=REV,
        cid="bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5rmnwqpxkfsxqmu",
        record={"$type": "space.atbb.post", "text": "hello"} if record is None else record,
        valid=True,
        reason=None,
        source="jetstream",
        source_cursor=1_735_000_000_000_123,
        observed_at=1_735_000_000_000_456,
    )
    return dataclasses.replace(event, operation=operation, **changes)  # type: ignore[arg-type]


IDENTITY = IdentityChanged(
    did=DID,
    handle="alice.example.com",
    seq=1_234_567,
    time="2025-01-01T00:00:00.000Z",
    source="jetstream",
    source_cursor=17,
    observed_at=18,
)
ACCOUNT = AccountStatusChanged(
    did=DID,
    active=False,
    status="takendown",
    seq=99,
    time="2025-01-02T00:00:00Z",
    source="backfill",
    source_cursor=None,
    observed_at=19,
)

REJECTED = CommitRejected(
    did=DID,
    collection="space.atbb.post",
    rkey="3lbq2dfxyz22a",
    operation="create",
    cid="bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5rmnwqpxkfsxqmu",
    rev=REV,
    seq=4242,
    reason="the commit's signature does not verify with the key of its DID document",
    source="firehose",
    source_cursor=4242,
    observed_at=20,
)

EVERY_KIND: list[tuple[LogEvent, str]] = [
    (record_event("create"), "atbb.RecordCreated"),
    (record_event("update", source="backfill", source_cursor=None), "atbb.RecordUpdated"),
    (record_event("delete", record=None, cid=None), "atbb.RecordDeleted"),
    (
        record_event(valid=False, reason="record/text: must be at most 3000 graphemes"),
        "atbb.RecordCreated",
    ),
    (IDENTITY, "atbb.IdentityChanged"),
    (dataclasses.replace(IDENTITY, handle=None, time=None), "atbb.IdentityChanged"),
    (ACCOUNT, "atbb.AccountStatusChanged"),
    (dataclasses.replace(ACCOUNT, active=True, status=None), "atbb.AccountStatusChanged"),
    (REJECTED, "atbb.CommitRejected"),
    (dataclasses.replace(REJECTED, operation="delete", cid=None), "atbb.CommitRejected"),
]


@pytest.mark.parametrize(("event", "topic"), EVERY_KIND)
def test_every_event_round_trips_under_its_stable_topic(event: LogEvent, topic: str) -> None:
    stored = encode(event)

    assert stored.topic == topic
    assert (stored.originator_id, stored.originator_version) == originator_of(event)
    assert decode(stored.topic, stored.state) == event
    assert decode_stored(stored) == event


def test_topics_are_the_six_short_names() -> None:
    assert TOPICS == (
        "atbb.RecordCreated",
        "atbb.RecordUpdated",
        "atbb.RecordDeleted",
        "atbb.IdentityChanged",
        "atbb.AccountStatusChanged",
        "atbb.CommitRejected",
    )


@pytest.mark.parametrize(("event", "topic"), EVERY_KIND)
def test_state_is_compact_json_of_every_field(event: LogEvent, topic: str) -> None:
    state = encode(event).state

    fields = json.loads(state)
    assert set(fields) == {f.name for f in dataclasses.fields(event)}
    assert state == json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def test_record_and_identity_ids_follow_the_model() -> None:
    assert encode(record_event()).originator_id == f"at://{DID}/space.atbb.post/3lbq2dfxyz22a"
    assert encode(record_event()).originator_version == 1_735_000_000_000_000 << 10
    assert encode(IDENTITY).originator_id == f"identity:{DID}"
    assert encode(ACCOUNT).originator_id == f"account:{DID}"
    assert encode(ACCOUNT).originator_version == 99
    # a refused commit is not a revision of its record: its own id, at the firehose seq
    assert encode(REJECTED).originator_id == f"rejected:at://{DID}/space.atbb.post/3lbq2dfxyz22a"
    assert encode(REJECTED).originator_version == 4242


UNICODE_TEXTS = [
    "café, naïve, Ærøskøbing",
    "日本語のフォーラム投稿",
    "emoji 👩‍👩‍👧‍👦 🇫🇷 and a ZWJ",
    "עברית ومعها العربية",
    "e\u0301 combining, \u200b zero width",
    'control \x00\x01\x1f and quotes " \\ /',
]


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_unicode_round_trips_and_is_stored_as_utf8(text: str) -> None:
    event = record_event(record={"$type": "space.atbb.post", "text": text}, reason=text)
    stored = encode(event)

    assert decode_stored(stored) == event
    assert stored.state.decode("utf-8")  # valid UTF-8, not escaped ASCII
    if not text.isascii():
        assert text.split()[0].encode("utf-8") in stored.state


def test_a_lone_surrogate_is_kept_as_escaped_json() -> None:
    # json.loads('"\\ud83d"') gives a lone surrogate, which has no UTF-8 form.
    text = json.loads('"broken \\ud83d pair"')
    event = record_event(record={"text": text})

    stored = encode(event)

    assert stored.state.isascii()
    assert decode_stored(stored) == event


def test_a_large_record_round_trips() -> None:
    record = {
        "$type": "space.atbb.post",
        "text": "ß" * 450_000,
        "facets": [{"index": {"byteStart": i, "byteEnd": i + 1}} for i in range(2000)],
    }
    event = record_event(record=record)

    stored = encode(event)

    assert len(stored.state) > 900_000
    assert decode_stored(stored) == event


def test_nested_and_odd_json_values_round_trip() -> None:
    record = {
        "a": [1, 2.5, -0.0, 10**30, None, True, False, "x", {"b": []}],
        "nan": float("inf"),
        "$bytes": {"$bytes": "AAEC"},
        "link": {"$link": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5rmnwqpxkfsxqmu"},
    }
    event = record_event(record=record)

    assert decode_stored(encode(event)) == event


def test_a_malformed_rev_is_refused_with_a_reason() -> None:
    with pytest.raises(CodecError, match="TID"):
        encode(record_event(rev="not-a-tid"))


def test_a_record_that_is_not_json_is_refused_with_a_reason() -> None:
    with pytest.raises(CodecError, match="cannot encode RecordEvent as JSON"):
        encode(record_event(record={"bytes": b"\x00"}))


def test_a_non_event_is_refused() -> None:
    with pytest.raises(CodecError, match="not a log event"):
        encode("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("topic", "state", "reason"),
    [
        ("atbb.Unknown", b"{}", "unknown event topic 'atbb.Unknown'"),
        ("myapp.events:RecordEvent", b"{}", "unknown event topic"),
        ("atbb.RecordCreated", b"{not json", "not UTF-8 JSON"),
        ("atbb.RecordCreated", b"\xff\xfe", "not UTF-8 JSON"),
        ("atbb.IdentityChanged", b"[1, 2]", "not a JSON object"),
        ("atbb.IdentityChanged", b'"text"', "not a JSON object"),
        ("atbb.AccountStatusChanged", b'{"did": "did:plc:x"}', "lacks the field 'active'"),
    ],
)
def test_bytes_that_are_not_an_event_raise_a_codec_error(
    topic: str, state: bytes, reason: str
) -> None:
    with pytest.raises(CodecError, match=reason):
        decode(topic, state)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(
    record=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6),
    text=st.text(),
    seq=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_any_json_record_and_any_text_round_trip(
    record: dict[str, Any], text: str, seq: int
) -> None:
    events: list[LogEvent] = [
        record_event(record=record, reason=text),
        dataclasses.replace(IDENTITY, handle=text, seq=seq),
        dataclasses.replace(ACCOUNT, time=text, seq=seq),
    ]
    for event in events:
        stored = encode(event)
        assert isinstance(stored, StoredEvent)
        assert decode_stored(stored) == event


def _identical(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (1 and 1.0, 0.0 and -0.0, NaN and
    null all differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


ANY_FLOAT_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(record=st.dictionaries(st.text(max_size=10), ANY_FLOAT_JSON, max_size=6))
def test_the_fast_encoder_reads_back_as_json_would_wherever_it_decides(
    record: dict[str, Any],
) -> None:
    from events.codec import _ENCODER, _fast_encode, record_state

    fields = record_state(record_event(record=record))
    fast = _fast_encode(fields)
    if fast is not None:
        assert _identical(json.loads(fast), json.loads(_ENCODER.encode(fields)))


@pytest.mark.parametrize("record", [
    {"x": float("nan")}, {"x": [float("inf")]}, {"x": 2**64}, {"x": "\ud800"}, {"x": None},
])
def test_the_fast_encoder_leaves_to_json_what_it_would_write_differently(
    record: dict[str, Any],
) -> None:
    from events.codec import _fast_encode, record_state

    assert _fast_encode(record_state(record_event(record=record))) is None
    decoded = decode_stored(encode(record_event(record=record)))
    assert isinstance(decoded, RecordEvent) and isinstance(decoded.record, dict)
    assert decoded.record.keys() == record.keys()
