"""What the writer does besides ingesting.

Of all the processes of an appview (the workers of `atbb serve --workers N`, `atbb
serve` on other machines, `atbb ingest`), the one holding the ingest leader lock is the
*writer*: it ingests and projects, and it owns the work that keeps the read models and
the log whole. It does that work when it takes the role (at startup, or when the previous
writer died) and looks again every few seconds while it holds it, so work a dead process
left is picked up without a restart:

- a projection whose version changed is rebuilt (the old generation serves meanwhile);
- a backfill whose process died is resumed from where it was (and, at takeover, gap
  detection starts one if the log needs it).

Backfills and rebuilds started from the admin API run in the worker that received the
request, under their own locks (one of each at a time in the whole appview, as `atbb
backfill` and `atbb rebuild` in a terminal do); their runs are in the database, so every
process reports them, and a backfill left by a dead worker is resumed here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from appview.bootstrap import Services
from appview.rebuilds import RebuildInProgress

log = logging.getLogger(__name__)

# How often the writer looks for work another process left.
DUTY_SECONDS = 5.0


class WriterDuties:
    """``lead()`` at each takeover, ``tick()`` every DUTY_SECONDS while leading; both
    block (run them in a thread) and never raise."""

    def __init__(self, services: Services, *, backfill: bool) -> None:
        self._services = services
        self._backfill = backfill
        self._waiting_said = False

    def lead(self) -> None:
        self._rebuild_outdated()
        if self._backfill and self._services.backfills is not None:
            self._guarded("gap detection", self._services.backfills.start_if_needed)

    def tick(self) -> None:
        self._rebuild_outdated()
        if self._backfill and self._services.backfills is not None:
            self._guarded("resuming a backfill", self._services.backfills.resume_interrupted)

    def _rebuild_outdated(self) -> None:
        rebuilds = self._services.rebuilds
        if rebuilds is None:
            return

        def rebuild() -> None:
            if rebuilds.current() is not None or not rebuilds.outdated():
                self._waiting_said = False
                return
            try:
                rebuilds.start(reason="version changed")
            except RebuildInProgress:
                if not self._waiting_said:  # once, not every few seconds
                    log.info("projection version changed; another process's rebuild"
                             " runs, waiting for it")
                    self._waiting_said = True
                return
            log.warning("projection version changed; rebuilding the read models (the"
                        " old generation serves meanwhile)")

        self._guarded("rebuilding outdated read models", rebuild)

    @staticmethod
    def _guarded(what: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # the writer goes on ingesting; the next tick tries again
            log.exception("%s failed", what)
