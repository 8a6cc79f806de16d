"""Checking a signed repository commit and the operations a firehose says it made.

A ``#commit`` frame carries the commit's CID, a CAR slice (the commit block, the record
blocks of its creates and updates, and the tree nodes that prove its operations) and the
operations ``{action, path, cid, prev}``. Verified here, each failure a reason:

- every block is its CID (``read_car_blocks``), the commit is the slice's root;
- the commit ``{did, version, data, rev, prev, sig}`` is the frame's repo and rev, and
  ``sig`` signs the commit without it, by the key of the author's DID document;
- each operation agrees with the new tree: a create or update holds its CID at its path,
  a delete's path is absent;
- with ``prevData`` (sync 1.1), the operations undone on the new tree, in the reference
  order (deletes first, then by path), give exactly ``prevData``: nothing else changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from appview.repos.car import CarError, read_car_blocks
from appview.repos.cbor import CborError, Cid, decode, encode
from appview.repos.mst import MstError
from appview.repos.mst_edit import Tree
from appview.repos.signing import VerifyingKey

Action = Literal["create", "update", "delete"]


class CommitInvalid(ValueError):
    """A commit or an operation that does not verify; the message is the reason."""


@dataclass(frozen=True, slots=True)
class RepoOp:
    action: Action
    path: str
    cid: Cid | None  # the new value; None on delete
    prev: Cid | None  # the value before (sync 1.1); None on create, or from older hosts


@dataclass(frozen=True, slots=True)
class SignedCommit:
    cid: Cid
    did: str
    rev: str
    data: Cid
    signature: bytes
    unsigned: bytes  # what the signature signs: the commit block without ``sig``

    def signed_by(self, key: VerifyingKey) -> bool:
        return key.verify(self.unsigned, self.signature)


def read_slice(car: bytes) -> tuple[Cid, dict[Cid, bytes]]:
    """The root and the blocks of a commit's CAR slice, each block checked against its
    CID; raises :class:`CommitInvalid`."""
    try:
        return read_car_blocks(car)
    except CarError as exc:
        raise CommitInvalid(f"the CAR slice: {exc}") from exc


def read_commit(blocks: Mapping[Cid, bytes], cid: Cid) -> SignedCommit:
    """The signed commit block ``cid``; raises :class:`CommitInvalid`."""
    block = blocks.get(cid)
    if block is None:
        raise CommitInvalid(f"the commit block {cid} is not in the CAR slice")
    try:
        commit = decode(block)
    except CborError as exc:
        raise CommitInvalid(f"the commit block is not DAG-CBOR: {exc}") from exc
    if not isinstance(commit, dict):
        raise CommitInvalid("the commit block is not a map")
    did, rev, data, sig = (commit.get(k) for k in ("did", "rev", "data", "sig"))
    if commit.get("version") != 3:
        raise CommitInvalid(f"commit version {commit.get('version')!r} is not 3")
    if not isinstance(did, str) or not isinstance(rev, str):
        raise CommitInvalid("the commit lacks its did or rev")
    if not isinstance(data, Cid):
        raise CommitInvalid("the commit's data is not a CID link")
    if not isinstance(sig, bytes):
        raise CommitInvalid("the commit has no signature")
    unsigned = {key: value for key, value in commit.items() if key != "sig"}
    return SignedCommit(cid, did, rev, data, sig, encode(unsigned))


def check_operations(commit: SignedCommit, ops: Sequence[RepoOp], blocks: Mapping[Cid, bytes],
                     prev_data: Cid | None) -> bool:
    """Check ``ops`` against the commit's tree (and undo them to ``prev_data`` when it is
    given and every update and delete names its ``prev``). Returns whether the undo was
    checked; raises :class:`CommitInvalid` with the first disagreement."""
    paths = [op.path for op in ops]
    if len(set(paths)) != len(paths):
        raise CommitInvalid("the operations name a path twice")
    for op in ops:
        if op.action == "delete":
            if op.cid is not None:
                raise CommitInvalid(f"the delete of {op.path} carries a CID")
        elif op.cid is None:
            raise CommitInvalid(f"the {op.action} of {op.path} carries no CID")
        if op.action == "create" and op.prev is not None:
            raise CommitInvalid(f"the create of {op.path} names a previous value")
    tree = Tree(commit.data, blocks.get)
    try:
        for op in ops:
            held = tree.get(op.path)
            if held != op.cid:
                if op.cid is None:
                    raise CommitInvalid(f"the commit's tree still holds the deleted {op.path}")
                if held is None:
                    raise CommitInvalid(f"the {op.action} of {op.path} is not in the"
                                        f" commit's tree")
                raise CommitInvalid(f"the commit's tree holds {held} at {op.path},"
                                    f" not the {op.action}'s {op.cid}")
        if prev_data is None or any(op.prev is None for op in ops if op.action != "create"):
            return False
        for op in sorted(ops, key=lambda o: (o.action != "delete", o.path)):
            if op.action == "create":
                tree.remove(op.path)
            else:
                assert op.prev is not None
                tree.insert(op.path, op.prev)
        undone = tree.root()
    except MstError as exc:
        raise CommitInvalid(f"the commit's tree: {exc}") from exc
    if undone != prev_data:
        raise CommitInvalid(f"the operations undone on the commit's tree give {undone},"
                            f" not prevData {prev_data}: the commit changed more than"
                            f" they say")
    return True
