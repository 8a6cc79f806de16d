"""Preparing batches, and naming the records of a load's batches that no earlier batch had."""

from __future__ import annotations

import pickle
from pathlib import Path

from events.model import Logged
from events.store import open_event_log
from projections.prepare import FreshRecords, prepare
from tests.test_prepare_process import F, sqlite_log


def _batches(tmp_path: Path, size: int = 80) -> list[list[Logged]]:
    url = sqlite_log(tmp_path, events=600)
    log = open_event_log(url)
    try:
        batches: list[list[Logged]] = []
        position = 0
        while batch := log.read(position, size):
            batches.append(batch)
            position = batch[-1].position
        return batches
    finally:
        log.close()


def test_from_the_start_the_fresh_records_are_those_no_earlier_batch_had(
        tmp_path: Path) -> None:
    batches = _batches(tmp_path)
    fresh = FreshRecords()
    earlier: set[str] = set()
    repeated = 0
    for batch in batches:
        folded = fresh.mark(prepare(batch, F))
        uris = {uri for folds in folded.records.values() for uri in folds}
        assert folded.fresh == uris - earlier
        repeated += len(uris & earlier)
        earlier |= uris
        # the rest of the batch is what prepare() makes of it
        folded.fresh = frozenset()
        assert folded == prepare(batch, F)
    assert repeated  # the workload edits and deletes records of earlier batches


def test_a_prepared_batch_names_no_record_fresh(tmp_path: Path) -> None:
    assert all(prepare(batch, F).fresh == frozenset() for batch in _batches(tmp_path))


def test_the_fresh_records_cross_the_pipe(tmp_path: Path) -> None:
    folded = FreshRecords().mark(prepare(_batches(tmp_path)[0], F))
    assert folded.fresh
    back = pickle.loads(pickle.dumps(folded, protocol=pickle.HIGHEST_PROTOCOL))
    assert back.fresh == folded.fresh and back == folded
