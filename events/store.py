"""The event log on ``eventsourcing``'s application recorders: what both adapters share.

``open_event_log`` picks the adapter from the URL (``events.store_sqlite``,
``events.store_postgres``). Both store rows with the library's columns plus indexed,
queryable ones (did, collection, rkey, rev, cid, kind, valid, source, source_cursor,
observed_at). An append is planned here, in memory, before the database is touched:
encode, drop what is not ``space.atbb.*``, drop in-batch duplicates; the adapter's insert
skips what the log already holds (the primary key) and says which rows it stored. Every
other version of a record is stored, older than the newest held or not (ADR 0011). See
``docs/adr/0002-event-store-recorders.md``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeAlias
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from events.codec import CodecError, decode, encode
from events.log import AppendResult, CursorState, CursorUpdate, EventLog, RecordHead
from events.model import (
    CommitRejected,
    IdentityChanged,
    LogEvent,
    Logged,
    RecordEvent,
    is_atbb_collection,
)
from events.pools import PoolUse, pool_use

EVENTS_TABLE = "stored_events"
CURSOR_TABLE = "ingest_cursors"
IDENTITY_TABLE = "log_identity"

# The stored columns in insert order: the library's four, then ours.
COLUMNS: tuple[str, ...] = (
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "did",
    "collection",
    "rkey",
    "rev",
    "cid",
    "kind",
    "valid",
    "source",
    "source_cursor",
    "observed_at",
)
KIND_IDENTITY = "identity"
KIND_ACCOUNT = "account"
# A refused firehose commit's operation: no record columns (it is not a revision of the
# record, so the per-record order of revisions never sees it), stored as invalid.
KIND_REJECTED = "rejected"
KIND_DELETE = "delete"

# One row per event, ordered as COLUMNS.
Row: TypeAlias = tuple[
    str,
    int,
    str,
    bytes,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str,
    bool | None,
    str,
    int | None,
    int,
]
_ORIGINATOR: Final = 0
_VERSION: Final = 1
_SOURCE: Final = COLUMNS.index("source")


def row_of(event: LogEvent) -> Row:
    """The stored row of ``event``; raises :class:`CodecError` if it cannot be stored."""
    stored = encode(event)
    oid = str(stored.originator_id)
    if isinstance(event, RecordEvent):
        return (
            oid,
            stored.originator_version,
            stored.topic,
            stored.state,
            event.did,
            event.collection,
            event.rkey,
            event.rev,
            event.cid,
            event.operation,
            event.valid,
            event.source,
            event.source_cursor,
            event.observed_at,
        )
    if isinstance(event, CommitRejected):
        return (oid, stored.originator_version, stored.topic, stored.state, event.did, None,
                None, None, None, KIND_REJECTED, False, event.source, event.source_cursor,
                event.observed_at)
    kind = KIND_IDENTITY if isinstance(event, IdentityChanged) else KIND_ACCOUNT
    return (
        oid,
        stored.originator_version,
        stored.topic,
        stored.state,
        event.did,
        None,
        None,
        None,
        None,
        kind,
        None,
        event.source,
        event.source_cursor,
        event.observed_at,
    )


@dataclass(slots=True)
class BatchPlan:
    """A batch after the in-memory checks, before the database's.

    ``rows`` are the candidates in batch order, ``indexes`` the place of each in the
    batch given. ``result`` already counts what was dropped or duplicated within the
    batch.
    """

    rows: list[Row] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    result: AppendResult = field(default_factory=AppendResult)

    def finish(self, stored: Sequence[tuple[int, str, int]]) -> AppendResult:
        """Account for an insert that stored ``stored`` (position, originator id,
        version) of the candidates: the others were already in the log."""
        result = self.result
        result.appended = len(stored)
        result.positions = sorted(position for position, _, _ in stored)
        appended = self.rows
        if len(stored) < len(self.rows):
            kept = {(oid, version) for _, oid, version in stored}
            already = [index for row, index in zip(self.rows, self.indexes, strict=True)
                       if (row[_ORIGINATOR], row[_VERSION]) not in kept]
            result.duplicates += len(already)
            result.duplicate_indexes = sorted([*result.duplicate_indexes, *already])
            appended = [row for row in self.rows if (row[_ORIGINATOR], row[_VERSION]) in kept]
        by_source = result.by_source
        for row in appended:
            source = str(row[_SOURCE])
            by_source[source] = by_source.get(source, 0) + 1
        return result


def plan_batch(events: Sequence[LogEvent]) -> BatchPlan:
    """Encode a batch and drop what never reaches the database: records outside
    ``space.atbb.*`` and repeats of an (originator, version) already in the batch (the
    first one wins). Raises :class:`CodecError` before anything is written."""
    plan = BatchPlan()
    rows = plan.rows
    indexes = plan.indexes
    repeated = plan.result.duplicate_indexes
    seen: set[tuple[str, int]] = set()
    dropped = 0
    for index, event in enumerate(events):
        if isinstance(event, RecordEvent) and not is_atbb_collection(event.collection):
            dropped += 1
            continue
        row = row_of(event)
        key = (row[_ORIGINATOR], row[_VERSION])
        if key in seen:
            repeated.append(index)
            continue
        seen.add(key)
        rows.append(row)
        indexes.append(index)
    plan.result.dropped = dropped
    plan.result.duplicates = len(repeated)
    return plan


def new_identity() -> str:
    return uuid.uuid4().hex


def now_us() -> int:
    return time.time_ns() // 1000


def decode_rows(rows: Iterable[Any]) -> list[Logged]:
    """``(position, topic, state)`` rows as :class:`Logged` events."""
    logged: list[Logged] = []
    append = logged.append
    for position, topic, state in rows:
        try:
            append(Logged(position, decode(topic, bytes(state))))
        except CodecError as exc:
            raise CodecError(f"log position {position}: {exc}") from exc
    return logged


def head_of(uri: str, rev: str, cid: str | None, kind: str) -> RecordHead:
    return RecordHead(uri=uri, rev=rev, cid=cid, deleted=kind == KIND_DELETE)


class LogRecorder(Protocol):
    """What the event log needs of its subclassed ``eventsourcing`` recorder (beside the
    library's own notification-log methods, kept intact)."""

    def append_plan(self, plan: BatchPlan, cursor: CursorUpdate | None) -> AppendResult:
        """Insert the planned rows and upsert the cursor in one transaction."""
        ...

    def select_logged(self, after: int, limit: int, until: int | None) -> list[Logged]: ...

    def head(self) -> int: ...

    def count(self) -> int: ...

    def select_cursor(self, source: str) -> CursorState | None: ...

    def ensure_identity(self) -> None:
        """Give the log its identity if it has none (a new log, or one made before
        logs had one)."""
        ...

    def select_identity(self) -> str: ...

    def select_history(self, uri: str) -> list[Logged]: ...

    def select_repo_heads(self, did: str) -> dict[str, RecordHead]: ...

    def select_known_dids(self) -> list[str]: ...

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]: ...

    def max_notification_id(self) -> int | None: ...

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]: ...

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None: ...


