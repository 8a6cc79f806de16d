"""Rebuilding the read models into a fresh generation, and verifying one against another.

A rebuild replays the whole log into generation N+1 while readers keep reading N, follows
the log until N+1 has caught up, then switches readers in one step (the registry) and
retires N. Nothing touches N: a rebuild that dies leaves the live generation serving and a
half-built N+1 that the next rebuild drops first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from events.log import EventLog
from projections.generations import GenerationalReadModels
from projections.readmodel import ReadModels, ReadModelStore
from projections.runner import Projection, loading_in_bulk, project_to_head
from projections.schema import TABLES
from projections.search_schema import portable_rows

# A rebuild that is this close to the head stops bulk replay and catches up normally.
SWITCH_LAG = 500


class AttachableProjection(Projection, Protocol):
    def attach(self, store: ReadModels) -> None: ...


ProjectionFactory = Callable[[], Sequence[AttachableProjection]]


class Replay(Protocol):
    """How a rebuild's bulk replay into its new generation runs: :func:`build_generation`
    in the rebuilding thread when none is given, or elsewhere (another process) as long
    as it leaves ``store`` loaded to the head as read at its start, its bulk load ended,
    and the projections' positions recorded in it."""

    def __call__(self, store: ReadModelStore, progress: RebuildProgress,
                 on_progress: Callable[[RebuildProgress], None] | None) -> None: ...


@dataclass
class RebuildProgress:
    """Where a rebuild is: ``phase`` is replaying, catching_up, switching or done."""

    generation: int
    phase: str = "starting"
    events_done: int = 0
    events_total: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events_done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        if rate <= 0:
            return None
        return max(0.0, (self.events_total - self.events_done) / rate)


def clear_unfinished(models: GenerationalReadModels) -> list[int]:
    """Drop every generation that is not live: half-built ones left by a rebuild that
    died, retired ones a crash kept from being dropped. Call only while holding the
    rebuild lock, so no other rebuild is building one of them. A retirement still in its
    grace period is waited for rather than cut short."""
    models.settle()
    live = models.live_generation()
    dropped = []
    for generation in models.registry.existing():
        if generation != live:
            models.discard(generation)
            dropped.append(generation)
    return dropped


def next_generation(models: GenerationalReadModels) -> int:
    return max([models.live_generation(), *models.registry.existing()]) + 1


def build_generation(log: EventLog, store: ReadModelStore, make: ProjectionFactory, *,
                     progress: RebuildProgress, batch_size: int,
                     until: int | None = None,
                     on_progress: Callable[[RebuildProgress], None] | None = None,
                     ) -> Sequence[AttachableProjection]:
    """Replay the log from 0 (to ``until`` or the head) into ``store`` at full speed."""
    projections = make()
    for projection in projections:
        projection.attach(store)

    def report(done: int, total: int) -> None:
        progress.events_done, progress.events_total = done, total
        if on_progress is not None:
            on_progress(progress)

    progress.phase = "replaying"
    progress.events_total = (log.head() if until is None else until) * len(projections)
    with loading_in_bulk(store, private=True):
        project_to_head(log, projections, batch_size=batch_size, until=until,
                        progress=report)
    return projections


