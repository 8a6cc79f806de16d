"""One account's repository: records by collection and record key, signed commits over a
Merkle Search Tree, and the CAR export ``com.atproto.sync.getRepo`` serves.

Every write is a signed commit: the tree is changed one key at a time (``mst_edit``),
and the commit goes to the repo's ``events`` (the PDS's firehose) with its CAR slice:
the commit block, the new record block, and the tree nodes a reader needs to check the
operation against the new tree and undo it back to ``prevData``."""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

from appview.devnet.keys import SigningKey
from appview.devnet.sink import CommitOp, FirehoseSink, RepoCommit, RepoEvents, RepoOpEvent
from appview.devnet.tid import TidClock
from appview.repos.car import write_car
from appview.repos.cbor import CborError, Cid, decode_links_raw, encode, encode_json
from appview.repos.mst_edit import Tree

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


@dataclass(slots=True)
class _Entry:
    cid: Cid
    block: bytes
    value: dict[str, Any]


class Repo:
    """Records plus the signed commit over them. Every write takes a new rev from the TID
    clock, changes the tree, signs a commit, and is reported to the sink (Jetstream) and
    to ``events`` (the firehose)."""

    def __init__(self, did: str, key: SigningKey, tids: TidClock, sink: FirehoseSink,
                 events: RepoEvents | None = None) -> None:
        self.did = did
        self.key = key
        self._tids = tids
        self._sink = sink
        self._events = events
        self._records: dict[str, dict[str, _Entry]] = {}
        self._lock = threading.RLock()
        # every tree node block made: the loader of the tree and of the proofs
        self._nodes: dict[Cid, bytes] = {}
        self._tree = Tree(None, self._nodes.get)
        self._rev = tids.next()
        self._commit = self._sign(self._tree.root(self._nodes))

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
            entry = self._records.get(collection, {}).pop(rkey, None)
            if entry is None:
                return None
            if not self._records[collection]:
                del self._records[collection]
            op = CommitOp("delete", collection, rkey, None, None)
            return self._committed(op, RepoOpEvent("delete", f"{collection}/{rkey}", None,
                                                   entry.cid), None)

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
        entries = self._records.setdefault(collection, {})
        before = entries.get(rkey)
        entries[rkey] = _Entry(cid, block, value)
        op = CommitOp(operation, collection, rkey, copy.deepcopy(value), str(cid))
        return self._committed(op, RepoOpEvent(operation, f"{collection}/{rkey}", cid,
                                               None if before is None else before.cid),
                               (cid, block))

    def _committed(self, op: CommitOp, event: RepoOpEvent,
                   record: tuple[Cid, bytes] | None) -> Write:
        since = self._rev
        prev_data = self._commit.data
        if event.cid is None:
            self._tree.remove(event.path)
        else:
            self._tree.insert(event.path, event.cid)
        self._rev = self._tids.next()
        self._commit = self._sign(self._tree.root(self._nodes))
        self._sink.commit(self.did, self._rev, [op])
        if self._events is not None:
            blocks = {self._commit.cid: self._commit.block}
            if record is not None:
                blocks[record[0]] = record[1]
            blocks.update(self._proof(event, prev_data))
            self._events.repo_commit(RepoCommit(
                self.did, self._rev, since, self._commit.cid, prev_data,
                write_car([self._commit.cid], blocks.items()), (event,)))
        return Write(f"at://{self.did}/{op.collection}/{op.rkey}", self._rev, op)

    def _proof(self, event: RepoOpEvent, prev_data: Cid) -> dict[Cid, bytes]:
        """The tree nodes a reader opens to find the operation in the new tree and undo
        it back to ``prev_data``: exactly those, found by doing the reader's work here."""
        reader = Tree(self._commit.data, self._nodes.get)
        reader.get(event.path)
        if event.prev is None:
            reader.remove(event.path)
        else:
            reader.insert(event.path, event.prev)
        undone = reader.root()
        assert undone == prev_data, "the devnet's own commit does not undo to its prevData"
        return {cid: self._nodes[cid] for cid in reader.read}

    def _sign(self, data: Cid) -> Commit:
        unsigned = {"did": self.did, "version": 3, "data": data, "rev": self._rev,
                    "prev": None}
        block = encode(dict(unsigned, sig=self.key.sign(encode(unsigned))))
        return Commit(Cid.for_dag_cbor(block), self._rev, data, block)

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
            return self._commit

    def blocks(self) -> dict[Cid, bytes]:
        """Every block of the current state: the commit, the tree nodes, the records."""
        with self._lock:
            commit = self._commit
            blocks = {commit.cid: commit.block}
            pending = [commit.data]
            while pending:
                cid = pending.pop()
                node = self._nodes[cid]
                blocks[cid] = node
                decoded = decode_links_raw(node)
                links = [decoded.get("l")] + [e.get("t") for e in decoded["e"]]
                pending.extend(Cid.coerce(link) for link in links if link is not None)
            for collection in sorted(self._records):
                entries = self._records[collection]
                for rkey in sorted(entries):
                    blocks[entries[rkey].cid] = entries[rkey].block
            return blocks

    def export_car(self) -> bytes:
        with self._lock:
            commit = self.commit()
            return write_car([commit.cid], self.blocks().items())
