"""Running projections over the log: to the head, in batches, and following it."""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager, nullcontext

import pytest

from events.model import AccountStatusChanged, IdentityChanged
from projections.collector import BULK_GC_THRESHOLDS
from projections.forum import ForumProjection
from projections.runner import follow, project_from_start, project_to_head
from tests.fakes import (
    MemoryEventLog,
    Repo,
    TidClock,
    dump_tables,
    forum_workload,
    open_test_store,
    recount_mismatches,
)

F = "did:plc:forumowner"


def test_memory_log_is_a_faithful_event_log() -> None:
    log = MemoryEventLog(gap=3)
    clock = TidClock()
    repo = Repo("did:plc:alice", clock)
    create = repo.create("space.atbb.post", {"text": "x"})
    update = repo.update("space.atbb.post", create.rkey, {"text": "y"})
    other = repo.create("app.bsky.feed.post", {"text": "z"})
    identity = IdentityChanged("did:plc:alice", "a.test", 1, None, "local", None, 0)
    first = log.append([update, create, other, identity])
    # the create arrived after its update: still a version that existed, so stored
    assert (first.appended, first.duplicates, first.dropped) == (3, 0, 1)
    assert first.positions == [3, 6, 9]
    again = log.append([identity, update, create])
    assert (again.duplicates, again.duplicate_indexes) == (3, [0, 1, 2])
    assert log.head() == 9 and log.count() == 3
    assert [e.position for e in log.read(0, 10)] == [3, 6, 9]
    assert [e.position for e in log.read(3, 10)] == [6, 9]
    assert log.read(0, 10, until=5)[-1].position == 3
    assert [e.position for e in log.iter_from(0, page=1)] == [3, 6, 9]
    assert [e.event for e in log.history(create.uri)] == [create, update]
    assert log.repo_heads("did:plc:alice")[create.uri].rev == update.rev
    assert log.known_dids() == ["did:plc:alice"]


def test_memory_log_cursor_never_moves_backwards() -> None:
    from events.log import CursorUpdate

    log = MemoryEventLog()
    log.append([], CursorUpdate("jetstream", 10))
    log.append([], CursorUpdate("jetstream", 4))
    state = log.cursor("jetstream")
    assert state is not None and state.value == 10
    assert log.cursor("other") is None


@pytest.fixture
def store(backend):
    opened = open_test_store(backend)
    try:
        yield opened
    finally:
        opened.close()


def test_project_to_head_applies_everything_in_batches(store) -> None:
    log = MemoryEventLog(gap=2)
    log.append(forum_workload(F, seed=4, events=600, members=15))
    projection = ForumProjection(F)
    projection.attach(store)
    seen: list[tuple[int, int]] = []
    applied = project_to_head(log, [projection], batch_size=128,
                              progress=lambda done, total: seen.append((done, total)))
    assert applied == log.count()
    assert projection.position() == log.head()
    assert len(seen) == -(-log.count() // 128)
    assert seen[-1] == (log.head(), log.head())
    assert recount_mismatches(store) == {}
    assert project_to_head(log, [projection]) == 0


def test_project_to_head_stops_at_until_and_resumes(store) -> None:
    log = MemoryEventLog()
    log.append(forum_workload(F, seed=5, events=300, members=10))
    projection = ForumProjection(F)
    projection.attach(store)
    assert project_to_head(log, [projection], batch_size=50, until=120) == 120
    assert projection.position() == 120
    assert project_to_head(log, [projection], batch_size=50) == log.count() - 120
    assert projection.position() == log.head()


@contextmanager
def two_projections(backend, *, seed: int, events: int, members: int, gap: int = 0):
    """A log of a forum workload and two fresh projections, each into a store of its
    own: (log, (store, projection), (store, projection))."""
    log = MemoryEventLog(gap=gap)
    log.append(forum_workload(F, seed=seed, events=events, members=members))
    stores = [open_test_store(backend, "one"), open_test_store(backend, "other")]
    try:
        pairs = []
        for store in stores:
            projection = ForumProjection(F)
            projection.attach(store)
            pairs.append((store, projection))
        yield log, pairs[0], pairs[1]
    finally:
        for store in stores:
            store.close()


def test_resuming_gives_the_same_tables_as_one_run(backend) -> None:
    with two_projections(backend, seed=6, events=400, members=10) as (
        log, (one, first), (other, second)
    ):
        project_to_head(log, [first])
        for until in (50, 51, 200, None):
            project_to_head(log, [second], batch_size=33, until=until)
        assert dump_tables(one) == dump_tables(other)


def test_batch_size_must_be_positive(store) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        project_to_head(MemoryEventLog(), [], batch_size=0)


def test_follow_applies_new_events_until_stopped(store) -> None:
    log = MemoryEventLog()
    projection = ForumProjection(F)
    projection.attach(store)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(follow(log, [projection], stop=stop, poll_interval=0.01))
    )
    thread.start()
    try:
        log.append([AccountStatusChanged("did:plc:a", True, None, 1, None, "local", None, 0)])
        deadline = time.monotonic() + 10
        while projection.position() < log.head() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert projection.position() == log.head() == 1
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert result == [1]


