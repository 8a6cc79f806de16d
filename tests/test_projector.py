"""The one projector of the live read models in a process: runs one at a time, and a
write waiting behind a run that applied its event too does not run again."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from appview.projector import SharedProjector
from events.model import Logged, RecordEvent
from tests.fakes import MemoryEventLog, TidClock
from tests.fakes import Repo as FakeRepo


class CountingProjection:
    """A projection that records the batches it applied, slowly."""

    name = "counting"
    version = 1

    def __init__(self) -> None:
        self.applied: list[int] = []
        self.batches = 0
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def position(self) -> int:
        return self.applied[-1] if self.applied else 0

    def apply(self, batch: Sequence[Logged]) -> None:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        threading.Event().wait(0.01)
        with self._lock:
            self.batches += 1
            self.applied.extend(logged.position for logged in batch
                                if logged.position > self.position())
            self.running -= 1


class CountingLog(MemoryEventLog):
    """Counts the reads of the head: each run of the projector starts with one."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = 0

    def head(self) -> int:
        self.heads += 1
        return super().head()


def post_events(count: int) -> list[RecordEvent]:
    repo = FakeRepo("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", TidClock())
    return [repo.create("space.atbb.post", {"$type": "space.atbb.post", "text": str(n),
                                            "createdAt": "2025-01-01T00:00:00.000Z"})
            for n in range(count)]


def test_runs_never_overlap_and_waiters_behind_a_run_that_did_theirs_skip() -> None:
    log = CountingLog()
    projection = CountingProjection()
    projector = SharedProjector(log, [projection], batch_size=100)
    positions = [log.append([event]).positions[0] for event in post_events(20)]
    threads = [threading.Thread(target=projector.project_through, args=(position,))
               for position in positions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert projection.applied == positions and projection.most_at_once == 1
    # the waiters that found their event applied by the run before did not run at all
    assert log.heads < len(positions)
    assert projector.position() == positions[-1]
    before = log.heads
    projector.project_through(positions[3])
    assert log.heads == before  # nothing to do: no run, not even a read
    [later] = log.append(post_events(21)[-1:]).positions
    projector.project()
    assert projector.position() == later


def test_listeners_hear_the_position_each_run_reached() -> None:
    log = CountingLog()
    events = post_events(4)
    log.append(events[:3])
    projector = SharedProjector(log, [CountingProjection()], batch_size=2)
    heard: list[int] = []

    def failing(_position: int) -> None:
        raise RuntimeError("a listener's fault")

    projector.subscribe(failing)
    projector.subscribe(heard.append)
    projector.project()
    log.append(events[3:])
    projector.project()
    projector.unsubscribe(heard.append)
    projector.project()
    assert heard == [3, 4]