class Closable(Protocol):
    def close(self) -> None: ...


class RecorderEventLog:
    """An :class:`~events.log.EventLog` on a subclassed ``eventsourcing`` recorder.
    ``recorder`` is exposed: its notification log is this log (same positions)."""

    def __init__(self, recorder: LogRecorder, datastore: Closable) -> None:
        self.recorder = recorder
        self._datastore = datastore
        self._identity: str | None = None
        # what this process appended, by source, since the log was opened (metrics)
        self._appended: dict[str, int] = {}
        self._tally = threading.Lock()

    def append(
        self, events: Sequence[LogEvent], cursor: CursorUpdate | None = None
    ) -> AppendResult:
        plan = plan_batch(events)
        if not plan.rows and cursor is None:
            return plan.result
        result = self.recorder.append_plan(plan, cursor)
        with self._tally:
            for source, count in result.by_source.items():
                self._appended[source] = self._appended.get(source, 0) + count
        return result

    def pool_use(self) -> PoolUse | None:
        return pool_use(self.recorder)

    def appended_by_source(self) -> dict[str, int]:
        """Events this process appended since it opened the log, by source."""
        with self._tally:
            return dict(self._appended)

    def read(self, after: int, limit: int, until: int | None = None) -> list[Logged]:
        return self.recorder.select_logged(after, limit, until)

    def iter_from(
        self, after: int = 0, until: int | None = None, page: int = 2000
    ) -> Iterator[Logged]:
        position = after
        while True:
            batch = self.read(position, page, until)
            yield from batch
            if len(batch) < page:
                return
            position = batch[-1].position

    def head(self) -> int:
        return self.recorder.head()

    def count(self) -> int:
        return self.recorder.count()

    def cursor(self, source: str) -> CursorState | None:
        return self.recorder.select_cursor(source)

    def identity(self) -> str:
        if self._identity is None:  # it never changes: read it once
            self._identity = self.recorder.select_identity()
        return self._identity

    def history(self, uri: str) -> list[Logged]:
        return self.recorder.select_history(uri)

    def repo_heads(self, did: str) -> dict[str, RecordHead]:
        return self.recorder.select_repo_heads(did)

    def known_dids(self) -> list[str]:
        return self.recorder.select_known_dids()

    def close(self) -> None:
        self._datastore.close()


def newest_by_uri(rows: Iterable[Any]) -> dict[str, RecordHead]:
    """``(uri, rev, cid, kind)`` rows, one per at-uri, as heads."""
    return {uri: head_of(uri, rev, cid, kind) for uri, rev, cid, kind in rows}


def open_event_log(url: str, *, schema: str | None = None, create: bool = True) -> EventLog:
    """The event log at ``url``: ``sqlite:///<path>`` (parent directories are created) or
    ``postgresql://user@host:port/db`` (always TCP; ``schema`` defaults to ``public``).
    ``create`` makes the tables, indexes and (on PostgreSQL) the schema if missing."""
    # Imported here so that a SQLite deployment never loads psycopg and its pool.
    if url.startswith("sqlite:"):
        from events.store_sqlite import open_sqlite_event_log

        if schema not in (None, ""):
            raise ValueError(f"a schema ({schema!r}) means nothing to SQLite; drop it")
        return open_sqlite_event_log(url, create=create)
    if url.startswith(("postgresql:", "postgres:")):
        from events.store_postgres import open_postgres_event_log

        return open_postgres_event_log(url, schema=schema or "public", create=create)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ValueError(
        f"unsupported event log URL scheme {scheme!r}: use sqlite:///<path> or "
        "postgresql://user@host:port/db"
    )
