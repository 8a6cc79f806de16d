"""Starting, running, resuming and reporting backfills (one at a time per appview).

The backfill lock (a PostgreSQL advisory lock, or a ``flock`` beside the SQLite files) is
held for a whole run, so the admin API, `atbb backfill` and startup never run two at
once, across processes. A run whose process died stays ``in_progress`` in its table with
the lock free: ``resume_interrupted`` picks a full_sync up with the repos it had not
finished, and a catch_up starts again from the stored cursor (which it advanced as it
went)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from appview.backfill.catch_up import catch_up
from appview.backfill.fetcher import PdsFetcher
from appview.backfill.full_sync import FullSync
from appview.backfill.progress import KINDS, BackfillError, BackfillRun, BackfillStore
from appview.backfill.resolver import DidResolver
from appview.clock import Clock
from appview.handles import HandleResolver
from appview.ingest.appender import LineAppender
from appview.ingest.firehose import latest_seq
from appview.leader import LeaderLock
from appview.rebuilds import FollowingRebuild, RebuildInProgress, RebuildManager
from appview.settings import Settings
from events.lexicon import LexiconValidator
from events.log import CursorUpdate, EventLog
from projections.runner import BULK_FROM_EVENTS

log = logging.getLogger(__name__)

NOT_NEEDED = "No backfill needed. Use ?force=catch_up or ?force=full_sync to override."


def _iso_to_us(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000)


class BackfillInProgress(RuntimeError):
    """A backfill is already running (here or in another process)."""


class SyncFollower:
    """The rebuild a full_sync ends with, started while the sync still fills the log (a
    replay process that follows the log, ``RebuildManager.start_following``), so only
    the tail is left to replay when the last repo is in. Started at once with
    REBUILD_WORKER=process; with auto, once the sync has repos to read by the hundred or
    the log holds a bulk load's worth of events (a small sync's rebuild is quicker
    in-process than a process's start-up)."""

    CHECK_EVERY = 20  # repos between looks at the log's size
    FOLLOW_FROM_REPOS = 100

    def __init__(self, rebuilds: RebuildManager | None, settings: Settings,
                 event_log: EventLog, repos_total: Callable[[], int]) -> None:
        self._rebuilds = rebuilds
        self._settings = settings
        self._log = event_log
        self._repos_total = repos_total
        self._following: FollowingRebuild | None = None
        self._declined = rebuilds is None or settings.rebuild_worker == "thread"
        self._calls = 0
        self._total: int | None = None

    def consider(self) -> None:
        """Start following if it is time to (cheap when it is not)."""
        if self._declined or self._following is not None or self._rebuilds is None:
            return
        self._calls += 1
        if self._settings.rebuild_worker == "auto":
            # looked at after the first repo (the totals are known by then), then every
            # CHECK_EVERY repos; the total is read once (a connection on PostgreSQL)
            if self._calls < 2 or (self._calls - 2) % self.CHECK_EVERY:
                return
            if self._total is None:
                self._total = self._repos_total()
            if self._total < self.FOLLOW_FROM_REPOS and self._log.head() < BULK_FROM_EVENTS:
                return
        try:
            self._following = self._rebuilds.start_following(reason="full_sync")
        except RebuildInProgress:  # someone else's: rebuild after the sync instead
            self._declined = True
        if self._following is None:
            self._declined = True

    def abandon(self, why: str) -> None:
        if self._following is not None:
            self._following.abandon()
            self._following.wait()
            log.info("the rebuild following the full_sync was stopped: %s", why)

    def finish(self) -> bool:
        """Release the following rebuild and wait for its switch; False when none was
        started (the caller rebuilds). Raises when it failed."""
        if self._following is None:
            return False
        self._following.release()
        result = self._following.wait()
        if result.status != "completed":
            raise RuntimeError(f"the rebuild after full_sync failed: {result.error}")
        return True


