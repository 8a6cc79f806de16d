"""Preparing batches, and naming the records of a load's batches that no earlier batch had."""

from __future__ import annotations

import pickle
from dataclasses import replace
from functools import partial
from pathlib import Path

from events.collections import POST
from events.model import Logged, RecordEvent
from events.store import open_event_log
from projections.apply_fold import VerdictReview
from projections.prepare import FreshRecords, prepare
from tests import original_atbb
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


def test_a_verdict_review_crosses_the_pipe_and_takes_superseded_verdicts_again() -> None:
    forum_did, alice = "did:plc:forumforumforumforum2345", "did:plc:alicealicealicealice2345"
    cid = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i"
    forum = {"uri": f"at://{forum_did}/space.atbb.forum.forum/self", "cid": cid}
    board = {"uri": f"at://{forum_did}/space.atbb.forum.board/3mptbypluud2a", "cid": cid}
    topic = original_atbb.topic("T", "x", forum, board, "2026-03-02T09:00:00Z", typed=True)
    refused = RecordEvent("create", alice, POST, "3mptbypluud2b", "3mptbypluud2b", cid, topic,
                          False, "post.forum.uri: required field is missing", "jetstream",
                          None, 0)
    batch = [Logged(1, refused)]
    review = VerdictReview(forum_did)
    here = prepare(batch, forum_did, review)
    assert list(here.records[POST]) == [refused.uri] and here.rejected == []
    # as a load's preparing processes get it: the review goes without its validator
    preparer = pickle.loads(pickle.dumps(partial(prepare, forum_did=forum_did, review=review)))
    assert preparer(batch) == here
    stands = replace(refused, reason="the commit's signature does not verify")
    assert prepare([Logged(1, stands)], forum_did, review).rejected[0].reason == \
        "the commit's signature does not verify"
