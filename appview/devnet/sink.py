"""How a devnet PDS tells the network about its writes: the Jetstream server implements
this port, and tests may plug in a recording fake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol


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
