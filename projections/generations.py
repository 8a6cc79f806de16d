"""Generations of the read models, and the one indirection readers go through.

A generation is a complete copy of the read models: its own SQLite file, or its own
PostgreSQL schema. A registry, shared by every process of one appview, names the live
generation; :class:`GenerationalReadModels` resolves it (re-reading the registry at most
every ``refresh_seconds``) and hands each read and each write to the live generation's
store, so a rebuild that switches the registry switches every reader and the follower
at once, in this process and, within ``refresh_seconds``, in every other.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql

from events.pools import PoolUse
from projections.db import Dialect, Session
from projections.readmodel import ReadModelStore, open_read_models

_GENERATION_FILE = re.compile(r"^gen-(\d+)\.sqlite3$")


class GenerationRegistry(Protocol):
    """Where generations live and which one is live."""

    def live(self) -> int | None:
        """The live generation, or None before any was named (generation 1 then)."""
        ...

    def set_live(self, generation: int) -> None:
        """Name ``generation`` live, atomically for every process."""
        ...

    def existing(self) -> list[int]:
        """The generations present (live, retired-but-not-dropped, or half-built)."""
        ...

    def location(self, generation: int) -> str:
        """The location (file path or schema) of ``generation``."""
        ...

    def drop(self, generation: int) -> None:
        """Delete ``generation``'s file or schema; the live one is refused."""
        ...

    def close(self) -> None: ...


