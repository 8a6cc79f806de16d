"""Running projections over the log: to its head, or following it until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from events.log import EventLog
from events.model import Logged


class Projection(Protocol):
    """A read model folded from the log, with its tracked position."""

    name: str
    version: int

    def position(self) -> int:
        """The last log position applied (0 when none)."""
        ...

    def apply(self, batch: Sequence[Logged]) -> None:
        """Apply a batch and its last position in one transaction; events at or below
        the tracked position are skipped."""
        ...


def project_to_head(
    log: EventLog,
    projections: Sequence[Projection],
    *,
    batch_size: int = 2000,
    until: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Apply every event past each projection's position, up to the log's head as read
    at the start (or ``until``), in batches; returns how many events were applied
    (summed over projections). ``progress(done, total)`` is called after each batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    head = log.head() if until is None else until
    starts = {id(p): p.position() for p in projections}
    total = sum(max(0, head - start) for start in starts.values())
    done = 0
    applied = 0
    for projection in projections:
        position = starts[id(projection)]
        while position < head:
            batch = log.read(position, batch_size, until=head)
            if not batch:
                break
            projection.apply(batch)
            applied += len(batch)
            done += batch[-1].position - position
            position = batch[-1].position
            if progress is not None:
                progress(done, total)
    return applied


def follow(
    log: EventLog,
    projections: Sequence[Projection],
    *,
    stop: threading.Event,
    poll_interval: float = 0.2,
    batch_size: int = 2000,
) -> int:
    """Keep projecting new events until ``stop`` is set; returns the events applied."""
    applied = 0
    while not stop.is_set():
        count = project_to_head(log, projections, batch_size=batch_size)
        applied += count
        if count == 0:
            stop.wait(poll_interval)
    return applied
