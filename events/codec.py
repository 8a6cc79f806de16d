"""Domain events to ``eventsourcing`` stored events and back.

Topics are short stable names, not class paths, so renaming or moving a class never
orphans what the log already holds (``docs/adr/0002-event-store-recorders.md``). The state
is compact UTF-8 JSON of every field. Decoding is a dict lookup of the topic and a
constructor call with explicit fields: no reflection per event, because a rebuild decodes
the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent

from events.model import (
    AccountStatusChanged,
    CommitRejected,
    IdentityChanged,
    LogEvent,
    RecordEvent,
    originator_of,
)

TOPIC_RECORD_CREATED = "atbb.RecordCreated"
TOPIC_RECORD_UPDATED = "atbb.RecordUpdated"
TOPIC_RECORD_DELETED = "atbb.RecordDeleted"
TOPIC_IDENTITY_CHANGED = "atbb.IdentityChanged"
TOPIC_ACCOUNT_STATUS_CHANGED = "atbb.AccountStatusChanged"
TOPIC_COMMIT_REJECTED = "atbb.CommitRejected"

TOPICS: tuple[str, ...] = (
    TOPIC_RECORD_CREATED,
    TOPIC_RECORD_UPDATED,
    TOPIC_RECORD_DELETED,
    TOPIC_IDENTITY_CHANGED,
    TOPIC_ACCOUNT_STATUS_CHANGED,
    TOPIC_COMMIT_REJECTED,
)

RECORD_TOPIC_OF_OPERATION: Mapping[str, str] = MappingProxyType(
    {
        "create": TOPIC_RECORD_CREATED,
        "update": TOPIC_RECORD_UPDATED,
        "delete": TOPIC_RECORD_DELETED,
    }
)

# One configured encoder: json.dumps with non-default arguments builds a new encoder per
# call. It holds configuration only. No circularity check: every record came out of a JSON
# parser, so it cannot be circular, and the check costs a third of the encoding time.
# NaN/Infinity stay allowed because json.loads accepts them on ingest, and refusing them
# here would fail a whole batch over one odd record. The common event goes through orjson
# instead (``_fast_encode``); these decide the rest.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


class CodecError(ValueError):
    """An event that cannot be encoded, or stored bytes that are not an event; the message
    says why."""


def record_state(event: RecordEvent) -> dict[str, Any]:
    return {
        "operation": event.operation,
        "did": event.did,
        "collection": event.collection,
        "rkey": event.rkey,
        "rev": event.rev,
        "cid": event.cid,
        "record": event.record,
        "valid": event.valid,
        "reason": event.reason,
        "source": event.source,
        "source_cursor": event.source_cursor,
        "observed_at": event.observed_at,
    }


def identity_state(event: IdentityChanged) -> dict[str, Any]:
    return {
        "did": event.did,
        "handle": event.handle,
        "seq": event.seq,
        "time": event.time,
        "source": event.source,
        "source_cursor": event.source_cursor,
        "observed_at": event.observed_at,
    }


def account_state(event: AccountStatusChanged) -> dict[str, Any]:
    return {
        "did": event.did,
        "active": event.active,
        "status": event.status,
        "seq": event.seq,
        "time": event.time,
        "source": event.source,
        "source_cursor": event.source_cursor,
        "observed_at": event.observed_at,
    }


def rejected_state(event: CommitRejected) -> dict[str, Any]:
    return {
        "did": event.did,
        "collection": event.collection,
        "rkey": event.rkey,
        "operation": event.operation,
        "cid": event.cid,
        "rev": event.rev,
        "seq": event.seq,
        "reason": event.reason,
        "source": event.source,
        "source_cursor": event.source_cursor,
        "observed_at": event.observed_at,
    }


def topic_of(event: LogEvent) -> str:
    if isinstance(event, RecordEvent):
        topic = RECORD_TOPIC_OF_OPERATION.get(event.operation)
        if topic is None:
            raise CodecError(f"unknown record operation {event.operation!r}")
        return topic
    if isinstance(event, IdentityChanged):
        return TOPIC_IDENTITY_CHANGED
    if isinstance(event, AccountStatusChanged):
        return TOPIC_ACCOUNT_STATUS_CHANGED
    if isinstance(event, CommitRejected):
        return TOPIC_COMMIT_REJECTED
    raise CodecError(f"not a log event: {type(event).__name__}")


def encode_state(event: LogEvent) -> bytes:
    if isinstance(event, RecordEvent):
        fields = record_state(event)
    elif isinstance(event, IdentityChanged):
        fields = identity_state(event)
    elif isinstance(event, AccountStatusChanged):
        fields = account_state(event)
    elif isinstance(event, CommitRejected):
        fields = rejected_state(event)
    else:
        raise CodecError(f"not a log event: {type(event).__name__}")
    fast = _fast_encode(fields)
    if fast is not None:
        return fast
    try:
        text = _ENCODER.encode(fields)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CodecError(f"cannot encode {type(event).__name__} as JSON: {exc}") from exc
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON's "\\ud800" parses to one) has no UTF-8 form; escaped
        # as ASCII JSON it still round-trips exactly, so the record is kept.
        return _ASCII_ENCODER.encode(fields).encode("ascii")


def _fast_encode(fields: dict[str, Any]) -> bytes | None:
    """``fields`` as JSON by orjson (several times faster), or None where orjson's text
    could decode to something else than json's: orjson writes NaN and Infinity as null,
    and only the record can hold a float, so a record whose text has a null in it goes to
    json; whatever orjson refuses (integers past 64 bits, lone surrogates, deep nesting)
    goes to json too, which decides and words any error."""
    record = fields.get("record")
    try:
        if record is not None:
            raw = orjson.dumps(record)
            if b"null" in raw:
                return None
            fields = {**fields, "record": orjson.Fragment(raw)}
        return orjson.dumps(fields)
    except TypeError:  # orjson.JSONEncodeError is one
        return None


def encode(event: LogEvent) -> StoredEvent:
    """The stored form of ``event``; raises :class:`CodecError` saying why it cannot be."""
    topic = topic_of(event)
    try:
        originator_id, version = originator_of(event)
    except ValueError as exc:  # a malformed rev
        raise CodecError(f"no store identity for {type(event).__name__}: {exc}") from exc
    return StoredEvent(
        originator_id=originator_id,
        originator_version=version,
        topic=topic,
        state=encode_state(event),
    )


def _record(d: dict[str, Any]) -> RecordEvent:
    return RecordEvent(
        operation=d["operation"],
        did=d["did"],
        collection=d["collection"],
        rkey=d["rkey"],
        rev=d["rev"],
        cid=d["cid"],
        record=d["record"],
        valid=d["valid"],
        reason=d["reason"],
        source=d["source"],
        source_cursor=d["source_cursor"],
        observed_at=d["observed_at"],
    )


def _identity(d: dict[str, Any]) -> IdentityChanged:
    return IdentityChanged(
        did=d["did"],
        handle=d["handle"],
        seq=d["seq"],
        time=d["time"],
        source=d["source"],
        source_cursor=d["source_cursor"],
        observed_at=d["observed_at"],
    )


def _account(d: dict[str, Any]) -> AccountStatusChanged:
    return AccountStatusChanged(
        did=d["did"],
        active=d["active"],
        status=d["status"],
        seq=d["seq"],
        time=d["time"],
        source=d["source"],
        source_cursor=d["source_cursor"],
        observed_at=d["observed_at"],
    )


def _rejected(d: dict[str, Any]) -> CommitRejected:
    return CommitRejected(
        did=d["did"],
        collection=d["collection"],
        rkey=d["rkey"],
        operation=d["operation"],
        cid=d["cid"],
        rev=d["rev"],
        seq=d["seq"],
        reason=d["reason"],
        source=d["source"],
        source_cursor=d["source_cursor"],
        observed_at=d["observed_at"],
    )


_DECODERS: Mapping[str, Callable[[dict[str, Any]], LogEvent]] = MappingProxyType(
    {
        TOPIC_RECORD_CREATED: _record,
        TOPIC_RECORD_UPDATED: _record,
        TOPIC_RECORD_DELETED: _record,
        TOPIC_IDENTITY_CHANGED: _identity,
        TOPIC_ACCOUNT_STATUS_CHANGED: _account,
        TOPIC_COMMIT_REJECTED: _rejected,
    }
)


def decode(topic: str, state: bytes) -> LogEvent:
    """The event stored as ``topic``/``state``; raises :class:`CodecError` saying why not."""
    decoder = _DECODERS.get(topic)
    if decoder is None:
        raise CodecError(f"unknown event topic {topic!r}")
    try:
        fields = orjson.loads(state)
    except orjson.JSONDecodeError:
        # orjson refuses a little that json accepts (integers past 64 bits, say): what
        # the standard decoder says is the verdict, so the speed-up changes no answer
        try:
            fields = json.loads(state.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise CodecError(f"{topic} state is not UTF-8 JSON: {exc}") from exc
    try:
        return decoder(fields)
    except KeyError as exc:
        raise CodecError(f"{topic} state lacks the field {exc.args[0]!r}") from exc
    except TypeError as exc:  # the JSON is not an object
        raise CodecError(f"{topic} state is not a JSON object: {exc}") from exc


def decode_stored(stored: StoredEvent) -> LogEvent:
    return decode(stored.topic, stored.state)
