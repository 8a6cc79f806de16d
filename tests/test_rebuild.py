"""Rebuilding into a new generation: equal row for row, readers never disturbed, the
live generation untouched by a rebuild that fails, and verification that finds a
difference when there is one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.bootstrap import Services
from projections.forum import ForumProjection, all_projections
from projections.generations import GenerationalReadModels
from projections.rebuild import clear_unfinished, rebuild, verify
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.forum_strategies import FORUM_DID, deliveries, forums
from tests.rebuild_support import append_lines, forum_lines, seeded
from tests.test_consumer import dump
from tests.test_properties import PROPERTY, locations, project
from tests.test_properties import dump as dump_rows

__all__ = ["locations"]  # the fixture, shared with the property tests

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def generational(services: Services) -> GenerationalReadModels:
    assert isinstance(services.read_models, GenerationalReadModels)
    return services.read_models


def factory(services: Services):  # type: ignore[no-untyped-def]
    return lambda: all_projections(services.settings.forum_did)


def test_a_rebuild_equals_the_live_generation_row_for_row(backend: Backend) -> None:
    services, _ = seeded(backend)
    try:
        models = generational(services)
        before = dump(services)
        assert sum(len(rows) for rows in before.values()) > 300
        progress = rebuild(services.event_log, models, factory(services), batch_size=97,
                           grace_seconds=0.0)
        assert progress.phase == "done" and progress.generation == 2
        assert models.live_generation() == 2
        assert models.registry.existing() == [2]
        assert dump(services) == before
        # the live follower keeps projecting into the new generation
        _, more = forum_lines(seed=4, topics=5)
        append_lines(services, more)
        project_to_head(services.event_log, services.projections)
        assert services.projections[0].position() == services.event_log.head()
    finally:
        services.close()


def test_readers_never_fail_nor_see_a_count_drop_during_a_rebuild(backend: Backend) -> None:
    services, _ = seeded(backend, topics=60)
    try:
        models = generational(services)
        models.refresh_seconds = 0.0
        queries = services.queries
        errors: list[BaseException] = []
        seen: list[int] = []
        done = threading.Event()

        def hammer() -> None:
            while not done.is_set():
                try:
                    total = 0
                    for category in queries.categories(limit=100).items:
                        boards = queries.category_boards(category.id, now=NOW, limit=100)
                        assert boards is not None
                        for board in boards.items:
                            total += board.topic_count
                            page = queries.board_topics(board.id, now=NOW, limit=5)
                            assert page is not None
                            for topic in page.items[:1]:
                                assert queries.topic(topic.id, now=NOW) is not None
                    seen.append(total)
                except BaseException as exc:  # any failure is the test's failure
                    errors.append(exc)
                    return

        readers = [threading.Thread(target=hammer) for _ in range(2)]
        for reader in readers:
            reader.start()
        try:
            rebuild(services.event_log, models, factory(services), batch_size=50,
                    grace_seconds=0.0)
        finally:
            done.set()
            for reader in readers:
                reader.join(30)
        assert errors == []
        assert len(seen) > 2
        assert min(seen) == max(seen) == seen[0] > 0
    finally:
        services.close()


def test_a_failed_rebuild_leaves_the_live_generation_serving(backend: Backend) -> None:
    services, _ = seeded(backend)
    try:
        models = generational(services)
        before = dump(services)

        def broken():  # type: ignore[no-untyped-def]
            projections = all_projections(services.settings.forum_did)

            def explode(batch: object) -> None:
                raise RuntimeError("disk on fire")

            projections[0].apply = explode  # type: ignore[method-assign]
            return projections

        with pytest.raises(RuntimeError, match="disk on fire"):
            rebuild(services.event_log, models, broken, grace_seconds=0.0)
        assert models.live_generation() == 1
        assert dump(services) == before
        assert models.registry.existing() == [1]  # the half-built one is discarded
        # as a killed rebuild would leave it:
        models.store(2)
        assert clear_unfinished(models) == [2]
        rebuild(services.event_log, models, factory(services), grace_seconds=0.0)
        assert models.live_generation() == 2 and dump(services) == before
    finally:
        services.close()


def test_verify_finds_equal_models_equal_and_reports_a_tampered_row(backend: Backend) -> None:
    services, _ = seeded(backend)
    try:
        models = generational(services)
        position, differences = verify(services.event_log, models, factory(services))
        assert differences == [] and position == services.event_log.head()
        assert models.registry.existing() == [1]  # the scratch generation is gone
        with models.transaction() as session:
            session.execute("UPDATE boards SET topic_count = topic_count + 7"
                            " WHERE uri = (SELECT MIN(uri) FROM boards)")
        _, differences = verify(services.event_log, models, factory(services))
        assert [d.table for d in differences] == ["boards"]
        assert len(differences[0].only_live) == len(differences[0].only_rebuilt) == 1
    finally:
        services.close()


@PROPERTY
@given(data=st.data())
def test_incremental_projection_and_a_full_rebuild_agree(locations, data) -> None:  # type: ignore[no-untyped-def]
    scenario = data.draw(forums())
    batches = data.draw(deliveries(scenario))
    # What the log holds after that delivery: each position once, in order, which a
    # rebuild replays in large batches inside bulk_load().
    stored = sorted({logged.position: logged for batch in batches for logged in batch}.values(),
                    key=lambda logged: logged.position)
    with locations() as live, locations() as rebuilt:
        project(live, batches)
        projection = ForumProjection(FORUM_DID)
        projection.attach(rebuilt)
        with rebuilt.bulk_load():
            for start in range(0, len(stored), 10_000):
                projection.apply(stored[start:start + 10_000])
        assert dump_rows(rebuilt) == dump_rows(live)
