"""The database layer under the read models: one SQL text for SQLite and PostgreSQL.

A read-model location is a SQLite file or a PostgreSQL schema. Both are reached through
the ``eventsourcing`` library's tracking recorders (subclassed), so a projection's rows and
its tracked position are written by the same transaction and the library's upsert refuses
a position that does not advance.

SQL is written once with ``?`` placeholders; on PostgreSQL :class:`Session` numbers them
``$1, $2, ...`` for psycopg's raw cursor, which sends the text as it is: psycopg's own
``%s`` form is parsed in Python on every execution, and the many-row ``VALUES`` lists of
a projection batch made that parsing 15 % of a PostgreSQL projection's time.
:func:`to_dialect` gives the ``%s`` form for code holding an ordinary psycopg cursor.
Rows come back as tuples (``query_dicts`` for dicts keyed by column name).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, Literal, TypeAlias

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
    SQLiteTrackingRecorder,
)
from psycopg import Connection as PgConnection
from psycopg import RawCursor
from psycopg import sql as pgsql
from psycopg.rows import tuple_row
from psycopg.types.array import ListBinaryDumper

from events.store_postgres import ddl_serialized
from projections.schema import TABLES

Dialect: TypeAlias = Literal["sqlite", "postgresql"]

# Below this many rows an upsert on PostgreSQL is one multi-row VALUES statement; above,
# COPY into a staging table wins (the fixed cost of the stage is ~1 ms).
_SMALL_BATCH = 64

# Tables whose rows the projection rewrites often (counts, last post, flags).
_UPDATED_IN_PLACE = ("posts", "boards", "members", "board_author_counts",
                     "thread_author_counts", "reaction_counts")
Row: TypeAlias = tuple[Any, ...]


def to_dialect(sql: str, dialect: Dialect) -> str:
    """``sql`` written with ``?`` placeholders, as the given dialect's driver wants it."""
    if dialect == "sqlite":
        return sql
    return sql.replace("%", "%%").replace("?", "%s")


_NUMBERS = tuple(f"${n}" for n in range(1, 65536))  # PostgreSQL's limit of parameters


@lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """``sql`` written with ``?`` placeholders, numbered ``$1, $2, ...`` for a raw cursor
    (the text must hold no ``?`` but its placeholders, as all of ours)."""
    parts = sql.split("?")
    if len(parts) == 1:
        return sql
    return "".join(chain.from_iterable(zip(parts[:-1], _NUMBERS, strict=False))) + parts[-1]


def placeholders(count: int) -> str:
    """``?, ?, ...`` for an ``IN (...)`` list of ``count`` values."""
    return ", ".join("?" * count)


