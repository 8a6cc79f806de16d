"""Opening a read-model location: a SQLite file or a PostgreSQL schema.

Nothing assumes a fixed file or schema name: a rebuild opens a new location per
generation, builds it, and swaps readers to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Protocol

from psycopg.conninfo import conninfo_to_dict

from events.pools import PoolUse, pool_use
from projections import search_schema
from projections.db import (
    CACHE_SIZE_KIB,
    Dialect,
    PostgresReadModelDatastore,
    PostgresReadModelRecorder,
    ReadModelRecorder,
    Session,
    SQLiteReadModelDatastore,
    SQLiteReadModelRecorder,
    to_dialect,
)
from projections.load_end import (
    end_steps,
    pending_recounts,
    recount_steps,
    run_in_order,
    run_in_parallel,
)
from projections.schema import (
    BULK_RECOUNTS,
    READ_SIDE_INDEXES,
    RECOUNTED_KEYS,
    TABLES,
    all_statements,
    analyze_statement,
    drop_key_statement,
    index_name,
    load_dropped_index_statements,
)

_SQLITE_PREFIX = "sqlite:///"

SORT_HELPER_THREADS = 2
"""SQLite's ``PRAGMA threads`` at the end of a bulk load (0, its default, otherwise)."""

END_CACHE_KIB = 4096
"""SQLite's page cache at the end of a bulk load (``projections.db``'s 64 MB
otherwise). A sort's in-memory run is as large as the cache, and only a run that fills it
goes to a helper thread: with 4 MB runs the end's index builds and groupings sort in
parallel (measured at 1M events: the end 11.5 s → 9.0 s, the load's peak 316 → 228 MB);
the loads themselves, which insert at random into large B-trees, keep the large cache."""


class ReadModels(Protocol):
    """What projections write through and queries read through: one location
    (:class:`ReadModelStore`) or whichever generation is live
    (:class:`projections.generations.GenerationalReadModels`)."""

    @property
    def location(self) -> str: ...

    @property
    def dialect(self) -> Dialect: ...

    def sql(self, text: str) -> str: ...

    def transaction(self) -> AbstractContextManager[Session]: ...

    def read(self) -> AbstractContextManager[Session]: ...

    def track(self, session: Session, name: str, position: int) -> None: ...

    def position(self, name: str) -> int: ...

    def position_in(self, session: Session, name: str) -> int: ...

    def refresh_statistics(self, session: Session) -> None: ...

    def versions(self) -> dict[str, int]: ...

    def set_version(self, session: Session, name: str, version: int) -> None: ...

    def log_identity(self) -> str | None:
        """The identity of the event log these read models were built from; None
        before one was stamped."""
        ...

    def stamp_log(self, identity: str) -> None:
        """Name the event log these read models are built from; the first stamp stays."""
        ...

    def row_counts(self) -> dict[str, int]: ...

    def bulk_load(self, *, private: bool = False) -> AbstractContextManager[None]: ...

    @property
    def bulk_loading(self) -> bool:
        """True inside :meth:`bulk_load` (of this process)."""
        ...

    @property
    def loading_privately(self) -> bool:
        """True inside :meth:`bulk_load` with ``private`` (of this process)."""
        ...

    def defer_recount(self, session: Session, table: str, argument: str | None = None) -> None:
        """Leave ``table`` (one of ``BULK_RECOUNTS``) to the full recount at the end of
        the bulk load, instead of refreshing it in this batch; ``argument`` is bound to
        the recount's ``?``."""
        ...

    def recount_pending(self, session: Session) -> list[str]:
        """Recount in full every table a bulk load left pending; returns their names."""
        ...

    def change_mark(self) -> object:
        """A value that differs after every write transaction this process committed
        (what a reader's cache of derived state checks; other processes' writes do not
        move it)."""
        ...

    def close(self) -> None: ...


