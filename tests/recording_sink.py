"""A FirehoseSink that keeps what it is told, for tests of the devnet PDS and repos."""

from __future__ import annotations

from dataclasses import dataclass, field

from appview.devnet.sink import CommitOp


@dataclass
class RecordingSink:
    commits: list[tuple[str, str, list[CommitOp]]] = field(default_factory=list)
    identities: list[tuple[str, str | None]] = field(default_factory=list)
    accounts: list[tuple[str, bool, str | None]] = field(default_factory=list)

    def commit(self, did: str, rev: str, ops: list[CommitOp]) -> None:
        self.commits.append((did, rev, list(ops)))

    def identity(self, did: str, handle: str | None) -> None:
        self.identities.append((did, handle))

    def account(self, did: str, active: bool, status: str | None) -> None:
        self.accounts.append((did, active, status))
