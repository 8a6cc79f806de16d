"""Starting, running and reporting rebuilds of the read models.

One rebuild at a time per appview, across processes: the rebuild lock (a PostgreSQL
advisory lock, or a ``flock`` beside the SQLite files) is held for the whole run, so
`atbb rebuild` in a terminal and the admin API of `atbb serve` refuse each other with a
conflict instead of building the same generation twice.

Every run is recorded in `rebuild_runs` beside the event log (its progress at most once a
second, and when it ends), so each process of an appview reports the rebuild another
process runs (`atbb serve --workers N` answers a request from any of its workers), and a
run whose process died is reported failed as soon as its lock is seen free.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from appview.clock import Clock
from appview.leader import LeaderLock
from appview.rebuild_worker import ChildReplay, ReplayAbandoned
from appview.settings import Settings
from appview.side_db import autoincrement_key, side_transaction
from events.log import EventLog
from projections.generations import GenerationalReadModels
from projections.rebuild import (
    ProjectionFactory,
    RebuildProgress,
    Replay,
    TableDifference,
    rebuild,
    verify,
)
from projections.runner import BULK_FROM_EVENTS

log = logging.getLogger(__name__)

REBUILD_BATCH_SIZE = 10_000
# How often a run's progress is written for the other processes to read.
SHARE_EVERY_SECONDS = 1.0
INTERRUPTED = "interrupted: the process running it ended"


class RebuildInProgress(RuntimeError):
    """A rebuild is already running (here or in another process)."""


class UnknownProjection(ValueError):
    """The name is not one of the appview's projections."""


@dataclass
class RebuildRun:
    id: str
    projection: str | None
    reason: str
    started_at: str
    status: str = "in_progress"  # in_progress | completed | failed
    generation: int | None = None
    phase: str = "starting"
    events_done: int = 0
    events_total: int = 0
    rate: float = 0.0
    eta_seconds: float | None = None
    finished_at: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "projection": self.projection, "reason": self.reason,
            "status": self.status, "generation": self.generation, "phase": self.phase,
            "eventsDone": self.events_done, "eventsTotal": self.events_total,
            "rate": round(self.rate, 1),
            "etaSeconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "startedAt": self.started_at, "finishedAt": self.finished_at,
            "error": self.error,
        }


