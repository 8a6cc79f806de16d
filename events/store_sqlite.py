"""The event log on SQLite: ``eventsourcing``'s SQLite application recorder, subclassed.

The notification id stays the table's ``rowid``, as in the library: SQLite has one writer
at a time, so positions are handed out in commit order and a reader never passes a gap
that fills later. Writes start with ``BEGIN IMMEDIATE`` because the append reads (the
head) before it writes; a deferred transaction that upgrades to a write lock fails at once
with SQLITE_BUSY instead of waiting out the busy timeout.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.persistence import (
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)

from events.log import AppendResult, CursorState, CursorUpdate, RecordHead
from events.model import Logged
from events.store import (
    COLUMNS,
    CURSOR_TABLE,
    EVENTS_TABLE,
    IDENTITY_TABLE,
    BatchPlan,
    RecorderEventLog,
    decode_rows,
    new_identity,
    newest_by_uri,
    now_us,
)

BUSY_TIMEOUT_SECONDS = 15
# A batch of 2,000 events is 3 to 4 MB of pages: with the default checkpoint every 1,000
# pages (4 MB) nearly every append paid for a checkpoint and its fsync. Every 10,000
# pages (40 MB of WAL) they are rarer and write each index page back once more often
# than not: +15 to +25 % appends/s (docs/performance.md, fifth session). The WAL file is
# cut back to JOURNAL_SIZE_LIMIT_BYTES after a checkpoint, so it does not stay at its
# peak.
WAL_AUTOCHECKPOINT_PAGES = 10_000
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# The (did, collection) index and the newest-rev lookups touch pages all over the table;
# a 32 MB cache (the default is 2 MB) keeps them: another +5 to +15 %.
CACHE_SIZE_KIB = 32 * 1024
POOL_TIMEOUT_SECONDS = 30.0


class TunedSQLiteConnectionPool(SQLiteConnectionPool):
    """The library's pool, with the log's per-connection settings.

    ``synchronous=NORMAL`` in WAL mode never corrupts the database; a power loss may drop
    the last commits, which the ingest cursor (written in the same transactions, so lost
    with them) makes Jetstream re-deliver. Checkpoint and cache sizes: see above."""

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        cursor = conn.cursor()
        try:
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
            cursor.execute(f"PRAGMA cache_size=-{CACHE_SIZE_KIB}")
        finally:
            cursor.sqlite_cursor.close()
        return conn


class LogSQLiteDatastore(SQLiteDatastore):
    def __init__(self, db_name: str) -> None:
        super().__init__(
            db_name,
            lock_timeout=BUSY_TIMEOUT_SECONDS,
            pool_timeout=POOL_TIMEOUT_SECONDS,
            originator_id_type="text",
        )
        # Replaces the pool the base class built; that one never opened a connection.
        self.pool = TunedSQLiteConnectionPool(
            db_name=db_name,
            lock_timeout=BUSY_TIMEOUT_SECONDS,
            pool_timeout=POOL_TIMEOUT_SECONDS,
        )


def _persistence_error(exc: BaseException) -> PersistenceError:
    """The library's exception for a failure inside our own transaction, as
    ``SQLiteTransaction`` would raise it, so both adapters fail alike."""
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        return OperationalError(str(exc))
    if isinstance(exc, sqlite3.DataError | OverflowError):
        return DataError(str(exc))
    return DatabaseError(str(exc))


class LogSQLiteRecorder(SQLiteApplicationRecorder):
    """The library's application recorder with our columns, indexes and cursor table."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore, events_table_name=EVENTS_TABLE)
        t = self.events_table_name
        # The stock insert path keeps its semantics (a duplicate raises); our columns stay
        # NULL for whatever is written that way.
        self.insert_events_statement = (
            f"INSERT INTO {t} (originator_id, originator_version, topic, state) VALUES (?,?,?,?)"
        )
        self.insert_rows_statement = (
            f"INSERT INTO {t} ({','.join(COLUMNS)}) "
            f"VALUES ({','.join('?' * len(COLUMNS))}) ON CONFLICT DO NOTHING"
        )
        self.upsert_cursor_statement = (
            f"INSERT INTO {CURSOR_TABLE} (source, value, updated_at) VALUES (?,?,?) "
            "ON CONFLICT (source) DO UPDATE SET "
            "value = MAX(value, excluded.value), updated_at = excluded.updated_at"
        )

    def construct_create_table_statements(self) -> list[str]:
        t = self.events_table_name
        return [
            f"CREATE TABLE IF NOT EXISTS {t} ("
            "originator_id TEXT, "
            "originator_version INTEGER, "
            "topic TEXT, "
            "state BLOB, "
            "did TEXT, "
            "collection TEXT, "
            "rkey TEXT, "
            "rev TEXT, "
            "cid TEXT, "
            "kind TEXT, "
            "valid INTEGER, "
            "source TEXT, "
            "source_cursor INTEGER, "
            "observed_at INTEGER, "
            "PRIMARY KEY (originator_id, originator_version))",
            f"CREATE INDEX IF NOT EXISTS {t}_did_idx ON {t} (did, collection)",
            f"CREATE TABLE IF NOT EXISTS {CURSOR_TABLE} ("
            "source TEXT PRIMARY KEY, "
            "value INTEGER NOT NULL, "
            "updated_at INTEGER NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} ("
            "id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL)",
        ]

    def ensure_identity(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"INSERT INTO {IDENTITY_TABLE} (id, value) VALUES (1, ?)"
                      " ON CONFLICT (id) DO NOTHING", (new_identity(),))

    def select_identity(self) -> str:
        return str(self._select(f"SELECT value FROM {IDENTITY_TABLE} WHERE id = 1")[0][0])

    def append_plan(self, plan: BatchPlan, cursor: CursorUpdate | None) -> AppendResult:
        """Insert the planned rows and upsert the cursor in one transaction."""
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor().sqlite_cursor
            try:
                c.execute("BEGIN IMMEDIATE")
                result = self._append_in_transaction(c, plan, cursor)
                conn.commit()
            except (sqlite3.Error, OverflowError) as exc:
                conn.rollback()
                raise _persistence_error(exc) from exc
            except BaseException:
                conn.rollback()
                raise
            finally:
                c.close()
        return result

    def _append_in_transaction(
        self, c: sqlite3.Cursor, plan: BatchPlan, cursor: CursorUpdate | None
    ) -> AppendResult:
        stored: list[tuple[int, str, int]] = []
        if plan.rows:
            c.execute(self.select_max_notification_id_statement)
            before = c.fetchone()[0] or 0
            c.executemany(self.insert_rows_statement, plan.rows)
            # Our transaction is the only writer, and rowids are allocated as max + 1,
            # so every row above the old maximum is one of ours.
            c.execute(
                f"SELECT rowid, originator_id, originator_version FROM "
                f"{self.events_table_name} WHERE rowid > ? ORDER BY rowid",
                (before,),
            )
            stored = c.fetchall()
        if cursor is not None:
            c.execute(self.upsert_cursor_statement, (cursor.source, cursor.value, now_us()))
        return plan.finish(stored)

    def _select(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            rows: list[Any] = c.fetchall()
            return rows

    def select_logged(self, after: int, limit: int, until: int | None) -> list[Logged]:
        t = self.events_table_name
        if until is None:
            rows = self._select(
                f"SELECT rowid, topic, state FROM {t} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (after, limit),
            )
        else:
            rows = self._select(
                f"SELECT rowid, topic, state FROM {t} WHERE rowid > ? AND rowid <= ? "
                "ORDER BY rowid LIMIT ?",
                (after, until, limit),
            )
        return decode_rows(rows)

    def head(self) -> int:
        return int(self.max_notification_id() or 0)

    def count(self) -> int:
        return int(self._select(f"SELECT COUNT(*) FROM {self.events_table_name}")[0][0])

    def select_cursor(self, source: str) -> CursorState | None:
        rows = self._select(
            f"SELECT value, updated_at FROM {CURSOR_TABLE} WHERE source = ?", (source,)
        )
        if not rows:
            return None
        return CursorState(source=source, value=rows[0][0], updated_at=rows[0][1])

    def select_history(self, uri: str) -> list[Logged]:
        return decode_rows(
            self._select(
                f"SELECT rowid, topic, state FROM {self.events_table_name} "
                "WHERE originator_id = ? ORDER BY originator_version, rowid",
                (uri,),
            )
        )

    def select_repo_heads(self, did: str) -> dict[str, RecordHead]:
        # SQLite takes the bare columns of a MAX() aggregate from the row holding the max.
        rows = self._select(
            f"SELECT originator_id, rev, cid, kind, MAX(originator_version) "
            f"FROM {self.events_table_name} "
            "WHERE did = ? AND collection IS NOT NULL GROUP BY originator_id",
            (did,),
        )
        return newest_by_uri(row[:4] for row in rows)

    def select_known_dids(self) -> list[str]:
        rows = self._select(
            f"SELECT DISTINCT did FROM {self.events_table_name} "
            "WHERE collection IS NOT NULL ORDER BY did"
        )
        return [row[0] for row in rows]


class SqliteEventLog(RecorderEventLog):
    """The embedded event log: one SQLite file in WAL mode."""


def sqlite_db_name(url: str, *, create: bool) -> str:
    """The database name the library connects to for a ``sqlite:///<path>`` URL."""
    path = url.removeprefix("sqlite:///")
    if path == url or not path:
        raise ValueError(f"expected sqlite:///<path>, got {url!r}")
    if path == ":memory:":
        # A private in-memory database every pooled connection shares.
        return f"file:atbb-events-{uuid.uuid4().hex}?mode=memory&cache=shared"
    file = Path(path)
    if create:
        file.parent.mkdir(parents=True, exist_ok=True)
    elif not file.exists():
        raise FileNotFoundError(f"no event log at {file} (and create=False)")
    return str(file)


def open_sqlite_event_log(url: str, *, create: bool = True) -> SqliteEventLog:
    datastore = LogSQLiteDatastore(sqlite_db_name(url, create=create))
    try:
        recorder = LogSQLiteRecorder(datastore)
        if create:
            recorder.create_table()
            recorder.ensure_identity()
    except BaseException:
        datastore.close()
        raise
    return SqliteEventLog(recorder, datastore)