class ReadModelStore:
    """The read models of one location.

    ``transaction()`` is a write transaction (rows and tracking commit together or not at
    all); ``read()`` a read-only one in which every statement sees the same snapshot
    (one per request). Both yield a :class:`projections.db.Session` taking ``?`` SQL.
    """

    def __init__(self, recorder: ReadModelRecorder, location: str) -> None:
        self._recorder = recorder
        self.location = location
        self._writes = 0
        self._private_load = False

    @property
    def dialect(self) -> Dialect:
        return self._recorder.dialect

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` placeholders, in this dialect's form (a Session
        converts by itself; this is for code holding a raw driver cursor)."""
        return to_dialect(text, self.dialect)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._recorder.write() as session:
            yield session
        self._writes += 1

    def change_mark(self) -> object:
        return self._writes

    def pool_use(self) -> PoolUse | None:
        """How busy this location's connection pool is (metrics)."""
        return pool_use(self._recorder)

    def read(self) -> AbstractContextManager[Session]:
        return self._recorder.read()

    def track(self, session: Session, name: str, position: int) -> None:
        """Record ``name``'s position in ``session``'s transaction. Raises the library's
        IntegrityError (rolling the transaction back) if it does not advance."""
        self._recorder.track(session, name, position)

    def position(self, name: str) -> int:
        """The last log position ``name`` applied here; 0 when it never ran."""
        return self._recorder.max_tracking_id(name) or 0

    def position_in(self, session: Session, name: str) -> int:
        """``name``'s position as seen inside ``session``'s transaction."""
        value = session.scalar(
            f"SELECT notification_id FROM {self._recorder.tracking_table}"
            " WHERE application_name = ?",
            (name,),
        )
        return int(value or 0)

    def refresh_statistics(self, session: Session) -> None:
        """Refresh the planner's statistics. PostgreSQL plans a freshly filled table as if
        it were tiny (sequential scans, hash joins over the whole table) until it is
        analysed, and autovacuum comes too late for a rebuild; SQLite's planner needs no
        statistics for these indexed lookups."""
        if self.dialect == "postgresql":
            if self._recorder.bulk_loading:
                # the planner needs sizes, not fine histograms, while a replay fills the
                # tables: a tenth of the sample (measured: the five ANALYZEs of a
                # 191k-event replay took 4 s, a tenth of it); a full one follows the load
                session.execute("SET LOCAL default_statistics_target = 10")
            session.execute(analyze_statement(TABLES))

    def versions(self) -> dict[str, int]:
        """The version of each projection that built this location."""
        with self.read() as session:
            rows = session.query("SELECT name, version FROM projection_versions")
        return {str(name): int(version) for name, version in rows}

    def set_version(self, session: Session, name: str, version: int) -> None:
        """Record the version of ``name`` that built this location. The first one stays:
        newer code following an older generation must not relabel it, or a rebuild
        interrupted after the upgrade would never be retried."""
        session.execute(
            "INSERT INTO projection_versions (name, version) VALUES (?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, version),
        )

    def log_identity(self) -> str | None:
        with self.read() as session:
            value = session.scalar("SELECT log_identity FROM log_source WHERE id = 1")
        return None if value is None else str(value)

    def stamp_log(self, identity: str) -> None:
        with self.transaction() as session:
            session.execute("INSERT INTO log_source (id, log_identity) VALUES (1, ?)"
                            " ON CONFLICT (id) DO NOTHING", (identity,))

    def row_counts(self) -> dict[str, int]:
        """Rows per read-model table (for ``atbb status``)."""
        with self.read() as session:
            return {
                table: int(session.scalar(f"SELECT COUNT(*) FROM {table}") or 0)
                for table in TABLES
            }

    @property
    def bulk_loading(self) -> bool:
        return self._recorder.bulk_loading

    @property
    def loading_privately(self) -> bool:
        return self._private_load

    def defer_recount(self, session: Session, table: str, argument: str | None = None) -> None:
        if table not in BULK_RECOUNTS:
            raise ValueError(f"{table!r} has no full recount (BULK_RECOUNTS)")
        session.execute(
            "INSERT INTO pending_recounts (name, argument) VALUES (?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (table, argument),
        )

    def recount_pending(self, session: Session) -> list[str]:
        pending = pending_recounts(session)
        run_in_order(session, recount_steps(pending, dialect=self.dialect, shared=False))
        return sorted(pending)

    @contextmanager
    def bulk_load(self, *, private: bool = False) -> Iterator[None]:
        """Around a replay into empty tables (a rebuild's new generation, or a first
        projection: ``projections.runner.project_from_start``): lets the store trade
        per-batch upkeep for speed, and restores it on exit. The indexes only queries
        read (``READ_SIDE_INDEXES``) are dropped and built once at the end; the tables of
        ``BULK_RECOUNTS`` are recounted once, in full, at the end; PostgreSQL's
        statistics are sampled lightly meanwhile and fully at the end; SQLite skips the
        fsync of its checkpoints meanwhile; the posts a change bears on that only a
        lookup by another column than their uri finds are re-derived at the end
        (``projections.apply_posts.rederive_deferred``). A rebuild's generation has no
        readers until its switch; a reader of a first projection meanwhile gets slower
        answers, and what is recounted (board, reaction and per-author counts, boards'
        last posts, member listings and post counts, the topics' reply counts and last
        replies) and deferred only from the end of the load. ``private``: nothing else
        reads or writes the location meanwhile, and it is discarded if the load fails (a
        rebuild's generation, a replay's new database): SQLite then writes it without a
        journal (``SQLiteReadModelRecorder.unjournaled``), and the load also drops the
        indexes only those deferred lookups and the incremental upkeep read
        (``LOAD_DROPPED_INDEXES``), keeping the primary keys alone; on PostgreSQL but
        those of the tables its recounts refill (``RECOUNTED_KEYS``), added back at its
        end.
        """
        with self._recorder.unjournaled() if private else nullcontext():
            dropped = load_dropped_index_statements(private=private)
            if private and self.dialect == "postgresql":
                # the search documents' GIN index, as a step of the end beside the
                # others instead of after the search projection's first batch
                dropped.append(search_schema.DOCUMENT_INDEX)
            keys = list(RECOUNTED_KEYS) if private and self.dialect == "postgresql" else []
            with self.transaction() as session:
                for statement in dropped:
                    session.execute(f"DROP INDEX IF EXISTS {index_name(statement)}")
                for table in keys:
                    session.execute(drop_key_statement(table))
            self._recorder.bulk_loading = True
            self._private_load = private
            loaded = False
            try:
                yield
                loaded = True
            finally:
                self._recorder.bulk_loading = False
                self._private_load = False
                if loaded or not private:  # a private location that failed is discarded
                    self._end_bulk_load(dropped, keys, private=private)

    def _end_bulk_load(self, dropped: list[str], keys: list[str], *, private: bool) -> None:
        # the read side's indexes after the recounts, which then fill and rewrite their
        # tables without moving an entry of them: built from the final rows in one sort
        # instead (measured at 1M events, PostgreSQL: the per-thread author counts into
        # a copy of their table took 6.2 s with its indexes, 2.4 s without them and
        # 0.6 s more to build its key; the end of a load 50.6 s → 39.7 s, with the
        # members' sum below)
        apart = [s for s in dropped if s == search_schema.DOCUMENT_INDEX]
        after = [s for s in dropped if index_name(s) in READ_SIDE_INDEXES]
        before = [s for s in dropped if s not in after and s not in apart]
        recorder = self._recorder
        if private and isinstance(recorder, PostgresReadModelRecorder):
            # nothing reads the location, which is discarded if this fails: its steps
            # run over parallel sessions (projections.load_end)
            with recorder.write() as session:
                pending = pending_recounts(session)
            run_in_parallel(recorder.unlocked_write, end_steps(
                before, after, pending, dialect=self.dialect, shared=True, keys=keys,
                apart=apart))
            return
        with self.transaction() as session:
            sqlite = self.dialect == "sqlite"
            if sqlite:
                # the load's other process is done: SQLite's sorts may take a helper
                # thread (the 1M-event posts index builds: 7.8 s → 6.4 s; the load's
                # peak memory 275 → 375 MB, docs/performance.md)
                session.execute(f"PRAGMA threads = {SORT_HELPER_THREADS}")
                session.execute(f"PRAGMA cache_size = -{END_CACHE_KIB}")
                # the temporary copy the recounts read holds nothing but copies of rows
                # the location keeps: its drop need not zero each freed page, as
                # SQLite builds with SECURE_DELETE (Debian's do) would (0.7 s → 0.1 s
                # of the end of a 1M-event load)
                secure = session.query("PRAGMA temp.secure_delete")[0][0]
                session.execute("PRAGMA temp.secure_delete = OFF")
            try:
                run_in_order(session, end_steps(before, after, pending_recounts(session),
                                                dialect=self.dialect, shared=False,
                                                keys=keys, apart=apart))
            finally:
                if sqlite:  # the pooled connection goes back as it was
                    session.execute("PRAGMA threads = 0")
                    session.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
                    session.execute(f"PRAGMA temp.secure_delete = {int(secure)}")

    def close_connections(self) -> None:
        """Close this process's idle connections to the location (they reopen when next
        needed): before another process bulk-loads it in private, which SQLite can do
        without a journal only while no other connection has the file open."""
        self._recorder.close_connections()

    def close(self) -> None:
        self._recorder.datastore.close()


def sqlite_path(url: str, location: str) -> Path:
    """The database file of a SQLite location: ``location`` itself when absolute, else
    relative to the url's directory (the url may name a directory or a file in it)."""
    path = Path(location)
    if path.is_absolute():
        return path
    base = Path(url.removeprefix(_SQLITE_PREFIX) or ".")
    if base.suffix:
        base = base.parent
    return base / path


def open_read_models(url: str, *, location: str, create: bool = True) -> ReadModelStore:
    """Open (creating tables if needed, unless ``create`` is false) the read models at
    ``location``: a SQLite file path for a ``sqlite:///`` url, a schema name for a
    ``postgresql://`` url. Processes that open an existing location at once pass
    ``create=False``: concurrent DDL on PostgreSQL's catalog fails."""
    recorder: ReadModelRecorder
    if url.startswith("sqlite:"):
        path = sqlite_path(url, location)
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder = SQLiteReadModelRecorder(
            SQLiteReadModelDatastore(str(path)), all_statements()
        )
    elif url.startswith(("postgresql:", "postgres:")):
        params = conninfo_to_dict(url)
        recorder = PostgresReadModelRecorder(
            PostgresReadModelDatastore(
                dbname=str(params.get("dbname", "postgres")),
                host=str(params.get("host", "127.0.0.1")),
                port=str(params.get("port", 5432)),
                user=str(params.get("user", "postgres")),
                password=str(params.get("password", "")),
                schema=location,
                pool_size=2,
                max_overflow=8,
            ),
            all_statements("postgresql"),
        )
    else:
        raise ValueError(f"unsupported read-model url {url!r}: use sqlite:/// or postgresql://")
    if create:
        recorder.create_table()
    return ReadModelStore(recorder, location)


def open_memory_read_models() -> ReadModelStore:
    """Fresh read models in an in-memory SQLite database of this process (every pooled
    connection shares it; it goes with the store's ``close()``): for scripts and
    notebooks that project a log to look at it (``appview.logbook``)."""
    name = f"file:atbb-read-models-{uuid.uuid4().hex}?mode=memory&cache=shared"
    recorder = SQLiteReadModelRecorder(SQLiteReadModelDatastore(name), all_statements())
    recorder.create_table()
    return ReadModelStore(recorder, name)


@contextmanager
def opened(url: str, *, location: str) -> Iterator[ReadModelStore]:
    """``open_read_models`` as a context manager that closes the store."""
    store = open_read_models(url, location=location)
    try:
        yield store
    finally:
        store.close()


class AttachedToReadModels:
    """What every projection does with the read models it is attached to: its ``store``
    (an error before ``attach``) and its tracked ``position`` there. A projection sets
    ``name`` and ``_store``."""

    name: str
    _store: ReadModels | None

    @property
    def store(self) -> ReadModels:
        if self._store is None:
            raise RuntimeError(f"projection {self.name!r} is not attached to a read-model store")
        return self._store

    def position(self) -> int:
        return self.store.position(self.name)
