"""The event log port: what ingest, backfill, projections and the CLI need of the store.

Two adapters implement it (``events.store``): SQLite (the embedded default) and
PostgreSQL. Both sit on the ``eventsourcing`` library's application recorders, specialised
by subclassing (see ``docs/adr/0002-event-store-recorders.md``). A contract suite in
``tests/test_store.py`` runs against both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from events.model import LogEvent, Logged


@dataclass(frozen=True, slots=True)
class CursorUpdate:
    """An ingest source's position, written in the same transaction as the events it
    covers. ``value`` is the source's cursor (Jetstream ``time_us``). The stored cursor
    never moves backwards: a rewind re-delivers, the stored value keeps its maximum."""

    source: str
    value: int


@dataclass(frozen=True, slots=True)
class CursorState:
    source: str
    value: int
    updated_at: int  # unix microseconds of the write


@dataclass(slots=True)
class AppendResult:
    """What one batched append did: each event given is exactly one of these.

    ``appended`` events were stored; ``duplicates`` were already in the log (same
    originator and version: a re-delivery), or earlier in the same batch;
    ``dropped`` were not ``space.atbb.*`` records (never stored). ``positions`` are the
    log positions given to the appended events, in order; ``duplicate_indexes`` the
    places, in the sequence given, of the duplicates. There is no "stale": a record's
    version older than one the log holds is still a version that existed, and is stored
    (ADR 0011).
    """

    appended: int = 0
    duplicates: int = 0
    dropped: int = 0
    positions: list[int] = field(default_factory=list)
    duplicate_indexes: list[int] = field(default_factory=list)
    # the appended events by their source (jetstream, firehose, backfill, local)
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """How many events the append was given."""
        return self.appended + self.duplicates + self.dropped

    def merge(self, other: AppendResult) -> None:
        """Add ``other``, the result of appending the events that followed this one's:
        its duplicates' indexes are shifted to count from this one's first event."""
        offset = self.events
        self.appended += other.appended
        self.duplicates += other.duplicates
        self.dropped += other.dropped
        self.positions.extend(other.positions)
        self.duplicate_indexes.extend(offset + index for index in other.duplicate_indexes)
        for source, count in other.by_source.items():
            self.by_source[source] = self.by_source.get(source, 0) + count


@dataclass(frozen=True, slots=True)
class RecordHead:
    """The newest state of one record the log holds (for backfill's comparison)."""

    uri: str
    rev: str
    cid: str | None
    deleted: bool


class EventLog(Protocol):
    """The append-only log of everything observed. Thread-safe; blocking (call it from a
    worker thread under asyncio)."""

    def append(
        self, events: Sequence[LogEvent], cursor: CursorUpdate | None = None
    ) -> AppendResult:
        """Append a batch in one transaction, with the cursor (if any) in the same one.
        Duplicates are skipped, never an error; every other ``space.atbb.*`` record
        version is stored, whatever the versions already held."""
        ...

    def read(self, after: int, limit: int, until: int | None = None) -> list[Logged]:
        """Up to ``limit`` events with position > ``after`` (and <= ``until``), in order."""
        ...

    def iter_from(
        self, after: int = 0, until: int | None = None, page: int = 2000
    ) -> Iterator[Logged]:
        """Every event after ``after`` (up to ``until``), read in pages."""
        ...

    def head(self) -> int:
        """The highest position in the log, 0 when empty."""
        ...

    def count(self) -> int:
        """How many events the log holds."""
        ...

    def cursor(self, source: str) -> CursorState | None: ...

    def identity(self) -> str:
        """This log's identity, made once with the log and never changed: read models
        name the log they were built from by it, so read models from another log (a
        folder copied between appviews, a restored database) are never taken for ours.
        A copy of the log (a backup) keeps it; an exported and imported one is a new
        log and gets its own."""
        ...

    def history(self, uri: str) -> list[Logged]:
        """Every stored event of one record (at-uri), oldest rev first."""
        ...

    def repo_heads(self, did: str) -> dict[str, RecordHead]:
        """The newest state of every record of a repo the log holds, by at-uri."""
        ...

    def known_dids(self) -> list[str]:
        """Every DID that wrote a record the log holds."""
        ...

    def close(self) -> None: ...
