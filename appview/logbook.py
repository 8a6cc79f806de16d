"""The log for notebooks and scripts: open one read-only, iterate its events with
filters, project it (or a past moment of it) into an in-memory SQLite database.

    from appview.logbook import open_log

    with open_log("./prod") as log:                  # a DATA_DIR, an export, a URL
        for entry in log.events(collection="space.atbb.post", did="did:plc:…"):
            print(entry.position, entry.type, entry.uri, entry.observed)
        with log.project(at="2026-12-01T14:05Z") as forum:
            print(forum.query("SELECT title, reply_count FROM posts WHERE root_uri IS NULL"))

``docs/replay.md`` has the worked examples (run as tests, tests/test_logbook.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from events.codec import topic_of
from events.export import ExportError, parse_header, parse_line
from events.log import EventLog
from events.model import LogEvent, Logged, RecordEvent
from events.moments import from_micros, parse_moment, position_at, to_micros
from events.store import open_event_log
from projections.forum import AppviewProjection, all_projections
from projections.queries import Queries
from projections.readmodel import ReadModelStore, open_memory_read_models

BATCH = 2_000
EVENT_TYPES = ("RecordCreated", "RecordUpdated", "RecordDeleted", "IdentityChanged",
               "AccountStatusChanged", "CommitRejected")

Moment = datetime | str | int  # a datetime, an ISO 8601 text, or unix microseconds


@dataclass(frozen=True, slots=True)
class Entry:
    """One event of the log: its position, its type (``RecordCreated``, ``RecordUpdated``,
    ``RecordDeleted``, ``IdentityChanged``, ``AccountStatusChanged``, ``CommitRejected``)
    and the typed event itself (``events.model``)."""

    position: int
    type: str
    event: LogEvent

    @property
    def did(self) -> str:
        return self.event.did

    @property
    def uri(self) -> str | None:
        """The record's at-uri (None for identity and account events)."""
        return getattr(self.event, "uri", None)

    @property
    def collection(self) -> str | None:
        return getattr(self.event, "collection", None)

    @property
    def record(self) -> dict[str, Any] | None:
        return self.event.record if isinstance(self.event, RecordEvent) else None

    @property
    def observed(self) -> datetime:
        """When the appview observed it (UTC)."""
        return from_micros(self.event.observed_at)


def micros_of(moment: Moment) -> int:
    if isinstance(moment, datetime):
        return to_micros(moment)
    if isinstance(moment, str):
        return parse_moment(moment)
    return moment