class Session:
    """A cursor inside one transaction (read or write) of a read-model location."""

    def __init__(self, cursor: Any, dialect: Dialect, tracking_cursor: Any = None) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect
        # on PostgreSQL the cursor is a RawCursor (see the module's docstring)
        self._convert: Callable[[str], str] = (lambda sql: sql) if dialect == "sqlite" else numbered
        # The cursor the tracking recorder writes through: same connection, same
        # transaction (on PostgreSQL a dict-row cursor, which the library expects).
        self.tracking_cursor: Any = cursor if tracking_cursor is None else tracking_cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Session:
        self._cursor.execute(self._convert(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(row) for row in rows]
        if batch:
            self._cursor.executemany(self._convert(sql), batch)

    def execute_values(
        self, sql: str, rows: Iterable[Sequence[Any]], *, page: int = 500
    ) -> None:
        """Run ``sql`` once per page of ``rows``, its ``{values}`` replaced by that page
        as a multi-row ``VALUES`` list: one round trip per page instead of per row (the
        difference that matters on PostgreSQL). All rows must have the same width."""
        batch = [tuple(row) for row in rows]
        if not batch:
            return
        width = len(batch[0])
        one = "(" + ", ".join("?" * width) + ")"
        # both drivers cap the number of parameters of one statement (SQLite at 32766)
        size = max(1, min(page, 30000 // max(width, 1)))
        for start in range(0, len(batch), size):
            part = batch[start : start + size]
            self.execute(
                sql.replace("{values}", ", ".join([one] * len(part))),
                [value for row in part for value in row],
            )

    def upsert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        conflict: str,
        action: str,
    ) -> None:
        """``INSERT INTO table (columns) ... ON CONFLICT (conflict) DO action`` for many
        rows. SQLite runs one prepared statement per row; PostgreSQL COPYs the rows into a
        temporary table shaped like ``table`` and inserts from it in one statement
        (measured 2.7x faster than multi-row VALUES, 1.7x faster than executemany)."""
        clause = f" ON CONFLICT ({conflict}) DO {action}"
        self._write(table, columns, rows, clause, lambda names, batch: self._copy_upsert(
            table, names, batch, conflict, action))

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``INSERT INTO table (columns)`` of rows whose keys the caller has just read to
        be absent, in this transaction (so no other writer can have added them: see
        ``PostgresReadModelRecorder.write``). On PostgreSQL a batch above a few rows is
        COPYed straight into the table: no staging table to fill, read and empty, no
        conflict to look for (a 1M-event replay's posts and reactions, most of them new
        rows: measured in ``docs/performance.md``). A key that is there after all
        fails the statement, as a unique violation."""
        self._write(table, columns, rows, "", lambda names, batch: self._copy_in(
            table, table, names, batch))

    def _write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
               clause: str, copy: Callable[[str, list[tuple[Any, ...]]], None]) -> None:
        """``INSERT INTO table (columns) VALUES ...`` + ``clause`` for every row: one
        prepared statement per row on SQLite, a multi-row ``VALUES`` for a few rows on
        PostgreSQL, ``copy(names, rows)`` for more."""
        batch = [tuple(row) for row in rows]
        if not batch:
            return
        names = ", ".join(columns)
        if self.dialect == "sqlite":
            self._cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
                + clause, batch)
        elif len(batch) <= _SMALL_BATCH:
            self.execute_values(f"INSERT INTO {table} ({names}) VALUES {{values}}" + clause,
                                batch)
        else:
            copy(names, batch)

    def _copy_in(self, into: str, table: str, names: str,
                 batch: list[tuple[Any, ...]]) -> None:
        """COPY ``batch`` into ``into`` (``table`` or a staging table shaped like it),
        in PostgreSQL's binary format: psycopg formats a row of posts three times faster
        so than as text, and the server parses it faster too (measured: formatting
        20,000 posts rows 39 → 11 ms; the COPY 125 → 96 ms). Binary wants each value of
        its column's exact type, and a value of another (an integer where text is due,
        one past 32 bits) fails the COPY: inside a savepoint, so that the rows are then
        sent as text, which takes any value as the text of it."""
        types = copy_types(table, names)
        if types is not None:
            self._cursor.execute(b"SAVEPOINT copy_rows")
            try:
                with self._cursor.copy(f"COPY {into} ({names}) FROM STDIN (FORMAT BINARY)"
                                       ) as copy:
                    copy.set_types(types)
                    for row in batch:
                        copy.write_row(row)
            except Exception:  # the text COPY below says what was wrong, if anything
                self._cursor.execute(b"ROLLBACK TO SAVEPOINT copy_rows")
            else:
                self._cursor.execute(b"RELEASE SAVEPOINT copy_rows")
                return
        with self._cursor.copy(f"COPY {into} ({names}) FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)

    def _copy_upsert(
        self, table: str, names: str, batch: list[tuple[Any, ...]], conflict: str, action: str
    ) -> None:
        stage = f"stage_{table}"
        self._cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        )
        self._copy_in(stage, table, names, batch)
        self._cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage}"
            f" ON CONFLICT ({conflict}) DO {action}"
        )
        # emptied now, not only at commit: the same stage may serve again in this
        # transaction (DELETE: TRUNCATE costs file operations)
        self._cursor.execute(f"DELETE FROM {stage}")

    def fetchone(self) -> Row | None:
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self) -> list[Row]:
        return [tuple(row) for row in self._cursor.fetchall()]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.execute(sql, params).fetchall()

    def query_in(self, sql: str, values: Iterable[Any], params: Sequence[Any] = (),
                 *, chunk: int = 500) -> list[Row]:
        """Rows of ``sql`` whose ``{in}`` stands for membership in ``values`` (after the
        other ``params``), asked ``chunk`` values at a time: ``= ANY(?)`` with one array
        on PostgreSQL (one statement text to parse and plan, whatever the count), ``IN
        (?, ...)`` on SQLite. Bigger chunks are slower on PostgreSQL: measured, 5,000
        values in one array took 144 ms where ten of 500 took 10 ms in all."""
        ordered = list(values)
        rows: list[Row] = []
        for start in range(0, len(ordered), chunk):
            part = ordered[start:start + chunk]
            if self.dialect == "postgresql":
                rows.extend(self.query(sql.replace("{in}", "= ANY(?)"), [*params, part]))
            else:
                rows.extend(self.query(
                    sql.replace("{in}", f"IN ({placeholders(len(part))})"), [*params, *part]))
        return rows

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.query_one(sql, params)
        return None if row is None else row[0]

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.execute(sql, params)
        names = [column[0] for column in self._cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


_COPY_TYPES = {"TEXT": "text", "INTEGER": "int4", "BIGINT": "int8"}


@lru_cache(maxsize=64)
def copy_types(table: str, names: str) -> tuple[str, ...] | None:
    """PostgreSQL's type name of each of the columns ``names`` (joined by ``", "``) of
    the read-model table ``table``, read off its DDL (``schema.TABLES``); None when a
    column is not declared there (a COPY then goes as text)."""
    declared: dict[str, str] = {}
    for line in TABLES.get(table, "").splitlines():
        name, _, rest = line.strip().partition(" ")
        kind = _COPY_TYPES.get(rest.split(" ", 1)[0].rstrip(","))
        if kind is not None:
            declared[name] = kind
    wanted = names.split(", ")
    if not all(name in declared for name in wanted):
        return None
    return tuple(declared[name] for name in wanted)


CACHE_SIZE_KIB = 65_536
"""The page cache of each connection to a SQLite read-model file."""


class _TunedSQLitePool(SQLiteConnectionPool):
    """WAL is set by the library; a read model can be rebuilt from the log, so it trades
    fsync-per-commit durability (synchronous=NORMAL keeps it consistent) for speed.
    Temporary B-trees (sorts and groupings over whole tables) stay on disk: in memory they
    grew a 1M-event rebuild past 2 GB."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_SIZE_KIB}")
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        return connection


