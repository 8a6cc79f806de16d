"""Read models are used only with the event log they were built from, on both
backends: new ones are stamped with the log's identity, another log's are refused,
as are read models ahead of the log (a log restored from an older copy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from events.log import EventLog
from projections.forum import all_projections
from projections.log_match import claim_read_models
from projections.readmodel import ReadModelStore, open_read_models
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.test_store import ALICE, open_log, post

FORUM = "did:plc:forumforumforumforumforu"
NAMES = [p.name for p in all_projections(FORUM)]


@pytest.fixture
def models(backend: Backend) -> Iterator[ReadModelStore]:
    if backend.schema is None:
        store = open_read_models(f"sqlite:///{backend.tmp / 'readmodels'}",
                                 location=str(backend.tmp / "readmodels" / "gen-1.sqlite3"))
    else:
        store = open_read_models(backend.url, location=f"{backend.schema}_rm")
    try:
        yield store
    finally:
        store.close()


def project(log: EventLog, models: ReadModelStore) -> None:
    projections = all_projections(FORUM)
    for projection in projections:
        projection.attach(models)
    project_to_head(log, projections)


def test_new_read_models_take_the_identity_of_their_log(backend: Backend,
                                                         models: ReadModelStore) -> None:
    log = open_log(backend)
    try:
        assert models.log_identity() is None
        assert claim_read_models(log, models, NAMES) is None
        assert models.log_identity() == log.identity()
        assert claim_read_models(log, models, NAMES) is None  # and stay its
    finally:
        log.close()


@pytest.mark.parametrize("bigger", ["theirs", "ours"])
def test_read_models_of_another_log_are_refused_whichever_is_longer(
        backend: Backend, models: ReadModelStore, bigger: str) -> None:
    """Read models ahead of the log they are opened with, or behind it: both are
    another log's, and neither is used (nor stamped over)."""
    theirs, ours = open_log(backend), open_log(backend, "ours")
    try:
        theirs.append([post(f"t{n}", 1) for n in range(5 if bigger == "theirs" else 2)])
        ours.append([post(f"o{n}", 1, did=ALICE) for n in range(5 if bigger == "ours" else 2)])
        assert claim_read_models(theirs, models, NAMES) is None
        project(theirs, models)
        problem = claim_read_models(ours, models, NAMES)
        assert problem is not None and "another event log" in problem
        assert theirs.identity() in problem and ours.identity() in problem
        assert models.log_identity() == theirs.identity()
    finally:
        theirs.close()
        ours.close()


def test_read_models_ahead_of_their_own_log_are_refused(backend: Backend,
                                                         models: ReadModelStore) -> None:
    """The same log, restored from a copy older than the read models: positions past
    its head would never be projected again."""
    log = open_log(backend)
    try:
        log.append([post(f"p{n}", 1) for n in range(4)])
        assert claim_read_models(log, models, NAMES) is None
        project(log, models)
        assert claim_read_models(log, models, NAMES) is None
    finally:
        log.close()
    restored = open_log(backend, "restored")
    try:
        restored.append([post("p0", 1)])
        with models.transaction() as session:  # the copy of the log, restored as ours
            session.execute("UPDATE log_source SET log_identity = ?",
                            (restored.identity(),))
        problem = claim_read_models(restored, models, NAMES)
        assert problem is not None and "ahead of the event log" in problem
        assert "position 4" in problem and "head is 1" in problem
    finally:
        restored.close()


def test_read_models_made_before_stamps_are_adopted_only_when_the_log_covers_them(
        backend: Backend, models: ReadModelStore) -> None:
    log, short = open_log(backend), open_log(backend, "short")
    try:
        log.append([post(f"p{n}", 1) for n in range(3)])
        project(log, models)  # no claim first: as read models made before stamps were
        short.append([post("p0", 1)])
        problem = claim_read_models(short, models, NAMES)
        assert problem is not None and "ahead" in problem
        assert models.log_identity() is None
        assert claim_read_models(log, models, NAMES) is None
        assert models.log_identity() == log.identity()
    finally:
        log.close()
        short.close()