def rebuild(log: EventLog, models: GenerationalReadModels, make: ProjectionFactory, *,
            batch_size: int = 10_000, switch_lag: int = SWITCH_LAG,
            grace_seconds: float | None = None,
            progress: RebuildProgress | None = None,
            on_progress: Callable[[RebuildProgress], None] | None = None,
            replay: Replay | None = None) -> RebuildProgress:
    """Build a new generation from the whole log, switch readers to it, retire the old
    one. The caller holds the rebuild lock."""
    clear_unfinished(models)
    generation = next_generation(models)
    progress = progress or RebuildProgress(generation)
    progress.generation = generation
    store = models.store(generation)
    store.stamp_log(log.identity())
    try:
        if replay is None:
            projections = build_generation(log, store, make, progress=progress,
                                           batch_size=batch_size, on_progress=on_progress)
        else:
            replay(store, progress, on_progress)
            projections = make()
            for projection in projections:
                projection.attach(store)
        progress.phase = "catching_up"
        while max(0, log.head() - min(p.position() for p in projections)) > switch_lag:
            project_to_head(log, projections, batch_size=batch_size)
        progress.phase = "switching"
        with models.write_lock:
            # The live follower of this process waits here, so the old generation cannot
            # get ahead of the new one between this last catch-up and the switch.
            project_to_head(log, projections, batch_size=batch_size)
            for projection in projections:
                ahead = models.position(projection.name)
                if projection.position() < ahead:  # followed by another process meanwhile
                    project_to_head(log, [projection], batch_size=batch_size, until=ahead)
            previous = models.switch_to(generation)
    except BaseException:
        progress.phase = "failed"
        models.discard(generation)  # a kill leaves it instead: the next rebuild drops it
        raise
    progress.events_done = progress.events_total
    if on_progress is not None:
        on_progress(progress)
    grace = 2 * models.refresh_seconds + 0.5 if grace_seconds is None else grace_seconds
    if grace > 0:
        # readers are on the new generation already: the old one is dropped once other
        # processes have noticed and this one's last reads are done, without holding up
        # the caller (a full_sync reports completion at the switch)
        models.retire_later(previous, grace_seconds=grace)
    else:
        models.retire(previous, grace_seconds=0.0)
    progress.phase = "done"
    if on_progress is not None:
        on_progress(progress)
    return progress


@dataclass(frozen=True)
class TableDifference:
    table: str
    only_live: list[tuple[Any, ...]]
    only_rebuilt: list[tuple[Any, ...]]


def table_rows(store: ReadModels, table: str) -> list[tuple[Any, ...]]:
    """The rows of ``table``, sorted, without the database's own columns (which say how
    the rows were written, not what they hold)."""
    with store.read() as session:
        rows = session.query_dicts(f"SELECT * FROM {table}")
    return sorted((tuple(row.values()) for row in portable_rows(table, rows)), key=repr)


def compare(live: ReadModels, rebuilt: ReadModels, *,
            tables: Sequence[str] = tuple(TABLES)) -> list[TableDifference]:
    """The tables whose rows differ between two locations, with the differing rows."""
    differences = []
    for table in tables:
        left, right = table_rows(live, table), table_rows(rebuilt, table)
        if left == right:
            continue
        left_count: dict[tuple[Any, ...], int] = {}
        for row in left:
            left_count[row] = left_count.get(row, 0) + 1
        only_rebuilt = []
        for row in right:
            if left_count.get(row, 0) > 0:
                left_count[row] -= 1
            else:
                only_rebuilt.append(row)
        only_live = [row for row, count in left_count.items() for _ in range(count)]
        differences.append(TableDifference(table, only_live, only_rebuilt))
    return differences


def verify(log: EventLog, models: GenerationalReadModels, make: ProjectionFactory, *,
           batch_size: int = 10_000, attempts: int = 5,
           on_progress: Callable[[RebuildProgress], None] | None = None,
           ) -> tuple[int, list[TableDifference]]:
    """Rebuild into a scratch generation up to the live generation's position and compare
    the two row for row; the scratch generation is dropped afterwards. Returns the
    position compared at and the differences (none: equal). The caller holds the rebuild
    lock."""
    clear_unfinished(models)
    scratch = next_generation(models)
    store = models.store(scratch)
    try:
        live_projections = make()
        position = min((models.position(p.name) for p in live_projections), default=0)
        progress = RebuildProgress(scratch)
        projections = build_generation(log, store, make, progress=progress,
                                       batch_size=batch_size, until=position,
                                       on_progress=on_progress)
        for _ in range(attempts):
            # The live generation may move on meanwhile (a follower elsewhere): compare
            # only when both stand at the same position.
            differences = compare(models.current(), store)
            now_live = min((models.position(p.name) for p in projections), default=0)
            if now_live == position:
                return position, differences
            position = now_live
            project_to_head(log, projections, batch_size=batch_size, until=position)
        return position, compare(models.current(), store)
    finally:
        models.discard(scratch)