class SQLiteGenerations:
    """Generations as ``gen-N.sqlite3`` files in one directory; the live one is named in
    ``LIVE`` (JSON), replaced by a rename so a reader sees the old name or the new one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._marker = directory / "LIVE"

    def live(self) -> int | None:
        try:
            data = json.loads(self._marker.read_text())
        except FileNotFoundError:
            return None
        return int(data["generation"])

    def set_live(self, generation: int) -> None:
        temporary = self._marker.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"generation": generation}))
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, self._marker)

    def existing(self) -> list[int]:
        found = (_GENERATION_FILE.match(path.name) for path in self.directory.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def location(self, generation: int) -> str:
        return str(self.directory / f"gen-{generation}.sqlite3")

    def drop(self, generation: int) -> None:
        if generation == (self.live() or 1):
            raise ValueError(f"generation {generation} is live; it cannot be dropped")
        base = self.location(generation)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(base + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        pass


class PostgresGenerations:
    """Generations as schemas ``<base>_gN``; the live one is a row of
    ``<base>_meta.live_generation``, changed in one committed UPDATE."""

    def __init__(self, url: str, base: str) -> None:
        self.base = base
        self._meta = f"{base}_meta"
        self._pattern = re.compile(rf"^{re.escape(base)}_g(\d+)$")
        self._lock = threading.Lock()
        self._connection = psycopg.connect(url, autocommit=True)
        self._connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._meta))
        )
        self._connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.live_generation ("
                " id smallint PRIMARY KEY CHECK (id = 1), generation integer NOT NULL)"
            ).format(sql.Identifier(self._meta))
        )

    def live(self) -> int | None:
        with self._lock:
            row = self._connection.execute(
                sql.SQL("SELECT generation FROM {}.live_generation WHERE id = 1").format(
                    sql.Identifier(self._meta))
            ).fetchone()
        return None if row is None else int(row[0])

    def set_live(self, generation: int) -> None:
        with self._lock:
            self._connection.execute(
                sql.SQL(
                    "INSERT INTO {}.live_generation (id, generation) VALUES (1, %s)"
                    " ON CONFLICT (id) DO UPDATE SET generation = excluded.generation"
                ).format(sql.Identifier(self._meta)),
                (generation,),
            )

    def existing(self) -> list[int]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
                (self.base + "_g",),
            ).fetchall()
        found = (self._pattern.match(str(name)) for (name,) in rows)
        return sorted(int(match.group(1)) for match in found if match)

    def location(self, generation: int) -> str:
        return f"{self.base}_g{generation}"

    def drop(self, generation: int) -> None:
        if generation == (self.live() or 1):
            raise ValueError(f"generation {generation} is live; it cannot be dropped")
        with self._lock:
            self._connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(self.location(generation)))
            )

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def open_generations(url: str, *, base: str) -> GenerationRegistry:
    """The registry for a read-model url: ``base`` is a directory (SQLite) or the schema
    prefix (PostgreSQL)."""
    if url.startswith("sqlite:"):
        return SQLiteGenerations(Path(base))
    if url.startswith(("postgresql:", "postgres:")):
        return PostgresGenerations(url, base)
    raise ValueError(f"unsupported read-model url {url!r}: use sqlite:/// or postgresql://")


class GenerationalReadModels:
    """The read models as readers and the live follower see them: always the live
    generation. Implements :class:`projections.readmodel.ReadModels`.

    Reads and writes count as in flight on their generation until they finish, so a
    retired generation is closed (and dropped) only after its last reader is done. Writes
    hold ``write_lock``, which a rebuild takes for its final catch-up and switch: the live
    follower cannot move the old generation past the new one in between.
    """

    def __init__(self, url: str, registry: GenerationRegistry, *,
                 refresh_seconds: float = 0.5,
                 opener: Callable[[str, str], ReadModelStore] | None = None) -> None:
        self.url = url
        self.registry = registry
        self.refresh_seconds = refresh_seconds
        self.write_lock = threading.RLock()
        self._open = opener or (lambda u, location: open_read_models(u, location=location))
        self._lock = threading.Condition()
        self._stores: dict[int, ReadModelStore] = {}
        self._in_flight: dict[int, int] = {}
        self._live = registry.live() or 1
        self._checked = time.monotonic()
        self._retiring: list[threading.Thread] = []
        self.store(self._live)

    # -- which generation ---------------------------------------------------------------

    def live_generation(self) -> int:
        now = time.monotonic()
        if now - self._checked >= self.refresh_seconds:
            self._checked = now
            named = self.registry.live() or 1
            if named != self._live:
                previous, self._live = self._live, named
                self._release_later(previous)
        return self._live

    def store(self, generation: int) -> ReadModelStore:
        """The store of ``generation``, opened (and its tables created) on first use."""
        with self._lock:
            store = self._stores.get(generation)
            if store is None:
                store = self._open(self.url, self.registry.location(generation))
                self._stores[generation] = store
                self._in_flight.setdefault(generation, 0)
            return store

    def current(self) -> ReadModelStore:
        return self.store(self.live_generation())

    def pool_use(self) -> PoolUse | None:
        """The live generation's connection pool (metrics)."""
        return self.current().pool_use()

    def switch_to(self, generation: int) -> int:
        """Name ``generation`` live for every process; returns the one it replaced."""
        self.store(generation)
        previous = self.live_generation()
        self.registry.set_live(generation)
        self._live = generation
        self._checked = time.monotonic()
        if previous != generation:
            self._release_later(previous)
        return previous

    def retire(self, generation: int, *, grace_seconds: float, timeout: float = 60.0) -> bool:
        """Wait for this process's reads of ``generation`` to finish and for other
        processes to notice the switch (``grace_seconds``), then close and drop it.
        Returns False (dropping nothing) if reads are still running after ``timeout``."""
        time.sleep(grace_seconds)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight.get(generation, 0) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            store = self._stores.pop(generation, None)
            self._in_flight.pop(generation, None)
        if store is not None:
            store.close()
        self.registry.drop(generation)
        return True

    def retire_later(self, generation: int, *, grace_seconds: float) -> None:
        """:meth:`retire` in a thread of its own, so the caller (a rebuild that has just
        switched) returns at once; :meth:`close` waits for it. A process that dies first
        leaves the generation for the next rebuild's ``clear_unfinished``."""
        thread = threading.Thread(target=self.retire, args=(generation,),
                                  kwargs={"grace_seconds": grace_seconds},
                                  name=f"retire-generation-{generation}", daemon=True)
        with self._lock:
            self._retiring = [t for t in self._retiring if t.is_alive()]
            self._retiring.append(thread)
        thread.start()

    def discard(self, generation: int) -> None:
        """Close and drop a generation that never went live (a scratch or failed one)."""
        with self._lock:
            store = self._stores.pop(generation, None)
            self._in_flight.pop(generation, None)
        if store is not None:
            store.close()
        self.registry.drop(generation)

    def _release_later(self, generation: int) -> None:
        # Another process switched: close our handle once our own reads of it are done;
        # the switching process drops it.
        with self._lock:
            if self._in_flight.get(generation, 0) == 0:
                store = self._stores.pop(generation, None)
                self._in_flight.pop(generation, None)
                if store is not None:
                    store.close()

    @contextmanager
    def _using(self, generation: int) -> Iterator[ReadModelStore]:
        with self._lock:  # taken and counted at once: a switch cannot close it between
            store = self.store(generation)
            self._in_flight[generation] = self._in_flight.get(generation, 0) + 1
        try:
            yield store
        finally:
            with self._lock:
                self._in_flight[generation] -= 1
                if self._in_flight[generation] == 0:
                    self._lock.notify_all()
                    if generation != self._live and generation in self._stores:
                        retired = self._stores.pop(generation)
                        self._in_flight.pop(generation, None)
                        retired.close()

    # -- the ReadModels interface -------------------------------------------------------

    @property
    def location(self) -> str:
        return self.registry.location(self.live_generation())

    @property
    def dialect(self) -> Dialect:
        return self.current().dialect

    def sql(self, text: str) -> str:
        return self.current().sql(text)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._using(self.live_generation()) as store, store.read() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.write_lock, self._using(self.live_generation()) as store, \
                store.transaction() as session:
            yield session

    def track(self, session: Session, name: str, position: int) -> None:
        self.current().track(session, name, position)

    def change_mark(self) -> object:
        generation = self.live_generation()
        return generation, self.store(generation).change_mark()

    def _live_in_flight(self) -> AbstractContextManager[ReadModelStore]:
        """The live store for a read outside a session of ours, counted as in flight, so
        a switch by another process cannot close the store under it (closing a SQLite
        connection another thread is using crashes the process)."""
        return self._using(self.live_generation())

    def position(self, name: str) -> int:
        with self._live_in_flight() as store:
            return store.position(name)

    def position_in(self, session: Session, name: str) -> int:
        return self.current().position_in(session, name)

    def refresh_statistics(self, session: Session) -> None:
        self.current().refresh_statistics(session)

    def versions(self) -> dict[str, int]:
        with self._live_in_flight() as store:
            return store.versions()

    def set_version(self, session: Session, name: str, version: int) -> None:
        self.current().set_version(session, name, version)

    def log_identity(self) -> str | None:
        with self._live_in_flight() as store:
            return store.log_identity()

    def stamp_log(self, identity: str) -> None:
        with self._live_in_flight() as store:
            store.stamp_log(identity)

    def row_counts(self) -> dict[str, int]:
        with self._live_in_flight() as store:
            return store.row_counts()

    def bulk_load(self, *, private: bool = False) -> AbstractContextManager[None]:
        return self.current().bulk_load(private=private)

    @property
    def bulk_loading(self) -> bool:
        return self.current().bulk_loading

    @property
    def loading_privately(self) -> bool:
        return self.current().loading_privately

    def defer_recount(self, session: Session, table: str, argument: str | None = None) -> None:
        self.current().defer_recount(session, table, argument)

    def recount_pending(self, session: Session) -> list[str]:
        return self.current().recount_pending(session)

    def settle(self) -> None:
        """Wait for the retirements :meth:`retire_later` started (a grace period and this
        process's last reads of each)."""
        with self._lock:
            retiring, self._retiring = self._retiring, []
        for thread in retiring:
            thread.join()

    def close(self) -> None:
        self.settle()
        with self._lock:
            stores = list(self._stores.values())
            self._stores.clear()
        for store in stores:
            store.close()
        self.registry.close()
