"""Preparing a bulk load's batches in child processes: the same batches as prepared
here, in log order whatever the number of children, a failure told with the child's
traceback, children that stop with their reader."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from appview.bootstrap import bootstrap, log_opener
from appview.settings import Settings
from events.model import Logged
from events.store import open_event_log
from projections.apply_fold import FoldedBatch, RecordFold, Version
from projections.collector import BULK_GC_THRESHOLDS
from projections.forum import ForumProjection
from projections.prepare import prepare
from projections.prepare_process import PreparationFailed, batch_range, prepared_batches
from projections.runner import loading_in_bulk, project_to_head
from tests.fakes import dump_tables, forum_workload, open_test_store, recount_mismatches

F = "did:plc:forumowner"


def sqlite_log(tmp_path: Path, events: int = 600) -> str:
    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    log = open_event_log(url)
    try:
        log.append(forum_workload(F, seed=11, events=events, members=15))
    finally:
        log.close()
    return url


def test_batches_prepared_elsewhere_equal_those_prepared_here(tmp_path: Path) -> None:
    url = sqlite_log(tmp_path)
    log = open_event_log(url)
    try:
        head = log.head()
        elsewhere = list(prepared_batches(partial(open_event_log, url),
                                          partial(prepare, forum_did=F), 0, 97, head))
        here, position = [], 0
        while position < head:
            batch = log.read(position, 97, until=head)
            here.append(prepare(batch, F))
            position = batch[-1].position
    finally:
        log.close()
    assert elsewhere == here and len(here) > 3
    assert elsewhere[-1].last_position == head


@pytest.mark.parametrize("processes", [1, 3])
def test_any_number_of_preparing_processes_gives_the_batches_in_log_order(
        tmp_path: Path, processes: int) -> None:
    url = sqlite_log(tmp_path)
    log = open_event_log(url)
    try:
        head = log.head()
        here = [prepare(log.read(position, 50), F) for position in range(0, head, 50)]
    finally:
        log.close()
    elsewhere = list(prepared_batches(partial(open_event_log, url),
                                      partial(prepare, forum_did=F), 0, 50, head,
                                      processes=processes))
    assert elsewhere == here and len(here) > processes


def test_the_children_open_the_appviews_log_at_once_on_either_backend(backend) -> None:
    # the composition root's opener: each child opens the log as it starts, and two
    # making a PostgreSQL log's tables at once failed ("tuple concurrently updated")
    if backend.schema is None:
        settings = Settings(data_dir=backend.tmp / "data", forum_did=F)
    else:
        settings = Settings(data_dir=backend.tmp / "data", database_url=backend.url,
                            database_schema=backend.schema, forum_did=F)
    services = bootstrap(settings)
    try:
        services.event_log.append(forum_workload(F, seed=11, events=300, members=15))
        head = services.event_log.head()
        here = [prepare(services.event_log.read(position, 20), F)
                for position in range(0, head, 20)]
        for _ in range(3):
            elsewhere = list(prepared_batches(log_opener(settings),
                                              partial(prepare, forum_did=F), 0, 20, head,
                                              processes=4))
            assert elsewhere == here
    finally:
        services.close()


def test_the_batch_ranges_partition_the_positions_to_the_head() -> None:
    for position, size, head in ((0, 10, 95), (7, 10, 7), (5, 3, 6), (0, 1, 4)):
        ranges = []
        index = 0
        while (span := batch_range(position, size, head, index))[0] < span[1]:
            ranges.append(span)
            index += 1
        covered = [p for after, until in ranges for p in range(after + 1, until + 1)]
        assert covered == list(range(position + 1, head + 1))
        assert all(until - after <= size for after, until in ranges)


def test_ranges_of_the_log_that_hold_no_event_are_skipped(tmp_path: Path) -> None:
    # positions may have gaps (a PostgreSQL sequence skips on a rollback)
    url = sqlite_log(tmp_path)
    with sqlite3.connect(tmp_path / "events.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE rowid > 120 AND rowid <= 330")
    log = open_event_log(url)
    try:
        head = log.head()
        events = log.read(0, 1000)
    finally:
        log.close()
    prepared = list(prepared_batches(partial(open_event_log, url),
                                     partial(prepare, forum_did=F), 0, 50, head))
    assert all(batch.count for batch in prepared)
    assert sum(batch.count for batch in prepared) == len(events) == 600 - 210
    assert [b.first_position for b in prepared] == sorted(b.first_position for b in prepared)
    assert prepared[-1].last_position == head


def test_a_prepared_batch_crosses_the_pipe_with_its_versions_intact(tmp_path: Path) -> None:
    url = sqlite_log(tmp_path)
    log = open_event_log(url)
    try:
        batch = prepare(log.read(0, 600), F)
    finally:
        log.close()
    back = pickle.loads(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == batch
    folds = [fold for folds in back.records.values() for fold in folds.values()]
    assert folds and all(type(fold) is RecordFold and type(fold.top) is Version
                         and (fold.live is None or type(fold.live) is Version)
                         for fold in folds)
    # a live version that is also the top one stays one object, as prepared
    shared = {(collection, uri) for collection, folds in batch.records.items()
              for uri, fold in folds.items() if fold.live is fold.top}
    assert shared and all(back.records[collection][uri].live is back.records[collection][uri].top
                          for collection, uri in shared)
    deleted = [fold for fold in folds if fold.live is None or fold.live is not fold.top]
    assert deleted  # the workload deletes and edits: versions that differ cross too


@dataclass
class Thresholds:
    """What :func:`note_thresholds` prepares: the collector's thresholds it ran under."""

    thresholds: tuple[int, int, int]
    count: int
    first_position: int
    last_position: int


