"""One ingest process writes at a time.

With PostgreSQL the leader holds ``pg_advisory_lock`` on a connection of its own for its
whole lifetime; the lock dies with the connection, so when the leader dies (even by
SIGKILL) the server releases it and a waiting process takes over. With SQLite an
exclusive ``flock`` on a file beside the database does the same for processes on one
machine. The lock key is derived from the event log's location, so two appviews on
different schemas or data directories do not wait for each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path
from types import TracebackType

import psycopg

from appview.settings import Settings

log = logging.getLogger(__name__)


def lock_key(name: str, purpose: str = "ingest") -> int:
    """A signed 64-bit advisory-lock key for ``name``."""
    prefix = "atbb-ingest-leader" if purpose == "ingest" else f"atbb-{purpose}"
    digest = hashlib.sha256(f"{prefix}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LeaderLock:
    """Wait for and hold the ingest leadership. ``acquire`` blocks until the lock is ours
    (returns True) or ``stop`` is set (returns False); ``release`` gives it back."""

    def __init__(self, settings: Settings, *, poll_seconds: float = 0.5,
                 purpose: str = "ingest") -> None:
        self._settings = settings
        self.purpose = purpose
        self._poll_seconds = poll_seconds
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._file: int | None = None
        self._key = lock_key(settings.database_schema, purpose)

    @property
    def held(self) -> bool:
        return self._connection is not None or self._file is not None

    @property
    def description(self) -> str:
        if self._settings.is_postgres:
            return f"pg_advisory_lock({self._key})"
        return f"flock {self._lock_path()}"

    def acquire(self, stop: threading.Event | None = None) -> bool:
        stop = stop or threading.Event()
        waited = False
        while True:  # one attempt even when already stopped
            if self._try_acquire():
                if waited:
                    log.info("took over the %s lock (%s)", self.purpose, self.description)
                return True
            if not waited:
                log.info("another process holds the %s lock; waiting (%s)", self.purpose,
                         self.description)
                waited = True
            if stop.wait(self._poll_seconds):
                return False

    def _try_acquire(self) -> bool:
        if self._settings.is_postgres:
            return self._try_postgres()
        return self._try_file()

    def _try_postgres(self) -> bool:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self._settings.event_log_url, autocommit=True)
        row = self._connection.execute("SELECT pg_try_advisory_lock(%s)",
                                       (self._key,)).fetchone()
        if row is not None and row[0] is True:
            return True
        # Not ours: keep no idle connection open while waiting.
        self._connection.close()
        self._connection = None
        return False

    def _lock_path(self) -> Path:
        return self._settings.data_dir / f"{self.purpose}.lock"

    def _try_file(self) -> bool:
        path = self._lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        self._file = handle
        return True

    def alive(self) -> bool:
        """Whether the lock is still ours: on PostgreSQL the dedicated connection must
        still answer (a server restart drops the lock with the connection)."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Unlock before closing: a closed session's locks go only when its server
            # process has exited, which a taker straight after us can beat. A session
            # already gone took its lock with it.
            with contextlib.suppress(psycopg.Error):
                connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            connection.close()
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_UN)
                os.close(self._file)
            finally:
                self._file = None

    def __enter__(self) -> LeaderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
