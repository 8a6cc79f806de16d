"""How a devnet PDS tells the network about its writes: the Jetstream server implements
this port, and tests may plug in a recording fake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from appview.repos.cbor import Cid


@dataclass(frozen=True, slots=True)
class CommitOp:
    """One record operation of a commit, as Jetstream v1 reports it."""

    operation: Literal["create", "update", "delete"]
    collection: str
    rkey: str
    record: dict[str, Any] | None  # JSON form ($link/$bytes), None on delete
    cid: str | None  # None on delete


class FirehoseSink(Protocol):
    def commit(self, did: str, rev: str, ops: list[CommitOp]) -> None: ...

    def identity(self, did: str, handle: str | None) -> None: ...

    def account(self, did: str, active: bool, status: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class RepoOpEvent:
    """One operation as the firehose reports it: ``cid`` the new value (None on delete),
    ``prev`` the old one (None on create)."""

    action: Literal["create", "update", "delete"]
    path: str
    cid: Cid | None
    prev: Cid | None


@dataclass(frozen=True, slots=True)
class RepoCommit:
    """A signed commit as a PDS's firehose sends it: the commit, the rev it follows, the
    tree root it replaced, and the CAR slice (commit, new records, proof nodes)."""

    did: str
    rev: str
    since: str | None
    commit: Cid
    prev_data: Cid | None
    blocks: bytes
    ops: tuple[RepoOpEvent, ...]


class RepoEvents(Protocol):
    """Where a devnet PDS sends its signed commits (its ``subscribeRepos`` stream)."""

    def repo_commit(self, commit: RepoCommit) -> None: ...