def note_thresholds(batch: Sequence[Logged]) -> Thresholds:
    return Thresholds(gc.get_threshold(), len(batch), batch[0].position, batch[-1].position)


def test_the_preparing_process_runs_the_collector_rarely(tmp_path: Path) -> None:
    url = sqlite_log(tmp_path, events=200)
    prepared = list(prepared_batches(partial(open_event_log, url), note_thresholds,
                                     0, 50, 200))
    assert prepared and {p.thresholds for p in prepared} == {BULK_GC_THRESHOLDS}
    assert gc.get_threshold() != BULK_GC_THRESHOLDS  # this process's stay as they were


def test_a_failing_preparation_says_why(tmp_path: Path) -> None:
    missing = partial(open_event_log, "nonsense://nowhere")
    with pytest.raises(PreparationFailed, match="nonsense"):
        list(prepared_batches(missing, partial(prepare, forum_did=F), 0, 100, 10))


def test_a_reader_that_stops_early_stops_the_child(tmp_path: Path) -> None:
    url = sqlite_log(tmp_path)
    batches = prepared_batches(partial(open_event_log, url), partial(prepare, forum_did=F),
                               0, 10, 600)
    first = next(batches)
    assert first.first_position >= 1 and first.count == 10
    batches.close()  # the generator's cleanup kills and reaps the child


def end_at_second_batch(batch: Sequence[Logged]) -> FoldedBatch:
    """A preparer whose process dies (exit 5) at its second batch."""
    if batch[0].position > 1:
        os._exit(5)
    return prepare(batch, F)


def test_a_preparing_process_that_dies_is_told_with_its_exit_status(tmp_path: Path) -> None:
    url = sqlite_log(tmp_path)
    batches = prepared_batches(partial(open_event_log, url), end_at_second_batch,
                               0, 10, 600)
    assert next(batches).count == 10  # what came before the death is handed out
    with pytest.raises(PreparationFailed, match=r"ended without a word \(exit 5\)"):
        next(batches)


@pytest.mark.parametrize("bulk", [False, True], ids=["batches", "bulk load"])
def test_a_projection_fed_by_the_preparing_processes_equals_one_fed_here(
        backend, tmp_path: Path, bulk: bool) -> None:
    # in bulk, a load from position 0 names each batch's records that no earlier batch
    # had (FreshRecords): the batches come from several children, each seeing only some
    # of them, so that is known where they are applied; an edit or delete of a record
    # an earlier batch created, taken for fresh, would insert its row twice
    url = sqlite_log(tmp_path, events=800)
    log = open_event_log(url)
    stores = [open_test_store(backend, "prepared"), open_test_store(backend, "here")]
    try:
        fed, plain = ForumProjection(F), ForumProjection(F)
        fed.attach(stores[0])
        plain.attach(stores[1])
        with loading_in_bulk(stores[0]) if bulk else contextlib.nullcontext():
            applied = project_to_head(log, [fed], batch_size=64, prepare_from=0,
                                      open_log=partial(open_event_log, url))
        assert applied == log.count()
        project_to_head(log, [plain], batch_size=64)
        assert fed.position() == plain.position() == log.head()
        assert dump_tables(stores[0]) == dump_tables(stores[1])
        assert recount_mismatches(stores[0]) == {}
        # a prepared batch at or below the position changes nothing; one overlapping it
        # is refused rather than applied twice
        batch = log.read(0, 64)
        fed.apply_prepared(prepare(batch, F))
        assert dump_tables(stores[0]) == dump_tables(stores[1])
    finally:
        for store in stores:
            store.close()
        log.close()


def test_an_overlapping_prepared_batch_is_refused(backend, tmp_path: Path) -> None:
    url = sqlite_log(tmp_path, events=200)
    log = open_event_log(url)
    store = open_test_store(backend, "overlap")
    try:
        projection = ForumProjection(F)
        projection.attach(store)
        project_to_head(log, [projection], batch_size=50, until=log.read(0, 50)[-1].position)
        straddling = prepare(log.read(0, 100), F)
        with pytest.raises(ValueError, match="overlaps"):
            projection.apply_prepared(straddling)
    finally:
        store.close()
        log.close()
