"""Jetstream v1 lines, byte for byte as a production ``/subscribe`` host writes them.

Jetstream is written in Go: its JSON escapes ``<``, ``>``, ``&``, U+2028 and U+2029, leaves
other non-ASCII text unescaped, writes record maps with sorted keys (records come out of
DAG-CBOR into Go maps), except blobs, whose Go struct writes ``$type, ref, mimeType,
size`` in that order. Matching those details lets tests compare our lines with captured
ones as bytes, not only as parsed JSON.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from appview.devnet.sink import CommitOp

_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)
_BLOB_KEYS = ("$type", "ref", "mimeType", "size")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# DIDs, revs, NSIDs, record keys and CIDs need no escaping: quote them directly.
_PLAIN = re.compile(r"[A-Za-z0-9:._~/-]*")


def go_json(value: Any) -> str:
    """Compact JSON the way Go's ``encoding/json`` writes it (map keys as given)."""
    text: str = _ENCODER.encode(value)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        for raw, escaped in _GO_ESCAPES:
            text = text.replace(raw, escaped)
    return text


def _quote(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return f'"{text}"'
    return go_json(text)


def canonical_record(value: Any) -> Any:
    """A record's JSON form with Jetstream's key order: sorted maps, blobs in struct order."""
    if isinstance(value, dict):
        if value.get("$type") == "blob" and set(value) == set(_BLOB_KEYS):
            return {key: canonical_record(value[key]) for key in _BLOB_KEYS}
        return {key: canonical_record(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical_record(item) for item in value]
    return value


def iso_time(time_us: int) -> str:
    """RFC 3339 with milliseconds and ``Z``, as the relay stamps identity/account events."""
    moment = datetime.fromtimestamp(time_us // 1_000_000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{time_us // 1000 % 1000:03d}Z"


def commit_line(
    did: str,
    time_us: int,
    rev: str,
    op: CommitOp,
    *,
    record_json: str | None = None,
) -> str:
    """One commit event. ``record_json`` skips re-serialising a record already written in
    Jetstream's key order (the bulk generator's fast path)."""
    head = (
        f'{{"did":{_quote(did)},"time_us":{time_us},"kind":"commit","commit":{{'
        f'"rev":{_quote(rev)},"operation":"{op.operation}",'
        f'"collection":{_quote(op.collection)},"rkey":{_quote(op.rkey)}'
    )
    if op.operation == "delete" or op.record is None:
        return head + "}}"
    if record_json is None:
        record_json = go_json(canonical_record(op.record))
    return f'{head},"record":{record_json},"cid":{go_json(op.cid)}}}}}'


def identity_line(
    did: str, time_us: int, handle: str | None, seq: int, *, time: str | None = None
) -> str:
    """An identity event; ``time`` (the relay's stamp) defaults to ``time_us``'s."""
    body: dict[str, Any] = {"did": did}
    if handle is not None:
        body["handle"] = handle
    body["seq"] = seq
    body["time"] = time if time is not None else iso_time(time_us)
    return go_json({"did": did, "time_us": time_us, "kind": "identity", "identity": body})


def account_line(
    did: str,
    time_us: int,
    active: bool,
    status: str | None,
    seq: int,
    *,
    time: str | None = None,
) -> str:
    """An account event; ``status`` is omitted when None (an active account)."""
    body: dict[str, Any] = {"active": active, "did": did, "seq": seq}
    if status is not None:
        body["status"] = status
    body["time"] = time if time is not None else iso_time(time_us)
    return go_json({"did": did, "time_us": time_us, "kind": "account", "account": body})
