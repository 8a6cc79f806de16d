"""One Jetstream v1 line in, one outcome out; and an event back to its v1 line.

Jetstream v1 (``GET /subscribe``) sends text frames of JSON, one event each:
``{did, time_us, kind}`` plus ``commit`` (``rev, operation, collection, rkey, record?,
cid?``), ``identity`` (``did, handle?, seq, time``) or ``account`` (``did, active,
status?, seq, time``). ``parse_line`` turns a line into a :class:`ParsedLine` holding
exactly one of: an ``event`` to append (a ``space.atbb.*`` record, valid or not, an
identity or an account change), an ``ignored`` reason (a well-formed event that is not
ours), or an ``error`` reason (anything malformed). It never raises: a bad line is a
reason, never a stopped stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast

from events.ids import CID, DID, NSID, TID, Handle, RecordKey
from events.lexicon import LexiconValidator
from events.model import (
    ATBB_PREFIX,
    AccountStatus,
    AccountStatusChanged,
    CommitRejected,
    IdentityChanged,
    LogEvent,
    RecordEvent,
    RecordOperation,
    Source,
)

Kind: TypeAlias = Literal["commit", "identity", "account"]

DEFAULT_MAX_BYTES: Final = 1_048_576
_KINDS: Final = frozenset({"commit", "identity", "account"})
_OPERATIONS: Final = frozenset({"create", "update", "delete"})
_STATUSES: Final = frozenset(
    {"active", "takendown", "suspended", "deleted", "deactivated", "desynchronized", "throttled"}
)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """The outcome of one line. Exactly one of ``event``, ``ignored`` and ``error`` is
    set. ``kind``, ``operation`` and ``time_us`` are filled in as far as the line was
    readable, also on errors (so a consumer can still count it and move its cursor)."""

    kind: Kind | None
    operation: RecordOperation | None
    time_us: int | None
    event: LogEvent | None
    ignored: str | None
    error: str | None


def _shown(value: object) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a value of type {type(value).__name__}"


def _type_name(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "number"


class _LineError(Exception):
    """Why a line is rejected; caught in ``parse_line`` and turned into its ``error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# One configured decoder: json.loads with arguments builds a new decoder per call. Go's
