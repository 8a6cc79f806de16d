"""Running projections over the log: to its head, or following it until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from events.log import EventLog
from events.model import Logged
from projections.collector import collecting_rarely
from projections.prepare_process import PREPARE_IN_PROCESS_FROM, LogOpener, prepared_batches


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
    open_log: LogOpener | None = None,
    prepare_from: int = PREPARE_IN_PROCESS_FROM,
    sources: dict[str, int] | None = None,
) -> int:
    """Apply every event past each projection's position, up to the log's head as read
    at the start (or ``until``), in batches; returns how many events were applied
    (summed over projections). ``progress(done, total)`` is called after each batch.

    With ``open_log``, a projection that can be prepared elsewhere (a ``preparer`` and
    ``apply_prepared``) and has at least ``prepare_from`` events to go gets its
    batches read, decoded and prepared by a second process while it applies the batch
    before (``projections.prepare_process``): for bulk loads, whose writer is alone.
    ``sources``, when given, has the events applied in this process added up by their
    source (a prepared batch's events, read elsewhere, are not)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    head = log.head() if until is None else until
    starts = {id(p): p.position() for p in projections}
    total = sum(max(0, head - start) for start in starts.values())
    done = 0
    applied = 0
    for projection in projections:
        position = starts[id(projection)]
        prepare_in = open_log if head - position >= prepare_from else None
        for count, last in _apply_batches(log, projection, position, batch_size, head,
                                          prepare_in, sources):
            applied += count
            done += last - position
            position = last
            if progress is not None:
                progress(done, total)
    return applied


def _apply_batches(log: EventLog, projection: Projection, position: int, batch_size: int,
                   head: int, open_log: LogOpener | None,
                   sources: dict[str, int] | None = None) -> Iterator[tuple[int, int]]:
    """Apply ``projection``'s batches from ``position`` to ``head``, yielding (events
    applied, last position) after each: prepared by a second process when ``open_log``
    is given and the projection can take prepared batches, else read here."""
    preparer = getattr(projection, "preparer", None)
    apply_prepared = getattr(projection, "apply_prepared", None)
    if open_log is not None and preparer is not None and apply_prepared is not None:
        for prepared in prepared_batches(open_log, preparer(), position, batch_size, head):
            apply_prepared(prepared)
            yield prepared.count, prepared.last_position
        return
    while position < head:
        batch = log.read(position, batch_size, until=head)
        if not batch:
            return
        projection.apply(batch)
        if sources is not None:
            for logged in batch:
                source = logged.event.source
                sources[source] = sources.get(source, 0) + 1
        position = batch[-1].position
        if getattr(projection, "skips_ahead", False):
            # it may record a position past its batch (the first batch of the search
            # and notifications projections builds from what the forum projection
            # holds): read on from there
            position = min(head, max(position, projection.position()))
        yield len(batch), position


class BulkLoadable(Protocol):
    """Read models that can take a replay into empty tables in bulk."""

    def bulk_load(self, *, private: bool = False) -> AbstractContextManager[None]: ...


BULK_FROM_EVENTS = 20_000
"""A first projection of at least this many events is loaded in bulk: below it the
dropped indexes cost more to rebuild than they save."""


def project_from_start(
    log: EventLog,
    projections: Sequence[Projection],
    read_models: BulkLoadable,
    *,
    batch_size: int = 2000,
    until: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    bulk_from: int = BULK_FROM_EVENTS,
    open_log: LogOpener | None = None,
    private: bool = False,
) -> int:
    """:func:`project_to_head`, inside ``read_models.bulk_load()`` when every projection
    is still at position 0 and the log holds at least ``bulk_from`` positions to apply: a
    first projection of a large log (a replay, an imported export, a fresh appview's
    ``atbb project``) is a load into empty tables, not an update, and pays its indexes
    and statistics once at the end (with its batches prepared by a second process, given
    ``open_log``: measured +15 to +40 % on both backends, ADR 0008). Otherwise it is
    :func:`project_to_head` itself. ``private``: the read models are new and serve
    nothing meanwhile (``ReadModelStore.bulk_load``)."""
    head = log.head() if until is None else until
    fresh = bool(projections) and all(p.position() == 0 for p in projections)
    bulk = fresh and head >= bulk_from
    with loading_in_bulk(read_models, private=private) if bulk else nullcontext():
        return project_to_head(log, projections, batch_size=batch_size, until=until,
                               progress=progress,
                               open_log=open_log if bulk else None)


@contextmanager
def loading_in_bulk(read_models: BulkLoadable, *, private: bool = False) -> Iterator[None]:
    """Around every replay into empty tables: the store's ``bulk_load()``, with the
    cyclic garbage collector run rarely meanwhile (``projections.collector``).
    ``private``: see ``ReadModelStore.bulk_load``."""
    with read_models.bulk_load(private=private), collecting_rarely():
        yield


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
