"""One repo read again from its PDS when the firehose shows a gap in it.

A commit whose ``since`` is not the rev the appview last saw of that repo (a commit was
missed), whose ``prevData`` is not the tree the last commit left, a ``#sync`` naming
another commit, or a commit the appview cannot check at all (``tooBig``, no signing key)
means the log may lack some of the repo's changes. The repo is then read through
``getRepo`` and brought up to date by full_sync's own per-repo sync (``FullSync.sync_repo``:
the same comparison with the log, the same rev rules against live events), recorded as a
backfill run of type ``repo_sync`` with its reason, its repo, its outcome and any error.

Requests are queued, one per repo at a time (a repo already waiting is not queued
again), and read one after another in the background, so the stream is never held up.
A run a crash interrupted is read again when the worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from appview.backfill.fetcher import PdsFetcher
from appview.backfill.full_sync import FullSync, RepoWriter
from appview.backfill.progress import REPO_SYNC, BackfillStore
from appview.backfill.resolver import DidResolver
from appview.clock import Clock
from appview.settings import Settings
from events.lexicon import LexiconValidator
from events.log import EventLog

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000  # repos waiting; past it the oldest request is dropped (and counted)


@dataclass
class ResyncStatus:
    requested: int = 0
    completed: int = 0
    failed: int = 0
    dropped: int = 0
    queued: int = 0
    last: list[str] = field(default_factory=list)  # the last few "did: reason" lines


class RepoResyncs:
    def __init__(self, settings: Settings, event_log: EventLog, validator: LexiconValidator,
                 clock: Clock, resolver: DidResolver, fetcher: PdsFetcher,
                 store: BackfillStore) -> None:
        self._sync = FullSync(event_log, validator, settings.forum_did, store, resolver,
                              fetcher, clock, concurrency=1)
        self._log = event_log
        self._store = store
        self._queue: OrderedDict[str, str] = OrderedDict()
        self._wake = asyncio.Event()
        self.status = ResyncStatus()

    def request(self, did: str, reason: str) -> None:
        """Queue ``did`` to be read again (a repo already queued keeps its first reason)."""
        self.status.requested += 1
        if did in self._queue:
            return
        log.warning("re-reading %s from its PDS: %s", did, reason)
        self._queue[did] = reason
        if len(self._queue) > MAX_QUEUED:
            self._queue.popitem(last=False)
            self.status.dropped += 1
        self.status.queued = len(self._queue)
        self._wake.set()

    @property
    def idle(self) -> bool:
        return not self._queue and not self._wake.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        """Read the queued repos until ``stop``; first those a crash interrupted."""
        for run in await asyncio.to_thread(self._store.unfinished, (REPO_SYNC,)):
            await self._read(run.id, await asyncio.to_thread(self._store.repos, run.id))
        while not stop.is_set():
            if not self._queue:
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                try:
                    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (waiter, stopper):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                continue
            did, reason = self._queue.popitem(last=False)
            self.status.queued = len(self._queue)
            run = await asyncio.to_thread(self._store.create, REPO_SYNC, reason=reason)
            await asyncio.to_thread(self._store.add_repos, run.id, [did])
            await self._read(run.id, [did])
            self.status.last = ([*self.status.last, f"{did}: {reason}"])[-5:]

    async def _read(self, run_id: str, dids: list[str]) -> None:
        writer = RepoWriter(self._log, self._store, run_id)
        errors: list[str] = []
        try:
            for did in dids:
                error = await self._sync.sync_repo(run_id, did, writer)
                if error is not None:
                    errors.append(error)
        except Exception as exc:  # the run fails; the stream goes on
            log.exception("re-reading %s failed", dids)
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await writer.close()
        if errors:
            self.status.failed += 1
            await asyncio.to_thread(self._store.finish, run_id, status="failed",
                                    error_message="; ".join(errors)[:2000])
        else:
            self.status.completed += 1
            await asyncio.to_thread(self._store.finish, run_id, status="completed")
