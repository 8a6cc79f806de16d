"""Projecting the live read models from one process's several callers: the live
projector loop (``appview.live``) and the record writer's read-your-writes
(``appview.writes``) both call :meth:`SharedProjector.project`, which lets one run at a
time. Two runs at once would race to record the same tracked position and one would
fail (the tracking table refuses a position that does not advance)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from events.log import EventLog
from projections.runner import Projection, project_to_head

log = logging.getLogger(__name__)


class SharedProjector:
    def __init__(self, event_log: EventLog, projections: Sequence[Projection], *,
                 batch_size: int) -> None:
        self._log = event_log
        self._projections = projections
        self._batch_size = batch_size
        self._lock = threading.Lock()
        # the log position every projection had applied when a run of ours ended: writes
        # waiting for the lock behind one that projected theirs too need not run again
        self._reached = 0
        # events this process applied to the read models, by their source (metrics)
        self.projected: dict[str, int] = {}
        # told the position every projection reached at the end of each run (the live
        # streams' notifier, appview.notifier), from the thread that ran it
        self._listeners: list[Callable[[int], None]] = []

    def subscribe(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[int], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def project(self) -> int:
        """Apply every event the log holds past each projection's position (blocking:
        call it from a worker thread under asyncio); the events applied."""
        with self._lock:
            return self._run()

    def project_through(self, position: int) -> None:
        """Make sure the events up to ``position`` are applied: nothing to do when a run
        of this process (the one the caller waited behind, often) already did."""
        if self._reached >= position:
            return
        with self._lock:
            if self._reached < position:
                self._run()

    def _run(self) -> int:
        head = self._log.head()
        applied = project_to_head(self._log, self._projections,
                                  batch_size=self._batch_size, until=head,
                                  sources=self.projected)
        self._reached = max(self._reached, head)
        for listener in list(self._listeners):
            try:
                listener(head)
            except Exception:  # a listener's fault is not the projection's
                log.exception("a projector listener failed")
        return applied

    def position(self) -> int:
        """The lowest position the projections have applied: every event at or below it
        is in every read model."""
        return min((p.position() for p in self._projections), default=self._log.head())
