"""Following the network live: the consumer of the ingest source (Jetstream or the
firehose) appends, the projector follows the log, both in the running process (`atbb
serve`, `atbb ingest`, `atbb demo`).

Only one process of an appview ingests at a time: given the ingest leader lock, a
process first waits for it (serving what the leader writes meanwhile: a follower), then
ingests and projects for as long as it holds it, and goes back to following if it
loses it (a PostgreSQL restart drops the lock's session)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Literal

from appview.backfill.manager import BackfillInProgress
from appview.bootstrap import Services
from appview.ingest.consumer import (
    WANTED_COLLECTIONS,
    ReconnectPolicy,
    StreamConsumer,
)
from appview.ingest.sources import make_consumer
from appview.leader import LeaderLock
from appview.writer import DUTY_SECONDS, WriterDuties

log = logging.getLogger(__name__)

Role = Literal["starting", "leader", "follower"]

# How often the leader checks that its lock is still its own.
LEADER_CHECK_SECONDS = 0.5


@dataclass
class ProjectorStatus:
    runs: int = 0
    last_error: str | None = None
    failures_in_a_row: int = 0
    failing_since: float | None = None  # unix seconds of the first failure in a row
    retry_in: float | None = None  # seconds until the next attempt while failing


@dataclass(frozen=True)
class ProjectorBackoff:
    """Waits between attempts while projecting fails (a read-model file that cannot be
    written, a full disk): doubling from ``initial`` to ``maximum``, so a lasting fault
    neither spins the CPU nor floods the log."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.initial * 2.0 ** max(0, failures - 1))