# encoder (Jetstream's) never writes NaN or Infinity, so they are refused as not JSON.
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _decode(line: str | bytes, max_bytes: int) -> dict[str, Any]:
    """The line's JSON object, or a _LineError saying why there is none."""
    if isinstance(line, bytes | bytearray | memoryview):
        raw = bytes(line)
        if len(raw) > max_bytes:
            raise _LineError(f"line of {len(raw)} bytes is over the limit of {max_bytes}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _LineError(f"line is not UTF-8 (byte {exc.start})") from None
    elif isinstance(line, str):
        text = line
        if not text.isascii():
            # Encoding measures the line and finds any lone surrogate (a str read with
            # errors="surrogateescape", say), which no store could write.
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise _LineError(
                    f"line holds a lone surrogate at character {exc.start}, not valid Unicode"
                ) from None
        else:
            size = len(text)
        if size > max_bytes:
            raise _LineError(f"line of {size} bytes is over the limit of {max_bytes}")
    else:
        raise _LineError(f"a line is text or bytes, not {type(line).__name__}")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise _LineError("empty line") from None
        # A string running to the end of the line, or an error at its very end: the line
        # was cut short (a dropped connection, a partial write), not garbled.
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise _LineError(f"truncated line: the JSON ends early ({exc.msg})") from None
        raise _LineError(f"malformed JSON at character {exc.pos}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise _LineError(f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _LineError(f"line is a JSON {_type_name(value)}, not an object")
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(value):
        # An escaped UTF-16 surrogate is the only way JSON text smuggles in a string that
        # is not valid Unicode, so lines without one need no walk.
        raise _LineError("line holds a lone UTF-16 surrogate escape, not valid Unicode")
    return value


def _int_field(container: dict[str, Any], name: str, where: str) -> int:
    value = container.get(name)
    if value is None:
        raise _LineError(f"{where}{name}: missing")
    if not isinstance(value, int) or isinstance(value, bool):
        raise _LineError(f"{where}{name}: expected an integer, got {_type_name(value)}")
    if value < 0:
        raise _LineError(f"{where}{name}: negative ({value})")
    return value


def _optional_time(container: dict[str, Any], where: str) -> str | None:
    value = container.get("time")
    if value is None or isinstance(value, str):
        return value
    raise _LineError(f"{where}time: expected a string, got {_type_name(value)}")


def parse_line(
    line: str | bytes,
    *,
    forum_did: str,
    validator: LexiconValidator,
    observed_at: int,
    source: Source = "jetstream",
    max_bytes: int = DEFAULT_MAX_BYTES,
    wanted_dids: Container[str] | None = None,
) -> ParsedLine:
    """Parse one Jetstream v1 line (see the module docstring). Never raises.

    Identity and account events pass Jetstream's collection filter for every account on
    the network; with ``wanted_dids`` (say, the DIDs the log knows plus the Forum
    account) those of other DIDs are ignored instead of becoming events. Without it,
    every well-formed one is an event."""
    kind: Kind | None = None
    operation: RecordOperation | None = None
    time_us: int | None = None
    try:
        message = _decode(line, max_bytes)
        time_us = _int_field(message, "time_us", "")
        raw_kind = message.get("kind")
        if isinstance(raw_kind, str) and raw_kind in _KINDS:
            kind = cast(Kind, raw_kind)
        did = message.get("did")
        if did is None:
            raise _LineError("did: missing")
        if not DID.is_valid(did):
            raise _LineError(f"did: not a did:plc or did:web DID: {_shown(did)}")
        if kind == "commit":
            body = message.get("commit")
            if not isinstance(body, dict):
                raise _LineError(f"commit: expected an object, got {_type_name(body)}")
            raw_operation = body.get("operation")
            if not isinstance(raw_operation, str) or raw_operation not in _OPERATIONS:
                raise _LineError(
                    f"commit.operation: not create, update or delete: {_shown(raw_operation)}"
                )
            operation = cast(RecordOperation, raw_operation)
            return _commit(
                did, body, operation, time_us, forum_did, validator, observed_at, source
            )
        if kind == "identity" or kind == "account":
            parsed = (_identity if kind == "identity" else _account)(
                did, message, time_us, observed_at, source
            )
            if wanted_dids is not None and did not in wanted_dids:
                return ParsedLine(
                    kind, None, time_us, None, f"{kind} event of {did}, a DID not wanted", None
                )
            return parsed
        if raw_kind is None:
            raise _LineError("kind: missing")
        raise _LineError(f"kind: unknown kind {_shown(raw_kind)}")
    except _LineError as exc:
        return ParsedLine(kind, operation, time_us, None, None, exc.reason)
    except Exception as exc:  # bad input is normal: a surprise is a reason, not a crash
        return ParsedLine(
            kind, operation, time_us, None, None, f"line could not be parsed ({type(exc).__name__})"
        )


def _commit(
    did: str,
    body: dict[str, Any],
    operation: RecordOperation,
    time_us: int,
    forum_did: str,
    validator: LexiconValidator,
    observed_at: int,
    source: Source,
) -> ParsedLine:
    collection = body.get("collection")
    if not isinstance(collection, str):
        raise _LineError(f"commit.collection: expected a string, got {_type_name(collection)}")
    if not collection.startswith(ATBB_PREFIX):
        # Not ours: dropped before the store, without looking further.
        return ParsedLine(
            "commit", operation, time_us, None, f"collection {collection} is not space.atbb.*",
            None,
        )
    if collection not in validator.collections and not NSID.is_valid(collection):
        raise _LineError(f"commit.collection: not an NSID: {_shown(collection)}")
    rkey = body.get("rkey")
    if not RecordKey.is_valid(rkey):
        raise _LineError(f"commit.rkey: not a record key: {_shown(rkey)}")
    rev = body.get("rev")
    if not TID.is_valid(rev):
        raise _LineError(f"commit.rev: not a TID: {_shown(rev)}")
    record: dict[str, Any] | None = None
    cid: str | None = None
    if operation == "delete":
        verdict = validator.validate_delete(collection, rkey, did=did, forum_did=forum_did)
    else:
        raw_record = body.get("record")
        if not isinstance(raw_record, dict):
            raise _LineError(
                f"commit.record: a {operation} needs the record object, got "
                f"{_type_name(raw_record)}"
            )
        raw_cid = body.get("cid")
        if not CID.is_valid(raw_cid):
            raise _LineError(f"commit.cid: not a CIDv1 in base32: {_shown(raw_cid)}")
        record, cid = raw_record, raw_cid
        verdict = validator.validate(collection, rkey, record, did=did, forum_did=forum_did)
    event = RecordEvent(
        operation=operation,
        did=did,
        collection=collection,
        rkey=rkey,
        rev=rev,
        cid=cid,
        record=record,
        valid=verdict.valid,
        reason=verdict.reason,
        source=source,
        source_cursor=time_us,
        observed_at=observed_at,
    )
    return ParsedLine("commit", operation, time_us, event, None, None)


def _identity(
    did: str, message: dict[str, Any], time_us: int, observed_at: int, source: Source
) -> ParsedLine:
    body = message.get("identity")
    if not isinstance(body, dict):
        raise _LineError(f"identity: expected an object, got {_type_name(body)}")
    inner = body.get("did", did)
    if inner != did:
        raise _LineError(f"identity.did: {_shown(inner)} is not the event's did {did}")
    handle = body.get("handle")
    if handle is not None and not Handle.is_valid(handle):
        raise _LineError(f"identity.handle: not a handle: {_shown(handle)}")
    seq = _int_field(body, "seq", "identity.")
    event = IdentityChanged(
        did=did,
        handle=handle,
        seq=seq,
        time=_optional_time(body, "identity."),
        source=source,
        source_cursor=time_us,
        observed_at=observed_at,
    )
    return ParsedLine("identity", None, time_us, event, None, None)


def _account(
    did: str, message: dict[str, Any], time_us: int, observed_at: int, source: Source
) -> ParsedLine:
    body = message.get("account")
    if not isinstance(body, dict):
        raise _LineError(f"account: expected an object, got {_type_name(body)}")
    inner = body.get("did", did)
    if inner != did:
        raise _LineError(f"account.did: {_shown(inner)} is not the event's did {did}")
    active = body.get("active")
    if not isinstance(active, bool):
        raise _LineError(f"account.active: expected a boolean, got {_type_name(active)}")
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status not in _STATUSES):
        raise _LineError(f"account.status: unknown status {_shown(status)}")
    seq = _int_field(body, "seq", "account.")
    event = AccountStatusChanged(
        did=did,
        active=active,
        status=cast(AccountStatus | None, status),
        seq=seq,
        time=_optional_time(body, "account."),
        source=source,
        source_cursor=time_us,
        observed_at=observed_at,
    )
    return ParsedLine("account", None, time_us, event, None, None)


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# Jetstream is written in Go, whose encoder escapes these inside strings (HTML safety and
# JavaScript line separators); outside strings they never occur in JSON.
_GO_ESCAPED: Final = re.compile("[&<>\u2028\u2029]")


def _go_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def to_line(event: LogEvent, time_us: int) -> str:
    """The Jetstream v1 line of an event, as Jetstream writes it: the same key order and
    the same escapes, so a line of the capture comes back byte for byte. A refused
    firehose commit has no line (Jetstream never sends one): ValueError."""
    message: dict[str, Any]
    if isinstance(event, CommitRejected):
        raise ValueError("a refused firehose commit has no Jetstream line")
    if isinstance(event, RecordEvent):
        commit: dict[str, Any] = {
            "rev": event.rev,
            "operation": event.operation,
            "collection": event.collection,
            "rkey": event.rkey,
        }
        if event.operation != "delete":
            commit["record"] = event.record
            commit["cid"] = event.cid
        message = {"did": event.did, "time_us": time_us, "kind": "commit", "commit": commit}
    elif isinstance(event, IdentityChanged):
        identity: dict[str, Any] = {"did": event.did}
        if event.handle is not None:
            identity["handle"] = event.handle
        identity["seq"] = event.seq
        if event.time is not None:
            identity["time"] = event.time
        message = {"did": event.did, "time_us": time_us, "kind": "identity", "identity": identity}
    else:
        account: dict[str, Any] = {"active": event.active, "did": event.did, "seq": event.seq}
        if event.status is not None:
            account["status"] = event.status
        if event.time is not None:
            account["time"] = event.time
        message = {"did": event.did, "time_us": time_us, "kind": "account", "account": account}
    return _GO_ESCAPED.sub(_go_escape, _ENCODER.encode(message))
