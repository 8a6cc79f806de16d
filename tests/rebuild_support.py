"""A seeded appview for the rebuild tests: a realistic forum stream (edits, deletes,
moderation, duplicates) appended to a log of its own and projected."""

from __future__ import annotations

from appview.bootstrap import Services, bootstrap
from appview.devnet.scenario import build_scenario, scenario_to_jetstream_lines
from appview.devnet.scenario_model import ScenarioSize
from projections.forum import ForumProjection
from projections.notifications import NotificationsProjection
from projections.post_html import RENDERER_STAMP_NAME, renderer_stamp
from projections.runner import project_to_head
from projections.search import SearchProjection
from tests.conftest import Backend
from tests.test_consumer import settings_for

START_US = 1_790_000_000_000_000


def current_versions() -> dict[str, int]:
    """What ``versions()`` says of a location this code built: each projection's
    version, and the posts' renderer (``projections.carried_html``)."""
    return {"forum": ForumProjection.VERSION,
            "notifications": NotificationsProjection.VERSION,
            "search": SearchProjection.VERSION, RENDERER_STAMP_NAME: renderer_stamp()}


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