class LiveIngest:
    """Runs the consumer and the projector until stopped. The consumer signals each
    committed batch so the projector applies it at once (visibility well under a second);
    a slow poll catches events appended by another process. With ``leader``, both run
    only while this process holds the ingest leader lock."""

    def __init__(self, services: Services, *, jetstream_url: str | None = None,
                 url: str | None = None,
                 poll_seconds: float = 0.5, initial_cursor: int | None = None,
                 heartbeat: float | None = None, policy: ReconnectPolicy | None = None,
                 rng: random.Random | None = None,
                 wanted_collections: tuple[str, ...] = WANTED_COLLECTIONS,
                 project: bool = True, leader: LeaderLock | None = None,
                 projector_backoff: ProjectorBackoff | None = None,
                 verify: bool = True, duties: WriterDuties | None = None,
                 duty_seconds: float = DUTY_SECONDS) -> None:
        """``url`` overrides the source's URL (``jetstream_url`` too, for Jetstream);
        ``verify=False`` is the benchmark's unchecked firehose baseline; ``duties`` are
        the writer's other work (``appview.writer``), done while this process leads."""
        settings = services.settings
        self.services = services
        self._project = project
        self._poll_seconds = poll_seconds
        self._leader = leader
        self._backoff = projector_backoff or ProjectorBackoff()
        self._duties = duties
        self._duty_seconds = duty_seconds
        self._new_events = asyncio.Event()
        self.role: Role = "starting" if leader is not None else "leader"
        self.consumer: StreamConsumer = make_consumer(
            settings,
            event_log=services.event_log,
            appender=services.appender(cursor_source=settings.ingest_cursor_source,
                                       batch_size=None),
            validator=services.validator,
            clock=services.clock,
            url=url or (jetstream_url if settings.ingest_source == "jetstream" else None),
            on_batch=self._new_events.set,
            on_outdated_cursor=self._outdated_cursor,
            initial_cursor=initial_cursor,
            heartbeat=heartbeat,
            policy=policy,
            rng=rng,
            wanted_collections=wanted_collections,
            verify=verify,
        )
        self.projector = ProjectorStatus()

    def _outdated_cursor(self) -> None:
        """The firehose lost events we had not read (our cursor is past its retention):
        a full_sync brings back what they changed."""
        backfills = self.services.backfills
        if backfills is None:
            return
        try:
            backfills.start("full_sync")
        except BackfillInProgress:
            log.warning("the firehose lost events; a backfill is already running")

    @property
    def leader_description(self) -> str | None:
        return None if self._leader is None else self._leader.description

    async def run(self, stop: asyncio.Event) -> None:
        if self._leader is None:
            await self._run_leading(stop)
            return
        leader = self._leader
        # acquire() blocks a thread and takes a threading.Event: mirror ``stop`` into one
        stopped = threading.Event()
        mirror = asyncio.create_task(_mirror(stop, stopped))
        try:
            while not stop.is_set():
                self.role = "follower"
                if not await asyncio.to_thread(leader.acquire, stopped):
                    break
                self.role = "leader"
                log.info("ingest leader (%s, pid %d)", leader.description, os.getpid())
                try:
                    await self._run_leading(stop, leader)
                finally:
                    await asyncio.to_thread(leader.release)
        finally:
            self.role = "follower"
            mirror.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mirror

    async def _run_leading(self, stop: asyncio.Event, leader: LeaderLock | None = None,
                           ) -> None:
        """Ingest (and project) until ``stop``, or until ``leader`` is lost."""
        inner = asyncio.Event()
        tasks = [self.consumer.run(inner)]
        if self._project:  # else projections run in their own process (`atbb project -f`)
            tasks.append(self._project_loop(inner))
        if self._duties is not None:
            tasks.append(self._duty_loop(inner, self._duties))
        watcher = asyncio.create_task(self._watch(stop, inner, leader))
        try:
            await asyncio.gather(*tasks)
        finally:
            inner.set()
            await watcher

    @staticmethod
    async def _watch(stop: asyncio.Event, inner: asyncio.Event,
                     leader: LeaderLock | None) -> None:
        while not inner.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=LEADER_CHECK_SECONDS)
            if stop.is_set():
                break
            if leader is not None and not await asyncio.to_thread(leader.alive):
                log.error("lost the ingest leader lock; following until it is ours again")
                break
        inner.set()

    async def _duty_loop(self, stop: asyncio.Event, duties: WriterDuties) -> None:
        await asyncio.to_thread(duties.lead)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._duty_seconds)
            if not stop.is_set():
                await asyncio.to_thread(duties.tick)

    async def _project_loop(self, stop: asyncio.Event) -> None:
        services = self.services
        status = self.projector
        wait = self._poll_seconds
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                if status.failures_in_a_row:  # failing: only the back-off ends the wait
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                else:
                    await asyncio.wait_for(self._new_events.wait(), timeout=wait)
            if stop.is_set():
                return
            self._new_events.clear()
            try:
                await asyncio.to_thread(services.projector.project)
            except Exception as exc:  # a failed batch rolls back; retried after a wait
                wait = self._note_failure(exc)
                continue
            if status.failures_in_a_row:
                log.warning("projecting works again after %d failed attempts",
                            status.failures_in_a_row)
            status.runs += 1
            status.last_error = None
            status.failures_in_a_row = 0
            status.failing_since = None
            status.retry_in = None
            wait = self._poll_seconds

    def _note_failure(self, exc: Exception) -> float:
        status = self.projector
        status.failures_in_a_row += 1
        reason = f"{type(exc).__name__}: {exc}"
        delay = self._backoff.delay(status.failures_in_a_row)
        if status.failures_in_a_row == 1:
            status.failing_since = time.time()
            log.exception("projection failed; retrying in %.1fs", delay)
        elif reason != status.last_error or delay >= self._backoff.maximum:
            # one line per attempt at most, and once the waits are long, every attempt
            log.error("projection still failing (%d attempts): %s; retrying in %.1fs",
                      status.failures_in_a_row, reason, delay)
        status.last_error = reason
        status.retry_in = delay
        return delay


async def _mirror(stop: asyncio.Event, stopped: threading.Event) -> None:
    await stop.wait()
    stopped.set()
