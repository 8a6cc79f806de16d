"""A rebuild's replay in a process of its own: the same generation as in-process, a held
replay that follows the log until released, an abandoned one that leaves the live
generation alone, a worker that fails or loses its parent."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appview.bootstrap import Services, bootstrap
from appview.rebuild_worker import ChildReplay, ReplayJob
from projections.generations import GenerationalReadModels
from projections.rebuild import RebuildProgress
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.rebuild_support import append_lines, forum_lines, seeded
from tests.test_consumer import dump, settings_for

ROOT = Path(__file__).resolve().parent.parent


def in_process_mode(services: Services) -> Services:
    """The same appview, its rebuilds' replays in a child process whatever the log's size."""
    settings = dataclasses.replace(services.settings, rebuild_worker="process")
    services.close()
    return bootstrap(settings)


def models_of(services: Services) -> GenerationalReadModels:
    assert isinstance(services.read_models, GenerationalReadModels)
    return services.read_models


def test_a_replay_in_a_child_process_builds_the_same_generation(backend: Backend) -> None:
    first, _ = seeded(backend)
    before = dump(first)
    services = in_process_mode(first)
    try:
        assert services.rebuilds is not None
        seen: list[tuple[str, int, int]] = []
        run = services.rebuilds.run(
            on_progress=lambda r: seen.append((r.phase, r.events_done, r.events_total)))
        assert run.status == "completed", run.error
        assert models_of(services).live_generation() == 2
        assert dump(services) == before
        replayed = [(done, total) for phase, done, total in seen if phase == "replaying"]
        # each projection replays the whole log
        assert replayed and replayed[-1][0] == replayed[-1][1] == \
            services.event_log.head() * len(services.projections)
        assert [done for done, _ in replayed] == sorted(done for done, _ in replayed)
    finally:
        services.close()


def test_a_held_replay_follows_the_log_until_released(backend: Backend) -> None:
    forum_did, lines = forum_lines(seed=5, topics=30)
    half = len(lines) // 2
    services = bootstrap(dataclasses.replace(settings_for(backend, "held", forum_did),
                                             rebuild_worker="process"))
    try:
        append_lines(services, lines[:half])  # the log holds half when the rebuild starts
        project_to_head(services.event_log, services.projections)
        assert services.rebuilds is not None
        following = services.rebuilds.start_following(reason="full_sync")
        assert following is not None
        assert following.run.status == "in_progress" and following.run.reason == "full_sync"
        append_lines(services, lines[half:])  # the filler goes on meanwhile
        time.sleep(1.0)
        assert models_of(services).live_generation() == 1  # held: no switch yet
        following.release()
        run = following.wait()
        assert run.status == "completed", run.error
        assert models_of(services).live_generation() == 2
        for status in services.projection_status():
            assert status.position == services.event_log.head() and status.lag == 0
        # equal, row for row, to a replay of the complete log in this process
        position, differences = services.rebuilds.verify()
        assert position == services.event_log.head() and differences == []
    finally:
        services.close()


def test_an_abandoned_replay_leaves_the_live_generation_alone(backend: Backend) -> None:
    first, _ = seeded(backend, topics=10)
    before = dump(first)
    services = in_process_mode(first)
    try:
        assert services.rebuilds is not None
        following = services.rebuilds.start_following(reason="full_sync")
        assert following is not None
        time.sleep(0.5)
        following.abandon()
        run = following.wait()
        assert run.status == "failed" and "abandoned" in (run.error or "")
        models = models_of(services)
        assert models.live_generation() == 1
        assert models.registry.existing() == [1]  # the half-built one was dropped
        assert dump(services) == before
        assert services.rebuilds.run().status == "completed"  # and the next one works
    finally:
        services.close()


def test_thread_mode_follows_nothing(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2, project=False)
    try:
        threaded = dataclasses.replace(services.settings, rebuild_worker="thread")
        assert threaded.rebuild_worker == "thread"
        services.close()
        services = bootstrap(threaded)
        assert services.rebuilds is not None
        assert services.rebuilds.start_following(reason="full_sync") is None
        assert services.rebuilds.current() is None
    finally:
        services.close()


def test_a_worker_that_fails_says_why(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2, project=False)
    try:
        broken = dataclasses.replace(
            services.settings, database_url="postgresql://nobody@127.0.0.1:9/none")
        replay = ChildReplay(broken, batch_size=1000)
        store = models_of(services).store(7)
        with pytest.raises(RuntimeError, match="replay process failed"):
            replay(store, RebuildProgress(7), None)
        assert replay.returncode == 1
    finally:
        services.close()


def test_a_worker_whose_parent_is_gone_stops(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2, project=False)
    try:
        settings = services.settings
        job = ReplayJob(str(settings.data_dir), settings.database_url,
                        settings.database_schema, settings.forum_did,
                        models_of(services).registry.location(5), 1000, hold=True)
        worker = subprocess.Popen([sys.executable, "-m", "appview.rebuild_worker"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  cwd=ROOT, text=True)
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(json.dumps(dataclasses.asdict(job)) + "\n")
        worker.stdin.flush()
        assert "done" in json.loads(worker.stdout.readline())  # it replays, then holds
        worker.stdin.close()  # as a killed parent's end of the pipe closes
        assert worker.wait(timeout=30) == 3
        worker.stdout.close()
    finally:
        services.close()
