"""Generations: the registry every process shares, and the indirection readers use."""

from __future__ import annotations

import threading
import time

import pytest

from appview.bootstrap import generations_base
from projections.generations import GenerationalReadModels, open_generations
from tests.conftest import Backend
from tests.test_consumer import settings_for


def models_for(backend: Backend, *, refresh: float = 0.5) -> GenerationalReadModels:
    settings = settings_for(backend, "gens", "did:plc:forum")
    registry = open_generations(settings.read_model_url, base=generations_base(settings))
    return GenerationalReadModels(settings.read_model_url, registry, refresh_seconds=refresh)


def put_forum(models: GenerationalReadModels, generation: int, name: str) -> None:
    with models.store(generation).transaction() as session:
        session.execute("INSERT INTO forum (uri, did, rev, name, indexed_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        ("at://did:plc:forum/space.atbb.forum.forum/self", "did:plc:forum",
                         "3kaaaaaaaaaa2", name, 1))


def forum_name(models: GenerationalReadModels) -> str | None:
    with models.read() as session:
        value = session.scalar("SELECT name FROM forum")
    return None if value is None else str(value)


def test_a_fresh_appview_reads_generation_one(backend: Backend) -> None:
    models = models_for(backend)
    try:
        assert models.registry.live() is None
        assert models.live_generation() == 1
        assert models.registry.existing() == [1]
        put_forum(models, 1, "first")
        assert forum_name(models) == "first"
    finally:
        models.close()


def test_a_switch_moves_readers_of_this_and_other_processes(backend: Backend) -> None:
    here = models_for(backend, refresh=0.0)
    elsewhere = models_for(backend, refresh=0.2)
    try:
        put_forum(here, 1, "old")
        assert forum_name(elsewhere) == "old"
        put_forum(here, 2, "new")
        assert here.switch_to(2) == 1
        assert forum_name(here) == "new"
        deadline = time.monotonic() + 5
        while forum_name(elsewhere) != "new":  # within its refresh interval
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert here.retire(1, grace_seconds=0.0)
        assert here.registry.existing() == [2]
        assert forum_name(elsewhere) == "new"
    finally:
        here.close()
        elsewhere.close()


def test_a_retired_generation_waits_for_its_readers(backend: Backend) -> None:
    models = models_for(backend, refresh=0.0)
    try:
        put_forum(models, 1, "old")
        put_forum(models, 2, "new")
        with models.read() as session:  # a read that started on generation 1
            models.switch_to(2)
            assert not models.retire(1, grace_seconds=0.0, timeout=0.2)
            assert session.scalar("SELECT name FROM forum") == "old"
        assert models.retire(1, grace_seconds=0.0)
        assert models.registry.existing() == [2]
    finally:
        models.close()


def test_the_live_generation_cannot_be_dropped(backend: Backend) -> None:
    models = models_for(backend)
    try:
        with pytest.raises(ValueError, match="live"):
            models.registry.drop(1)
        models.store(3)
        models.discard(3)
        assert models.registry.existing() == [1]
    finally:
        models.close()


def test_an_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        open_generations("mysql://x", base="atbb")


def test_a_generation_retired_later_is_dropped_after_its_grace(backend: Backend) -> None:
    models = models_for(backend)
    try:
        models.store(2)
        models.switch_to(2)
        started = time.monotonic()
        models.retire_later(1, grace_seconds=0.3)
        assert time.monotonic() - started < 0.2  # the caller is not held up
        assert models.registry.existing() == [1, 2]  # still there during the grace
        models.settle()
        assert time.monotonic() - started >= 0.3
        assert models.registry.existing() == [2]
    finally:
        models.close()


def test_reads_outside_a_session_are_never_closed_under_them_by_a_switch(
        backend: Backend) -> None:
    # the live streams' notifier reads positions from a thread while a rebuild switches
    # generations: a store closed under a running query crashed the process (SQLite)
    models = models_for(backend, refresh=0.0)
    put_forum(models, 1, "one")
    put_forum(models, 2, "two")
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                models.position("forum")
                models.versions()
                models.row_counts()
                models.log_identity()
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for turn in range(150):
            models.switch_to(2 if turn % 2 == 0 else 1)
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
        models.close()
    assert errors == []