PAGE_SIZE = 16_384
"""Page size of a new SQLite read-model file. ``posts`` rows carry their bodies (about
1 KB) and four indexes on random keys: with 16 KB pages (SQLite's default is 4 KB) a bulk
load of 191k and 479k events ran 5 to 15 % faster, same runs alternated; 8 KB gained
nothing (docs/performance.md, fifth session)."""


def create_sqlite_file(path: str, page_size: int = PAGE_SIZE) -> None:
    """Create the database file at ``path`` with ``page_size`` pages, if there is none.
    The size can only be chosen before the first page is written, and WAL mode (which the
    library switches on at its first connection) writes it: so here, before that."""
    if path.startswith("file:") or ":memory:" in path or Path(path).exists():
        return
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA page_size={int(page_size)}")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


class SQLiteReadModelDatastore(SQLiteDatastore):
    def __init__(self, path: str, *, lock_timeout: int = 30) -> None:
        create_sqlite_file(path)
        super().__init__(path, lock_timeout=lock_timeout)
        self._path, self._lock_timeout = path, lock_timeout
        self.close_connections()  # the library's pool, for one of ours

    def close_connections(self) -> None:
        """Close every connection to the file; new ones open when next asked for. Only
        while none is in use (a rebuild's generation before its replay process starts)."""
        idle, self.pool = self.pool, _TunedSQLitePool(db_name=self._path,
                                                      lock_timeout=self._lock_timeout)
        idle.close()