class Projected:
    """Read models projected in memory: SQL over their tables (``query``), the
    appview's own read queries (``queries``, as the pages use them)."""

    def __init__(self, store: ReadModelStore, forum_did: str, position: int) -> None:
        self.store = store
        self.queries = Queries(store, forum_did)
        self.position = position  # the last log position applied

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT (SQLite's dialect, ``?`` placeholders) as dicts."""
        with self.store.read() as session:
            return session.query_dicts(sql, params)

    def row_counts(self) -> dict[str, int]:
        return self.store.row_counts()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Projected:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class LogBook:
    """A log opened read-only: it has no method that writes, and opening it made
    nothing. Iterate it (``events``), look a record up (``history``), project it."""

    def __init__(self, read: _Source, forum_did: str) -> None:
        self._source = read
        self.forum_did = forum_did

    def head(self) -> int:
        return self._source.head()

    def logged(self, *, after: int = 0, until: int | None = None) -> Iterator[Logged]:
        """Every event after ``after`` up to position ``until``, as the log stores them."""
        return self._source.iter_from(after, until)

    def events(self, *, collection: str | Collection[str] | None = None,
               did: str | Collection[str] | None = None,
               types: str | Collection[str] | None = None,
               since: Moment | None = None, until: Moment | None = None,
               after: int = 0, upto: int | None = None,
               limit: int | None = None) -> Iterator[Entry]:
        """The log's events in order, those matching every filter given: collection(s)
        (events without one, identity and account changes, never match), DID(s),
        type(s) (``EVENT_TYPES``), observed at or after ``since`` and at or before
        ``until`` (datetimes, ISO 8601 texts or unix microseconds), positions after
        ``after`` up to ``upto``; at most ``limit`` of them."""
        collections = _set_of(collection)
        dids = _set_of(did)
        kinds = _set_of(types)
        if kinds is not None and (unknown := kinds - set(EVENT_TYPES)):
            raise ValueError(f"unknown event types {sorted(unknown)}; "
                             f"they are {', '.join(EVENT_TYPES)}")
        low = None if since is None else micros_of(since)
        high = None if until is None else micros_of(until)

        def matching() -> Iterator[Entry]:
            for logged in self._source.iter_from(after, upto):
                event = logged.event
                if collections is not None and getattr(event, "collection",
                                                       None) not in collections:
                    continue
                if dids is not None and event.did not in dids:
                    continue
                if low is not None and event.observed_at < low:
                    continue
                if high is not None and event.observed_at > high:
                    continue
                kind = topic_of(event).removeprefix("atbb.")
                if kinds is not None and kind not in kinds:
                    continue
                yield Entry(logged.position, kind, event)

        return matching() if limit is None else islice(matching(), limit)

    def history(self, uri: str) -> list[Entry]:
        """Every stored event of one record (at-uri), in log order."""
        return [entry for entry in self.events() if entry.uri == uri]

    def position_at(self, moment: Moment) -> int:
        """The position the log had reached at ``moment`` (``events.moments``)."""
        return position_at(self._source.iter_from(0, None), micros_of(moment))

    def project(self, *, upto: int | None = None, at: Moment | None = None,
                forum_did: str | None = None,
                projections: Iterable[AppviewProjection] | None = None) -> Projected:
        """Project the log (up to position ``upto``, or as it stood at moment ``at``)
        into fresh read models in an in-memory SQLite database; ``projections``: your
        own (a changed projection under test), else the appview's."""
        if upto is not None and at is not None:
            raise ValueError("give upto or at, not both")
        if at is not None:
            upto = self.position_at(at)
        did = self.forum_did if forum_did is None else forum_did
        store = open_memory_read_models()
        chosen = list(all_projections(did) if projections is None else projections)
        try:
            for projection in chosen:
                projection.attach(store)
            position = 0
            batch: list[Logged] = []
            for logged in self._source.iter_from(0, upto):
                batch.append(logged)
                if len(batch) >= BATCH:
                    _apply(chosen, batch)
                    position = batch[-1].position
                    batch = []
            if batch:
                _apply(chosen, batch)
                position = batch[-1].position
        except BaseException:
            store.close()
            raise
        return Projected(store, did, position)

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> LogBook:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def _apply(projections: Sequence[AppviewProjection], batch: list[Logged]) -> None:
    for projection in projections:
        projection.apply(batch)


def _set_of(value: str | Collection[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


class _Source(Protocol):
    """What the book reads: a stored log (SQLite, PostgreSQL) or an export file."""

    def head(self) -> int: ...

    def iter_from(self, after: int, until: int | None) -> Iterator[Logged]: ...

    def close(self) -> None:
        """Nothing to close unless a stored log is open."""
        return None


class _StoredLog(_Source):
    def __init__(self, log: EventLog, *, owned: bool = True) -> None:
        self._log = log
        self._owned = owned

    def head(self) -> int:
        return self._log.head()

    def iter_from(self, after: int, until: int | None) -> Iterator[Logged]:
        return self._log.iter_from(after, until)

    def close(self) -> None:
        if self._owned:
            self._log.close()


class _ExportFile(_Source):
    """An `atbb events export` file (or a pulled answer), read anew for each pass."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def head(self) -> int:
        return max((logged.position for logged in self.iter_from(0, None)), default=0)

    def iter_from(self, after: int, until: int | None) -> Iterator[Logged]:
        with self._path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip() or (number == 1 and parse_header(line) is not None):
                    continue
                try:
                    logged = parse_line(line)
                except ExportError as exc:
                    raise ValueError(f"{self._path}:{number}: {exc}") from None
                if logged.position <= after:
                    continue
                if until is not None and logged.position > until:
                    return
                yield logged

    def forum_did(self) -> str:
        with self._path.open(encoding="utf-8") as lines:
            first = next(lines, "")
        try:
            header = parse_header(first) if first.strip() else None
        except ExportError:
            return ""
        return "" if header is None else header.forum_did


def reading(log: EventLog, *, forum_did: str = "") -> LogBook:
    """A book over a log opened elsewhere (the appview's own): closing the book leaves
    the log open."""
    return LogBook(_StoredLog(log, owned=False), forum_did)


def open_log(where: str | Path, *, schema: str | None = None,
             forum_did: str = "") -> LogBook:
    """Open a log read-only: a DATA_DIR (its ``events.sqlite3``), a SQLite file, an
    export file (JSON lines), or a ``sqlite:///`` or ``postgresql://`` URL (with the
    event log's ``schema``). The forum DID (which decides what forum-owned records
    count) comes from an export's header, else give it. FileNotFoundError when there is
    no log there; nothing is ever created."""
    text = str(where)
    if text.startswith(("postgresql:", "postgres:", "sqlite:")):
        return LogBook(_StoredLog(open_event_log(text, schema=schema, create=False)),
                       forum_did)
    path = Path(where)
    if path.is_dir():
        path = path / "events.sqlite3"
    if not path.exists():
        raise FileNotFoundError(f"no event log at {path}")
    with path.open("rb") as probe:
        is_sqlite = probe.read(16) == b"SQLite format 3\x00"
    if is_sqlite:
        return LogBook(_StoredLog(open_event_log(f"sqlite:///{path}", create=False)),
                       forum_did)
    export = _ExportFile(path)
    return LogBook(export, forum_did or export.forum_did())