class RebuildRunStore:
    """The runs of every process, in the event-log database. The table is made at first
    use: most commands never rebuild, and DDL at every start costs each of them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._made = False

    def _table(self) -> None:
        if self._made:
            return
        with side_transaction(self._settings) as execute:
            execute("CREATE TABLE IF NOT EXISTS rebuild_runs (id"
                    f" {autoincrement_key(self._settings)}, status TEXT NOT NULL,"
                    " body TEXT NOT NULL)", ())
        self._made = True

    def create(self, run: RebuildRun) -> str:
        self._table()
        with side_transaction(self._settings) as execute:
            rows = execute("INSERT INTO rebuild_runs (status, body) VALUES (?, ?)"
                           " RETURNING id", (run.status, "{}"))
        return str(rows[0][0])

    def save(self, run: RebuildRun) -> None:
        self._table()
        with side_transaction(self._settings) as execute:
            execute("UPDATE rebuild_runs SET status = ?, body = ? WHERE id = ?",
                    (run.status, json.dumps(asdict(run)), int(run.id)))

    def get(self, run_id: str) -> RebuildRun | None:
        if not run_id.isdigit():
            return None
        self._table()
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT body FROM rebuild_runs WHERE id = ?", (int(run_id),))
        return _stored_run(rows[0][0]) if rows else None

    def recent(self, limit: int) -> list[RebuildRun]:
        self._table()
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT body FROM rebuild_runs ORDER BY id DESC LIMIT ?", (limit,))
        return [run for run in (_stored_run(row[0]) for row in rows) if run is not None]

    def in_progress(self) -> list[RebuildRun]:
        self._table()
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT body FROM rebuild_runs WHERE status = 'in_progress'"
                           " ORDER BY id DESC", ())
        return [run for run in (_stored_run(row[0]) for row in rows) if run is not None]


def _stored_run(body: str) -> RebuildRun | None:
    """A run as stored; None for one whose first save has not happened yet."""
    data = json.loads(body)
    if not data:
        return None
    known = {f.name for f in fields(RebuildRun)}
    return RebuildRun(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    version: int
    built_version: int | None
    generation: int
    position: int
    head: int
    lag: int

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version,
                "builtVersion": self.built_version, "generation": self.generation,
                "position": self.position, "head": self.head, "lag": self.lag}


@dataclass
class FollowingRebuild:
    """A rebuild started before the log it rebuilds is complete (by a full_sync): its
    replay runs in a child process and follows the log until :meth:`release`."""

    run: RebuildRun
    replay: ChildReplay
    thread: threading.Thread

    def release(self) -> None:
        """The log is complete: catch up, switch, retire."""
        self.replay.release()

    def abandon(self) -> None:
        """Stop it; the half-built generation is dropped and the live one stays."""
        self.replay.abandon()

    def wait(self) -> RebuildRun:
        self.thread.join()
        return self.run


class RebuildManager:
    """Runs rebuilds in a background thread (``start``) or in the caller's (``run``);
    the replay itself in a child process when REBUILD_WORKER says so (ADR 0007)."""

    def __init__(self, settings: Settings, event_log: EventLog,
                 models: GenerationalReadModels, make_projections: ProjectionFactory,
                 clock: Clock, *, batch_size: int = REBUILD_BATCH_SIZE,
                 keep: int = 20) -> None:
        self._settings = settings
        self._log = event_log
        self._models = models
        self._make = make_projections
        self._clock = clock
        self._batch_size = batch_size
        self._keep = keep
        self._store = RebuildRunStore(settings)
        self._lock = threading.Lock()
        self._runs: list[RebuildRun] = []
        self._threads: dict[str, threading.Thread] = {}

    # -- what there is ------------------------------------------------------------------

    def projection_names(self) -> list[str]:
        return [p.name for p in self._make()]

    def status(self) -> list[ProjectionStatus]:
        head = self._log.head()
        built = self._models.versions()
        generation = self._models.live_generation()
        result = []
        for projection in self._make():
            position = self._models.position(projection.name)
            result.append(ProjectionStatus(
                name=projection.name, version=projection.version,
                built_version=built.get(projection.name), generation=generation,
                position=position, head=head, lag=max(0, head - position)))
        return result

    def outdated(self) -> list[str]:
        """Projections whose live generation was built by another version of their code
        (a generation that was never built has nothing to be outdated)."""
        built = self._models.versions()
        return [p.name for p in self._make()
                if p.name in built and built[p.name] != p.version]

    def current(self) -> RebuildRun | None:
        """The rebuild in progress, this process's or another's."""
        with self._lock:
            mine = next((r for r in self._runs if r.status == "in_progress"), None)
        if mine is not None:
            return mine
        self._settle_orphans()
        return next(iter(self._store.in_progress()), None)

    def get(self, run_id: str) -> RebuildRun | None:
        with self._lock:
            mine = next((r for r in self._runs if r.id == run_id), None)
        if mine is not None:
            return mine
        self._settle_orphans()
        return self._store.get(run_id)

    def recent(self, limit: int = 10) -> list[RebuildRun]:
        """The latest runs of every process, newest first (this process's as they are
        now, the others' as last shared)."""
        self._settle_orphans()
        with self._lock:
            mine = {r.id: r for r in self._runs}
        return [mine.get(run.id, run) for run in self._store.recent(limit)]

    def _settle_orphans(self) -> None:
        """Runs stored as in progress by processes that died: the rebuild lock is free
        while none runs (a run is stored only under it, and ends stored before it is
        released), so they are failed."""
        with self._lock:
            mine = {r.id for r in self._runs if r.status == "in_progress"}
        others = [run for run in self._store.in_progress() if run.id not in mine]
        if not others:
            return
        try:
            lock = self._try_lock()
        except RebuildInProgress:
            return  # someone's runs; the latest is theirs
        try:
            for run in others:
                run.status = "failed"
                run.error = INTERRUPTED
                run.finished_at = self._now()
                self._store.save(run)
        finally:
            lock.release()

    # -- running ------------------------------------------------------------------------

    def start(self, projection: str | None = None, *, reason: str = "manual") -> RebuildRun:
        """Start a rebuild in a background thread. Raises RebuildInProgress when one
        runs, UnknownProjection for a name that is not ours."""
        run, lock = self._claim(projection, reason)
        self._thread(run, lock, self._replay_for(self._log.head()))
        return run

    def start_following(self, *, reason: str) -> FollowingRebuild | None:
        """Start a rebuild whose replay follows the log while something else fills it,
        in a child process (a thread would only take turns with the filler). None when
        REBUILD_WORKER=thread: rebuild after the filling instead. Raises
        RebuildInProgress when one runs."""
        if self._settings.rebuild_worker == "thread":
            return None
        run, lock = self._claim(None, reason)
        replay = ChildReplay(self._settings, batch_size=self._batch_size, hold=True,
                             carry_from=self._models.location)
        return FollowingRebuild(run, replay, self._thread(run, lock, replay))

    def _thread(self, run: RebuildRun, lock: LeaderLock,
                replay: Replay | None) -> threading.Thread:
        thread = threading.Thread(target=self._execute, args=(run, lock, None, replay),
                                  name=f"rebuild-{run.id}", daemon=True)
        with self._lock:
            self._threads[run.id] = thread
        thread.start()
        return thread

    def _replay_for(self, events: int) -> Replay | None:
        """A child process for a large log (REBUILD_WORKER=auto) or always (process)."""
        mode = self._settings.rebuild_worker
        if mode == "process" or (mode == "auto" and events >= BULK_FROM_EVENTS):
            return ChildReplay(self._settings, batch_size=self._batch_size,
                               carry_from=self._models.location)
        return None

    def run(self, projection: str | None = None, *, reason: str = "manual",
            on_progress: Callable[[RebuildRun], None] | None = None) -> RebuildRun:
        """Rebuild in the calling thread; returns the finished run."""
        run, lock = self._claim(projection, reason)
        self._execute(run, lock, on_progress, self._replay_for(self._log.head()))
        return run

    def shutdown(self, timeout: float = 30.0) -> None:
        """Wait for rebuilds of this process to end before their stores close."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def wait(self, run_id: str, timeout: float | None = None) -> RebuildRun | None:
        with self._lock:
            thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(run_id)

    def rebuild_outdated(self, *, background: bool = True) -> RebuildRun | None:
        """At startup: rebuild when a projection's version changed. None when nothing
        is outdated or another process is already rebuilding."""
        names = self.outdated()
        if not names:
            return None
        log.warning("projection version changed (%s); rebuilding the read models",
                    ", ".join(names))
        try:
            if background:
                return self.start(reason="version changed")
            return self.run(reason="version changed")
        except RebuildInProgress:
            log.info("a rebuild is already running elsewhere")
            return None

    def verify(self, on_progress: Callable[[RebuildProgress], None] | None = None,
               ) -> tuple[int, list[TableDifference]]:
        lock = self._try_lock()
        try:
            return verify(self._log, self._models, self._make, batch_size=self._batch_size,
                          on_progress=on_progress)
        finally:
            lock.release()

    def _try_lock(self) -> LeaderLock:
        lock = LeaderLock(self._settings, purpose="rebuild")
        already = threading.Event()
        already.set()  # one attempt: a conflict answers at once
        if not lock.acquire(already):
            raise RebuildInProgress("a rebuild is already running")
        return lock

    def _claim(self, projection: str | None, reason: str) -> tuple[RebuildRun, LeaderLock]:
        if projection is not None and projection not in self.projection_names():
            raise UnknownProjection(
                f"unknown projection {projection!r}; known: "
                + ", ".join(self.projection_names()))
        with self._lock:
            if any(r.status == "in_progress" for r in self._runs):
                raise RebuildInProgress("a rebuild is already running")
            lock = self._try_lock()
            try:
                run = RebuildRun(id="", projection=projection, reason=reason,
                                 started_at=self._now())
                run.id = self._store.create(run)
                self._store.save(run)
            except BaseException:
                lock.release()
                raise
            self._runs.append(run)
            del self._runs[:-self._keep]
        return run, lock

    def _execute(self, run: RebuildRun, lock: LeaderLock,
                 on_progress: Callable[[RebuildRun], None] | None,
                 replay: Replay | None) -> None:
        shared = time.monotonic()

        def update(progress: RebuildProgress) -> None:
            nonlocal shared
            run.generation = progress.generation
            run.phase = progress.phase
            run.events_done = progress.events_done
            run.events_total = progress.events_total
            run.rate = progress.rate
            run.eta_seconds = progress.eta_seconds
            if time.monotonic() - shared >= SHARE_EVERY_SECONDS:
                shared = time.monotonic()
                self._share(run)
            if on_progress is not None:
                on_progress(run)

        try:
            # Every projection shares one generation, so rebuilding one rebuilds the
            # generation; naming one only checks that it exists (ADR 0003).
            rebuild(self._log, self._models, self._make, batch_size=self._batch_size,
                    on_progress=update, replay=replay)
            run.status = "completed"
        except ReplayAbandoned as exc:  # its caller gave up on it, and said why
            run.status = "failed"
            run.error = str(exc)
        except Exception as exc:  # the live generation is untouched; report and go on
            log.exception("rebuild %s failed", run.id)
            run.status = "failed"
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            run.finished_at = self._now()
            run.eta_seconds = None
            try:
                self._share(run)  # stored ended before the lock is free (_settle_orphans)
            finally:
                lock.release()

    def _share(self, run: RebuildRun) -> None:
        try:
            self._store.save(run)
        except Exception:  # the others see stale progress; the rebuild goes on
            log.warning("could not share rebuild %s's progress", run.id, exc_info=True)

    def _now(self) -> str:
        when = datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)
        return when.isoformat(timespec="seconds").replace("+00:00", "Z")