class PostgresReadModelDatastore(PostgresDatastore):
    """Every connection's ``search_path`` is the location's schema, so the unqualified
    table names of ``projections.schema`` resolve inside it."""

    def after_connect_func(self) -> Callable[[PgConnection[Any]], None]:
        library_setup = super().after_connect_func()
        set_path = pgsql.SQL("SET search_path TO {0}").format(pgsql.Identifier(self.schema))

        def after_connect(conn: PgConnection[Any]) -> None:
            library_setup(conn)
            conn.cursor().execute(set_path)
            # JIT compiling the projection's many short statements costs more than it
            # saves (measured: about half the PostgreSQL apply time)
            conn.cursor().execute(b"SET jit = off")
            # the read models are small and hot: an index probe costs about what a
            # sequential page does, and the default cost (4) made the planner scan whole
            # tables for a few hundred keyed lookups
            conn.cursor().execute(b"SET random_page_cost = 1.1")
            # Lists are sent in binary: the only lists these connections get are the
            # arrays of ``Session.query_in``, and psycopg's text form quotes every element
            # through a regular expression (measured: 1.2 ms for 500 at-uris, 0.2 ms in
            # binary; 10 % of a PostgreSQL projection's time).
            conn.adapters.register_dumper(list, ListBinaryDumper)

        return after_connect


class SQLiteReadModelRecorder(SQLiteTrackingRecorder):
    """The tracking recorder of a SQLite read-model file, plus the read models' DDL."""

    dialect: Dialect = "sqlite"
    tracking_table = "tracking"

    def __init__(self, datastore: SQLiteReadModelDatastore, ddl: Sequence[str]) -> None:
        super().__init__(datastore)
        self.create_table_statements.extend(ddl)

    bulk_loading = False
    """Set while a rebuild replays into this location (see ``ReadModelStore.bulk_load``)."""

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.datastore.get_connection(commit=True) as conn:
            # Bulk loading skips the fsync of each checkpoint (measured: commits take half
            # the time). A process killed meanwhile loses nothing the OS has; only a power
            # cut could tear the file, and a location still loading is discarded and
            # rebuilt anyway. The level cannot change inside a transaction: set it first.
            conn.cursor().execute(
                "PRAGMA synchronous=OFF" if self.bulk_loading else "PRAGMA synchronous=NORMAL"
            )
            with conn.transaction(commit=True) as cursor:
                raw = cursor.sqlite_cursor
                raw.row_factory = None
                yield Session(raw, "sqlite")

    @contextmanager
    def unjournaled(self) -> Iterator[None]:
        """Around a bulk load into a location nothing else uses (a rebuild's generation
        before its switch, a replay's new database): no journal meanwhile, so each
        transaction writes its pages once, into the file, instead of into the WAL and
        again at its checkpoint (measured on a 1M-event generation: its `posts` rows
        inserted in 31.0 s in WAL, 18.6 s without a journal). The price
        is that the location cannot roll back or survive a crash meanwhile, which a
        location that is discarded whenever its load fails does not need. WAL comes back
        at the end. SQLite leaves WAL only when no other connection has the file open: if
        one has, the load runs journaled, as an ordinary one."""
        if self._journal_mode("OFF") != "off":
            yield
            return
        try:
            yield
        except BaseException:
            with suppress(Exception):  # a failed load's location is discarded anyway
                self._journal_mode("WAL")
            raise
        if self._journal_mode("WAL") != "wal":
            raise sqlite3.OperationalError("the read models stayed unjournaled")

    def close_connections(self) -> None:
        """See ``SQLiteReadModelDatastore.close_connections``."""
        datastore = self.datastore
        assert isinstance(datastore, SQLiteReadModelDatastore)
        datastore.close_connections()

    def _journal_mode(self, mode: str) -> str:
        try:
            with self.datastore.get_connection(commit=True) as conn:
                cursor = conn.cursor()
                cursor.execute(f"PRAGMA journal_mode={mode}")
                row = cursor.fetchone()
        except (sqlite3.OperationalError, OperationalError):
            return ""  # another connection holds the file
        return str(row[0]).lower() if row else ""

    @contextmanager
    def read(self) -> Iterator[Session]:
        # BEGIN (deferred) + rollback: in WAL mode every statement of the block sees one
        # snapshot, taken at its first read.
        with self.datastore.transaction(commit=False) as cursor:
            raw = cursor.sqlite_cursor
            raw.row_factory = None
            yield Session(raw, "sqlite")

    def track(self, session: Session, name: str, position: int) -> None:
        self._insert_tracking(session.tracking_cursor, Tracking(name, position))


