"""One account's repository: records by collection and record key, signed commits over a
Merkle Search Tree, and the CAR export ``com.atproto.sync.getRepo`` serves."""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

from appview.devnet.keys import SigningKey
from appview.devnet.sink import CommitOp, FirehoseSink
from appview.devnet.tid import TidClock
from appview.repos import mst
from appview.repos.car import write_car
from appview.repos.cbor import CborError, Cid, encode, encode_json

_NSID = re.compile(
    r"^[a-zA-Z](?:[a-zA-Z0-9-]{0,62})?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}$"
)
_RKEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")


class RepoError(ValueError):
    """A write the repository refuses; the message says why."""


def check_collection(collection: str) -> None:
    if len(collection) > 317 or not _NSID.match(collection):
        raise RepoError(f"collection {collection!r} is not a valid NSID")


def check_rkey(rkey: str) -> None:
    if rkey in (".", "..") or not _RKEY.match(rkey):
        raise RepoError(f"record key {rkey!r} is not a valid record key")


@dataclass(frozen=True, slots=True)
class StoredRecord:
    collection: str
    rkey: str
    cid: str
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Write:
    """What one write did: the operation as the firehose reports it, and the new rev."""

    uri: str
    rev: str
    op: CommitOp


@dataclass(frozen=True, slots=True)
class Commit:
    cid: Cid
    rev: str
    data: Cid
    block: bytes
    tree: mst.Mst


@dataclass(slots=True)
class _Entry:
    cid: Cid
    block: bytes
    value: dict[str, Any]


class Repo:
    """Records plus the commit over them. Every write takes a new rev from the TID clock and
    is reported to the sink; the signed commit and its tree are built when first asked for
    (getRepo, getLatestCommit, a write's response), since seeding writes thousands of
    records whose intermediate commits nobody reads."""

    def __init__(self, did: str, key: SigningKey, tids: TidClock, sink: FirehoseSink) -> None:
        self.did = did
        self.key = key
        self._tids = tids
        self._sink = sink
        self._records: dict[str, dict[str, _Entry]] = {}
        self._lock = threading.RLock()
        self._rev = tids.next()
        self._commit: Commit | None = None

    @property
    def rev(self) -> str:
        return self._rev

    # --- writes ---------------------------------------------------------------------

    def create(self, collection: str, record: dict[str, Any], *, rkey: str | None = None) -> Write:
        with self._lock:
            rkey = rkey if rkey is not None else self._tids.next()
            check_collection(collection)
            check_rkey(rkey)
            if rkey in self._records.get(collection, {}):
                raise RepoError(f"record {collection}/{rkey} already exists")
            return self._store(collection, rkey, record, "create")

    def put(self, collection: str, rkey: str, record: dict[str, Any]) -> Write:
        with self._lock:
            check_collection(collection)
            check_rkey(rkey)
            exists = rkey in self._records.get(collection, {})
            return self._store(collection, rkey, record, "update" if exists else "create")

    def delete(self, collection: str, rkey: str) -> Write | None:
        """None when there was no such record (nothing is committed, as on a real PDS)."""
        with self._lock:
            if self._records.get(collection, {}).pop(rkey, None) is None:
                return None
            if not self._records[collection]:
                del self._records[collection]
            op = CommitOp("delete", collection, rkey, None, None)
            return self._committed(op)

    def _store(
        self,
        collection: str,
        rkey: str,
        record: dict[str, Any],
        operation: Literal["create", "update"],
    ) -> Write:
        if not isinstance(record, dict):
            raise RepoError("a record must be a JSON object")
        record_type = record.get("$type")
        if record_type != collection:
            raise RepoError(f"record $type must be {collection!r}, got {record_type!r}")
        try:
            block = encode_json(record)
        except CborError as exc:
            raise RepoError(f"record is not in the AT Protocol data model: {exc}") from exc
        value = copy.deepcopy(record)
        cid = Cid.for_dag_cbor(block)
        self._records.setdefault(collection, {})[rkey] = _Entry(cid, block, value)
        op = CommitOp(operation, collection, rkey, copy.deepcopy(value), str(cid))
        return self._committed(op)

    def _committed(self, op: CommitOp) -> Write:
        self._rev = self._tids.next()
        self._commit = None
        self._sink.commit(self.did, self._rev, [op])
        return Write(f"at://{self.did}/{op.collection}/{op.rkey}", self._rev, op)

    # --- reads ----------------------------------------------------------------------

    def get(self, collection: str, rkey: str) -> StoredRecord | None:
        with self._lock:
            entry = self._records.get(collection, {}).get(rkey)
            if entry is None:
                return None
            return StoredRecord(collection, rkey, str(entry.cid), copy.deepcopy(entry.value))

    def list_records(
        self, collection: str, *, limit: int, cursor: str | None = None, reverse: bool = False
    ) -> list[StoredRecord]:
        """Records in rkey order, descending unless ``reverse`` (as the reference PDS),
        starting after ``cursor`` (an rkey)."""
        with self._lock:
            entries = self._records.get(collection, {})
            rkeys = sorted(entries, reverse=not reverse)
            if cursor is not None:
                rkeys = [k for k in rkeys if (k > cursor if reverse else k < cursor)]
            return [
                StoredRecord(collection, k, str(entries[k].cid), copy.deepcopy(entries[k].value))
                for k in rkeys[:limit]
            ]

    def collections(self) -> list[str]:
        with self._lock:
            return sorted(self._records)

    def count(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._records.values())

    # --- commit and export ------------------------------------------------------------

    def commit(self) -> Commit:
        """The signed commit ``{did, version: 3, data, rev, prev: null, sig}`` of the
        current state."""
        with self._lock:
            if self._commit is None or self._commit.rev != self._rev:
                tree = mst.build(
                    (f"{collection}/{rkey}", entry.cid)
                    for collection, entries in self._records.items()
                    for rkey, entry in entries.items()
                )
                unsigned = {
                    "did": self.did,
                    "version": 3,
                    "data": tree.root,
                    "rev": self._rev,
                    "prev": None,
                }
                signed = dict(unsigned, sig=self.key.sign(encode(unsigned)))
                block = encode(signed)
                self._commit = Commit(Cid.for_dag_cbor(block), self._rev, tree.root, block, tree)
            return self._commit

    def blocks(self) -> dict[Cid, bytes]:
        """Every block of the current state: the commit, the tree nodes, the records."""
        with self._lock:
            commit = self.commit()
            blocks = {commit.cid: commit.block}
            blocks.update(commit.tree.blocks)
            for collection in sorted(self._records):
                entries = self._records[collection]
                for rkey in sorted(entries):
                    blocks[entries[rkey].cid] = entries[rkey].block
            return blocks

    def export_car(self) -> bytes:
        with self._lock:
            commit = self.commit()
            return write_car([commit.cid], self.blocks().items())