class LoadWatchingStore:
    """Read models that remember every bulk load they went through (the real store does
    the loading)."""

    def __init__(self, store) -> None:
        self.store = store
        self.loads: list[tuple[int, int]] = []  # (position at start, position at end)

    def bulk_load(self, *, private=False):
        @contextmanager
        def watched():
            start = self.store.position(ForumProjection.NAME)
            with self.store.bulk_load(private=private):
                yield
            self.loads.append((start, self.store.position(ForumProjection.NAME)))

        return watched()


def test_a_first_projection_of_a_large_log_loads_in_bulk_with_the_same_result(backend) -> None:
    with two_projections(backend, seed=8, events=500, members=12, gap=2) as (
        log, (bulk, first), (plain, second)
    ):
        watched = LoadWatchingStore(bulk)
        assert project_from_start(log, [first], watched, batch_size=64,
                                  bulk_from=log.head()) == log.count()
        project_to_head(log, [second], batch_size=64)
        assert watched.loads == [(0, log.head())]
        assert dump_tables(bulk) == dump_tables(plain)
        assert recount_mismatches(bulk) == {}
        # the read-side indexes are back after the load
        with bulk.read() as session:
            names = {row[0] for row in session.query(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                if session.dialect == "sqlite" else
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
        assert {"posts_id", "posts_board_topics", "members_handle"} <= names


def test_projections_already_under_way_or_small_logs_are_not_bulk_loaded(store) -> None:
    log = MemoryEventLog()
    log.append(forum_workload(F, seed=9, events=300, members=10))
    projection = ForumProjection(F)
    projection.attach(store)
    watched = LoadWatchingStore(store)
    # below the threshold: an ordinary projection
    project_from_start(log, [projection], watched, batch_size=50, until=100,
                       bulk_from=101)
    assert watched.loads == [] and projection.position() == 100
    # under way: the rest is an update of tables readers use, never a load
    project_from_start(log, [projection], watched, batch_size=50, bulk_from=1)
    assert watched.loads == [] and projection.position() == log.head()


class ThresholdWatcher:
    """A projection that notes the collector's thresholds at each batch it applies."""

    name = "watcher"
    version = 1

    def __init__(self) -> None:
        self.applied = 0
        self.seen: set[tuple[int, int, int]] = set()

    def position(self) -> int:
        return self.applied

    def apply(self, batch) -> None:
        self.seen.add(gc.get_threshold())
        self.applied = batch[-1].position


class NoLoadStore:
    def bulk_load(self, *, private=False):
        return nullcontext()


def test_a_bulk_load_runs_the_collector_rarely_and_restores_it_after() -> None:
    log = MemoryEventLog()
    log.append(forum_workload(F, seed=10, events=120, members=5))
    before = gc.get_threshold()
    assert before != BULK_GC_THRESHOLDS
    loading = ThresholdWatcher()
    project_from_start(log, [loading], NoLoadStore(), batch_size=40, bulk_from=1)
    assert loading.seen == {BULK_GC_THRESHOLDS}
    assert gc.get_threshold() == before
    # an ordinary projection (below the threshold) leaves the collector alone
    plain = ThresholdWatcher()
    project_from_start(log, [plain], NoLoadStore(), batch_size=40, bulk_from=log.head() + 1)
    assert plain.seen == {before}
