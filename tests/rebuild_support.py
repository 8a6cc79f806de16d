"""A seeded appview for the rebuild tests: a realistic forum stream (edits, deletes,
moderation, duplicates) appended to a log of its own and projected."""

from __future__ import annotations

import dataclasses

from appview.bootstrap import Services, bootstrap
from appview.devnet.scenario import build_scenario, scenario_to_jetstream_lines
from appview.devnet.scenario_model import ScenarioSize
from projections.forum import ForumProjection
from projections.notifications import NotificationsProjection
from projections.post_html import RENDERER_STAMP_NAME, renderer_stamp
from projections.runner import project_to_head
from projections.search import DOCUMENTS_STAMP_NAME, SearchProjection, documents_stamp
from tests.conftest import Backend
from tests.test_consumer import settings_for

START_US = 1_790_000_000_000_000


def current_versions(services: Services) -> dict[str, int]:
    """What ``versions()`` says of a location this code built for ``services``: each
    projection's version, the posts' renderer (``projections.carried_html``) and, on
    PostgreSQL, what made the search documents (``projections.search``)."""
    versions = {"forum": ForumProjection.VERSION,
                "notifications": NotificationsProjection.VERSION,
                "search": SearchProjection.VERSION, RENDERER_STAMP_NAME: renderer_stamp()}
    if services.settings.is_postgres:
        with services.read_models.read() as session:
            versions[DOCUMENTS_STAMP_NAME] = documents_stamp(session)
    return versions


def forum_lines(seed: int = 3, topics: int = 40) -> tuple[str, list[str]]:
    size = ScenarioSize(members=25, categories=3, boards=6, topics=topics,
                        replies_per_topic=5.0)
    scenario = build_scenario(seed, size, real_dids=False)
    lines = list(scenario_to_jetstream_lines(scenario, start_time_us=START_US, spacing_us=10,
                                             duplicate_rate=0.02, redelivery_rate=0.01))
    return scenario.forum.did, lines


def append_lines(services: Services, lines: list[str]) -> None:
    appender = services.appender(batch_size=500)
    for number, line in enumerate(lines, start=1):
        appender.feed(line.encode(), number)
    appender.flush()


def seeded(backend: Backend, name: str = "app", *, seed: int = 3, topics: int = 40,
           project: bool = True) -> tuple[Services, list[str]]:
    forum_did, lines = forum_lines(seed, topics)
    services = bootstrap(settings_for(backend, name, forum_did))
    append_lines(services, lines)
    if project:
        project_to_head(services.event_log, services.projections)
    return services, lines


def with_child_replays(services: Services) -> Services:
    """``services`` opened again with REBUILD_WORKER=process: what is carried over from
    the generation a rebuild replaces is the child replay's (a rebuild of a large log),
    and the seeded log is small."""
    settings = dataclasses.replace(services.settings, rebuild_worker="process")
    services.close()
    return bootstrap(settings)
