"""``com.atproto.sync.subscribeRepos`` frames: bytes in, one typed message out.

A frame is two DAG-CBOR items back to back: a header ``{op, t}`` and a body. ``op: 1``
is a message of type ``t`` (``#commit``, ``#identity``, ``#account``, ``#sync``,
``#info``); ``op: -1`` an error ``{error, message}`` after which the server closes.
Anything else (a type this reader does not know, a missing field) is a
:class:`FrameError` with the reason, never an exception out of the reader.

Frames are decoded by ``libipld`` (Rust; links come back as raw CID bytes, and the
fields that are links are known here) and by our own decoder when it refuses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import libipld

from appview.repos.cbor import CborError, Cid, decode_sequence
from appview.repos.commit import Action, RepoOp

MAX_FRAME_BYTES = 5 * 1024 * 1024  # the reference relay's limit on a commit's blocks is 2 MB


class FrameError(ValueError):
    """A frame that is not a subscribeRepos message; the message says why."""


@dataclass(frozen=True, slots=True)
class CommitFrame:
    seq: int
    repo: str
    rev: str
    since: str | None
    commit: Cid
    blocks: bytes
    ops: tuple[RepoOp, ...]
    prev_data: Cid | None
    time: str
    too_big: bool


@dataclass(frozen=True, slots=True)
class SyncFrame:
    """The repo's current commit, said outright (sync 1.1): a consumer whose view of the
    repo differs re-reads it."""

    seq: int
    did: str
    rev: str
    blocks: bytes
    time: str


@dataclass(frozen=True, slots=True)
class IdentityFrame:
    seq: int
    did: str
    handle: str | None
    time: str


@dataclass(frozen=True, slots=True)
class AccountFrame:
    seq: int
    did: str
    active: bool
    status: str | None
    time: str


@dataclass(frozen=True, slots=True)
class InfoFrame:
    name: str
    message: str | None


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    error: str
    message: str | None


@dataclass(frozen=True, slots=True)
class OtherFrame:
    """A message type this reader does not act on (``#handle``, ``#tombstone`` of older
    relays, or newer ones): its cursor still counts."""

    kind: str
    seq: int | None


Frame: TypeAlias = (CommitFrame | SyncFrame | IdentityFrame | AccountFrame | InfoFrame
                    | ErrorFrame | OtherFrame)

_ACTIONS = frozenset({"create", "update", "delete"})


def decode_frame(data: bytes) -> Frame:
    """The message of one frame; raises :class:`FrameError` with the reason."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes is over the limit of {MAX_FRAME_BYTES}")
    try:
        items = libipld.decode_dag_cbor_multi(data)
    except ValueError:
        try:
            items = decode_sequence(data)
        except CborError as exc:
            raise FrameError(f"not DAG-CBOR: {exc}") from exc
    if len(items) != 2 or not isinstance(items[0], dict) or not isinstance(items[1], dict):
        raise FrameError("a frame is a header map and a body map")
    header, body = items
    op = header.get("op")
    if op == -1:
        return ErrorFrame(_text(body, "error"), _optional_text(body, "message"))
    if op != 1:
        raise FrameError(f"header op {op!r} is neither 1 nor -1")
    kind = header.get("t")
    if not isinstance(kind, str):
        raise FrameError("header t: missing")
    try:
        if kind == "#commit":
            return _commit(body)
        if kind == "#identity":
            return IdentityFrame(_int(body, "seq"), _text(body, "did"),
                                 _optional_text(body, "handle"), _text(body, "time"))
        if kind == "#account":
            active = body.get("active")
            if not isinstance(active, bool):
                raise FrameError("#account active: not a boolean")
            return AccountFrame(_int(body, "seq"), _text(body, "did"), active,
                                _optional_text(body, "status"), _text(body, "time"))
        if kind == "#sync":
            return SyncFrame(_int(body, "seq"), _text(body, "did"), _text(body, "rev"),
                             _bytes(body, "blocks"), _text(body, "time"))
        if kind == "#info":
            return InfoFrame(_text(body, "name"), _optional_text(body, "message"))
    except FrameError as exc:
        raise FrameError(f"{kind} {exc}") from None
    seq = body.get("seq")
    return OtherFrame(kind, seq if isinstance(seq, int) and not isinstance(seq, bool) else None)


def _commit(body: dict[str, Any]) -> CommitFrame:
    ops = body.get("ops")
    if not isinstance(ops, list):
        raise FrameError("ops: not a list")
    since = body.get("since")
    if since is not None and not isinstance(since, str):
        raise FrameError("since: not a string")
    prev_data = body.get("prevData")
    return CommitFrame(
        seq=_int(body, "seq"),
        repo=_text(body, "repo"),
        rev=_text(body, "rev"),
        since=since,
        commit=_link(body.get("commit"), "commit"),
        blocks=_bytes(body, "blocks"),
        ops=tuple(_op(item) for item in ops),
        prev_data=None if prev_data is None else _link(prev_data, "prevData"),
        time=_text(body, "time"),
        too_big=body.get("tooBig") is True,
    )


def _op(item: object) -> RepoOp:
    if not isinstance(item, dict):
        raise FrameError("ops: an operation is not a map")
    action, path = item.get("action"), item.get("path")
    if action not in _ACTIONS:
        raise FrameError(f"ops: unknown action {action!r}")
    if not isinstance(path, str) or "/" not in path:
        raise FrameError(f"ops: path {path!r} is not collection/rkey")
    cid, prev = item.get("cid"), item.get("prev")
    return RepoOp(cast(Action, action), path, None if cid is None else _link(cid, "ops cid"),
                  None if prev is None else _link(prev, "ops prev"))


def _link(value: object, what: str) -> Cid:
    try:
        return Cid.coerce(value)
    except CborError as exc:
        raise FrameError(f"{what}: not a CID ({exc})") from exc


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FrameError(f"{name}: not a non-negative integer")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise FrameError(f"{name}: not a string")
    return value


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise FrameError(f"{name}: not a string")
    return value


def _bytes(body: dict[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, bytes):
        raise FrameError(f"{name}: not bytes")
    return value