class PostgresReadModelRecorder(PostgresTrackingRecorder):
    """The tracking recorder of a PostgreSQL read-model schema, plus the read models'
    DDL (unqualified: the connections' search_path is the schema)."""

    dialect: Dialect = "postgresql"
    tracking_table = "notification_tracking"

    bulk_loading = False
    """Set while a rebuild replays into this schema (statistics are sampled lightly)."""

    def __init__(self, datastore: PostgresReadModelDatastore, ddl: Sequence[str]) -> None:
        super().__init__(datastore, tracking_table_name=self.tracking_table)
        self._ddl = list(ddl)

    def unjournaled(self) -> AbstractContextManager[None]:
        """PostgreSQL keeps its write-ahead log during every load (see the SQLite
        recorder's)."""
        return nullcontext()

    def close_connections(self) -> None:
        """Nothing to do: a PostgreSQL schema's connections hold no lock on it."""

    def create_table(self) -> None:
        # one process at a time (the fillfactor rewrites a catalog row at every open)
        with ddl_serialized(self.datastore):
            self._create_tables()

    def _create_tables(self) -> None:
        with self.datastore.get_connection() as conn:
            conn.execute(
                pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(
                    pgsql.Identifier(self.datastore.schema)
                )
            )
        super().create_table()
        with self.datastore.transaction(commit=True) as cursor:
            for statement in self._ddl:
                cursor.execute(statement.encode("utf-8"))
            for table in _UPDATED_IN_PLACE:
                # room on each page lets PostgreSQL update a row without touching its
                # indexes (a HOT update) when no indexed column changed
                cursor.execute(f"ALTER TABLE {table} SET (fillfactor = 80)".encode())

    @contextmanager
    def _transaction(self, *, read_only: bool) -> Iterator[tuple[Any, Any]]:
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(force_rollback=read_only),
        ):
            if read_only:
                conn.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield RawCursor(conn, row_factory=tuple_row), conn.cursor()

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.unlocked_write() as session:
            # One writer per location at a time (another process may project too): a
            # second writer waits here, then reads the position the first committed.
            session.execute("LOCK TABLE projection_versions IN SHARE ROW EXCLUSIVE MODE")
            yield session

    @contextmanager
    def unlocked_write(self) -> Iterator[Session]:
        """A write transaction that does not take the location's writer lock, so that
        several run at once: only for a location no other writer can reach (the parallel
        end of a private bulk load, ``projections.load_end``)."""
        with self._transaction(read_only=False) as (cursor, dict_cursor):
            yield Session(cursor, "postgresql", dict_cursor)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._transaction(read_only=True) as (cursor, _dict_cursor):
            yield Session(cursor, "postgresql")

    def track(self, session: Session, name: str, position: int) -> None:
        self._insert_tracking(session.tracking_cursor, Tracking(name, position))


ReadModelRecorder: TypeAlias = SQLiteReadModelRecorder | PostgresReadModelRecorder

