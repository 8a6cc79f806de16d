"""The rebuild manager: one rebuild at a time across processes, runs reported as they go,
a version change rebuilt at startup, and a rebuild killed midway that harms nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appview.bootstrap import Services, bootstrap
from appview.leader import LeaderLock
from appview.rebuilds import RebuildInProgress, RebuildManager, UnknownProjection
from projections.generations import GenerationalReadModels
from tests.conftest import Backend
from tests.rebuild_support import current_versions, seeded
from tests.test_consumer import dump, settings_for

ROOT = Path(__file__).resolve().parent.parent


def manager(services: Services) -> RebuildManager:
    assert services.rebuilds is not None
    return services.rebuilds


def test_a_started_rebuild_runs_in_the_background_and_reports(backend: Backend) -> None:
    services, _ = seeded(backend)
    try:
        rebuilds = manager(services)
        before = dump(services)
        run = rebuilds.start()
        assert run.status == "in_progress" and rebuilds.get(run.id) is run
        finished = rebuilds.wait(run.id, timeout=120)
        assert finished is not None and finished.status == "completed", finished
        assert finished.generation == 2 and finished.phase == "done"
        assert finished.events_done == finished.events_total > 0
        assert finished.finished_at is not None
        assert rebuilds.current() is None and rebuilds.recent()[0] is run
        assert dump(services) == before
        assert [(s.name, s.generation, s.lag) for s in services.projection_status()] == [
            ("forum", 2, 0), ("notifications", 2, 0), ("search", 2, 0)]
    finally:
        services.close()


def test_only_one_rebuild_runs_at_a_time_across_processes(backend: Backend) -> None:
    services, _ = seeded(backend, topics=5)
    elsewhere = LeaderLock(services.settings, purpose="rebuild")
    try:
        assert elsewhere.acquire()
        with pytest.raises(RebuildInProgress):
            manager(services).start()
        with pytest.raises(RebuildInProgress):
            manager(services).verify()
        elsewhere.release()
        run = manager(services).run()
        assert run.status == "completed"
    finally:
        elsewhere.release()
        services.close()


def test_an_unknown_projection_is_refused(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2, project=False)
    try:
        with pytest.raises(UnknownProjection, match="forum"):
            manager(services).start("nonsense")
        assert manager(services).recent() == []
    finally:
        services.close()


def test_a_changed_projection_version_is_rebuilt_at_startup(backend: Backend) -> None:
    services, _ = seeded(backend)
    settings = services.settings
    try:
        before = dump(services)
        # the live generation as an older version of the projection code built it
        with services.read_models.transaction() as session:
            session.execute("UPDATE projection_versions SET version = 0")
    finally:
        services.close()
    restarted = bootstrap(settings)
    try:
        rebuilds = manager(restarted)
        assert rebuilds.outdated() == ["forum", "notifications", "search"]
        run = rebuilds.rebuild_outdated(background=False)
        assert run is not None and run.status == "completed" and run.generation == 2
        assert run.reason == "version changed"
        assert restarted.read_models.versions() == current_versions(restarted)
        assert dump(restarted) == before
        assert rebuilds.outdated() == []
        assert rebuilds.rebuild_outdated() is None  # nothing more to do
    finally:
        restarted.close()


def test_a_rebuild_killed_midway_leaves_the_live_generation_serving(backend: Backend) -> None:
    # big enough that the replay lasts well past the moment it is killed (a faster
    # rebuild of 150 topics once finished within the 50 ms the test waited)
    services, _ = seeded(backend, topics=600)
    settings = services.settings
    before = dump(services)
    models = services.read_models
    assert isinstance(models, GenerationalReadModels)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(settings.data_dir),
           "FORUM_DID": settings.forum_did, "DATABASE_URL": settings.database_url,
           "DATABASE_SCHEMA": settings.database_schema, "LOG_LEVEL": "WARNING"}
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", "from web.cli import main; main()", "rebuild"],
            cwd=backend.tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while 2 not in models.registry.existing():
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.005)
            time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        models.refresh_seconds = 0.0
        assert models.live_generation() == 1
        assert dump(services) == before
        run = manager(services).run()
        assert run.status == "completed", run.error
        assert models.live_generation() == 2
        models.settle()  # generation 1 is retired in the background after its grace
        assert models.registry.existing() == [2]
        assert dump(services) == before
    finally:
        services.close()


def test_the_settings_of_another_appview_do_not_share_its_lock(backend: Backend) -> None:
    one, _ = seeded(backend, "one", topics=1, project=False)
    other = bootstrap(settings_for(backend, "other", one.settings.forum_did))
    lock = LeaderLock(one.settings, purpose="rebuild")
    try:
        assert lock.acquire()
        assert manager(other).run().status == "completed"
    finally:
        lock.release()
        one.close()
        other.close()
