"""Following the network live: the Jetstream consumer appends, the projector follows the
log, both in the running process (`atbb serve`, `atbb demo`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

from appview.bootstrap import Services
from appview.ingest.consumer import (
    CURSOR_SOURCE,
    WANTED_COLLECTIONS,
    JetstreamConsumer,
    ReconnectPolicy,
)
from projections.runner import project_to_head

log = logging.getLogger(__name__)


@dataclass
class ProjectorStatus:
    runs: int = 0
    last_error: str | None = None


class LiveIngest:
    """Runs the consumer and the projector until stopped. The consumer signals each
    committed batch so the projector applies it at once (visibility well under a second);
    a slow poll catches events appended by another process."""

    def __init__(self, services: Services, *, jetstream_url: str | None = None,
                 poll_seconds: float = 0.5, initial_cursor: int | None = None,
                 receive_timeout: float = 30.0, policy: ReconnectPolicy | None = None,
                 rng: random.Random | None = None,
                 wanted_collections: tuple[str, ...] = WANTED_COLLECTIONS,
                 project: bool = True) -> None:
        settings = services.settings
        self.services = services
        self._project = project
        self._poll_seconds = poll_seconds
        self._new_events = asyncio.Event()
        self.consumer = JetstreamConsumer(
            url=jetstream_url or settings.jetstream_url,
            event_log=services.event_log,
            appender=services.appender(cursor_source=CURSOR_SOURCE, batch_size=None),
            clock=services.clock,
            batch_size=settings.ingest_batch_size,
            batch_seconds=settings.ingest_batch_seconds,
            rewind_seconds=settings.ingest_rewind_seconds,
            compress=settings.jetstream_compress,
            on_batch=self._new_events.set,
            initial_cursor=initial_cursor,
            receive_timeout=receive_timeout,
            policy=policy,
            rng=rng,
            wanted_collections=wanted_collections,
        )
        self.projector = ProjectorStatus()

    async def run(self, stop: asyncio.Event) -> None:
        if not self._project:  # projections run in their own process (`atbb project -f`)
            await self.consumer.run(stop)
            return
        await asyncio.gather(self.consumer.run(stop), self._project_loop(stop))

    async def _project_loop(self, stop: asyncio.Event) -> None:
        services = self.services
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_events.wait(), timeout=self._poll_seconds)
            self._new_events.clear()
            try:
                await asyncio.to_thread(
                    project_to_head,
                    services.event_log,
                    services.projections,
                    batch_size=services.settings.projection_batch_size,
                )
                self.projector.runs += 1
                self.projector.last_error = None
            except Exception as exc:  # a failed batch rolls back; retry on the next tick
                self.projector.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("projection failed; will retry")