@dataclass
class BackfillManager:
    settings: Settings
    event_log: EventLog
    validator: LexiconValidator
    clock: Clock
    make_appender: Callable[[], LineAppender]
    rebuilds: RebuildManager | None
    rebuild_after: Callable[[], None] | None = None  # without generations: project
    # told of each durable step of a run, as (run id, step): "claimed", then for a
    # full_sync "listed", "repo" (per repo), "synced" (every repo read), "cursor",
    # "rebuilt", and "finished" for every kind; a step after a kill is redone
    on_step: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        self.store = BackfillStore(self.settings, self.clock)
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self.last_fetcher: PdsFetcher | None = None

    # -- what to do ---------------------------------------------------------------------

    def detect(self) -> str | None:
        """Gap detection: no cursor of the ingest source → full_sync; a cursor older than
        BACKFILL_CURSOR_MAX_AGE_HOURS → catch_up; otherwise nothing. A Jetstream cursor
        is a time; a firehose cursor is a seq, so its age is that of its last write."""
        state = self.event_log.cursor(self.settings.ingest_cursor_source)
        if state is None or self.store.full_sync_owed():
            # a failed full_sync (the Forum account's repo unreadable, say) is owed even
            # when live ingest wrote a cursor while it ran
            return "full_sync"
        written = state.updated_at if self.settings.ingest_source == "firehose" \
            else state.value
        age_hours = (self.clock.now_us() - written) / 3_600_000_000
        if age_hours > self.settings.backfill_cursor_max_age_hours:
            return "catch_up"
        return None

    # -- reading ------------------------------------------------------------------------

    def get(self, run_id: str) -> BackfillRun | None:
        return self.store.get(run_id)

    def errors(self, run_id: str, limit: int = 1000) -> list[BackfillError]:
        return self.store.errors(run_id, limit)

    def recent(self, limit: int = 20) -> list[BackfillRun]:
        return self.store.recent(limit)

    def running(self) -> BackfillRun | None:
        with self._lock:
            live = [run_id for run_id, t in self._threads.items() if t.is_alive()]
        return self.store.get(live[0]) if live else None

    # -- running ------------------------------------------------------------------------

    def start(self, kind: str) -> BackfillRun:
        """Start a backfill in a background thread; returns its run at once. Raises
        BackfillInProgress when one runs, ValueError for an unknown kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown backfill type {kind!r}; expected one of {KINDS}")
        lock = self._try_lock()
        try:
            run = self._claim(kind)
        except BaseException:
            lock.release()
            raise
        self._spawn(run, lock)
        return run

    def run(self, kind: str, *, on_progress: Callable[[BackfillRun], None] | None = None,
            ) -> BackfillRun:
        """Run a backfill in the calling thread (the CLI); returns the finished run."""
        if kind not in KINDS:
            raise ValueError(f"unknown backfill type {kind!r}; expected one of {KINDS}")
        lock = self._try_lock()
        try:
            run = self._claim(kind)
            self._execute(run, on_progress=on_progress)
        finally:
            lock.release()
        finished = self.store.get(run.id)
        assert finished is not None
        return finished

    def resume_interrupted(self) -> BackfillRun | None:
        """At startup: carry on with a run whose process died. None if there is none or
        another process is running one."""
        unfinished = self.store.unfinished()
        if not unfinished:
            return None
        try:
            return self.start(unfinished[-1].type)
        except BackfillInProgress:
            return None

    def start_if_needed(self) -> BackfillRun | None:
        """At startup: resume an interrupted run, else start what gap detection asks
        for; None when nothing is needed or another process is on it."""
        resumed = self.resume_interrupted()
        if resumed is not None:
            return resumed
        kind = self.detect()
        if kind is None:
            return None
        log.warning("gap detection at startup: starting %s", kind)
        try:
            return self.start(kind)
        except BackfillInProgress:
            return None

    def wait(self, run_id: str, timeout: float | None = None) -> BackfillRun | None:
        with self._lock:
            thread = self._threads.get(run_id)
        if thread is not None:
            thread.join(timeout)
        return self.store.get(run_id)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Wait for runs of this process to end before their resources close."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def _try_lock(self) -> LeaderLock:
        lock = LeaderLock(self.settings, purpose="backfill")
        once = threading.Event()
        once.set()
        if not lock.acquire(once):
            raise BackfillInProgress("a backfill is already in progress")
        return lock

    def _claim(self, kind: str) -> BackfillRun:
        """The run to carry on (an interrupted one of this kind) or a new one. Runs of
        another kind that were interrupted are closed as failed."""
        resumed = None
        for run in self.store.unfinished():
            if run.type == kind and resumed is None:
                resumed = run
            else:
                self.store.finish(run.id, status="failed",
                                  error_message="interrupted, and superseded by a new run")
        if resumed is not None:
            log.info("resuming %s backfill %s", kind, resumed.id)
            claimed = resumed
        else:
            claimed = self.store.create(kind)
        self._step(claimed, "claimed")
        return claimed

    def _step(self, run: BackfillRun, name: str) -> None:
        if self.on_step is not None:
            self.on_step(run.id, name)

    def _spawn(self, run: BackfillRun, lock: LeaderLock) -> None:
        def target() -> None:
            try:
                self._execute(run, on_progress=None)
            finally:
                lock.release()

        thread = threading.Thread(target=target, name=f"backfill-{run.id}", daemon=True)
        with self._lock:
            self._threads[run.id] = thread
        thread.start()

    def _execute(self, run: BackfillRun, *,
                 on_progress: Callable[[BackfillRun], None] | None) -> None:
        def report() -> None:
            if on_progress is not None:
                current = self.store.get(run.id)
                if current is not None:
                    on_progress(current)

        try:
            if run.type == "full_sync":
                started_us = _iso_to_us(run.started_at)
                # the firehose's place at the start (its cursor is a seq, not a time)
                start_seq = self._firehose_position()
                follower = SyncFollower(
                    self.rebuilds, self.settings, self.event_log,
                    lambda: (self.store.get(run.id) or run).dids_total)
                try:
                    follower.consider()

                    def on_sync_step(name: str) -> None:
                        self._step(run, name)
                        if name == "repo":
                            report()
                            follower.consider()

                    asyncio.run(self._full_sync(run, on_step=on_sync_step))
                    self._step(run, "synced")
                    # Only now is the sync's data in the log. The repos are read as of
                    # the run's start: the firehose resumes from there, so live ingest
                    # (and gap detection) carry on from it.
                    self.event_log.append([], CursorUpdate(
                        self.settings.ingest_cursor_source,
                        start_seq if self.settings.ingest_source == "firehose"
                        else started_us))
                    self._step(run, "cursor")
                except BaseException:
                    follower.abandon("the full_sync it followed failed")
                    raise
                if not follower.finish():
                    self._rebuild()
                self._step(run, "rebuilt")
            else:
                asyncio.run(self._catch_up(run, report))
            self.store.finish(run.id, status="completed")
            self._step(run, "finished")
        except Exception as exc:  # the run fails; what it appended stays in the log
            log.exception("backfill %s failed", run.id)
            self.store.finish(run.id, status="failed",
                              error_message=f"{type(exc).__name__}: {exc}")
        report()

    def _firehose_position(self) -> int:
        """Where live ingest resumes after a full_sync on the firehose: the seq its host
        gave last when the sync started; 0 (what the host keeps) if the host said
        nothing within a few seconds (a quiet PDS, whose history is short)."""
        if self.settings.ingest_source != "firehose":
            return 0
        seq = asyncio.run(latest_seq(self.settings.firehose_url))
        return 0 if seq is None else seq

    async def _full_sync(self, run: BackfillRun, *,
                         on_step: Callable[[str], None]) -> None:
        async with aiohttp.ClientSession() as session:
            fetcher = PdsFetcher(session, rate=self.settings.backfill_rate_limit)
            self.last_fetcher = fetcher
            sync = FullSync(self.event_log, self.validator, self.settings.forum_did,
                            self.store, DidResolver(self.settings, session), fetcher,
                            self.clock, self.settings.backfill_concurrency,
                            handles=HandleResolver(self.settings, session),
                            relay_url=self.settings.relay_url, on_step=on_step)
            await sync.run(run.id)

    async def _catch_up(self, run: BackfillRun, report: Callable[[], None]) -> None:
        counted = 0

        def progress(stored: int) -> None:
            nonlocal counted
            if stored > counted:
                self.store.add_records(run.id, stored - counted)
                counted = stored
                report()

        stored = await catch_up(self.settings, self.event_log, self.make_appender,
                                self.clock, self.validator, on_progress=progress)
        progress(stored)

    def _rebuild(self) -> None:
        """Fresh read models from the log the sync completed: a new generation, swapped
        in when caught up (the forum keeps serving the old one meanwhile)."""
        if self.rebuilds is not None:
            while True:
                try:
                    result = self.rebuilds.run(reason="full_sync")
                    break
                except RebuildInProgress:  # someone's rebuild predates our events: redo
                    time.sleep(1.0)
            if result.status != "completed":
                raise RuntimeError(f"the rebuild after full_sync failed: {result.error}")
        elif self.rebuild_after is not None:
            self.rebuild_after()
