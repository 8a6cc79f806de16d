"""A rebuild takes posts' HTML from the generation it replaces where the text is the
same and that generation's renderer is this code's; it renders the rest. Checked on the
rows: the live generation's HTML is marked first, so a carried body is told from a
rendered one."""

from __future__ import annotations

import pickle
from functools import partial

from appview.bootstrap import Services, bootstrap
from projections.carried_html import CarriedHtml
from projections.post_html import RENDERER_STAMP_NAME, post_html
from projections.readmodel import open_read_models
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.rebuild_support import current_versions, seeded, with_child_replays

MARK = "<p>carried</p>\n"


def posts(services: Services) -> dict[str, tuple[str | None, str | None]]:
    with services.read_models.read() as session:
        rows = session.query("SELECT uri, text, html FROM posts")
    return {uri: (text, html) for uri, text, html in rows}


def mark_live_html(services: Services) -> None:
    with services.read_models.transaction() as session:
        session.execute("UPDATE posts SET html = ? WHERE text IS NOT NULL", (MARK,))


def test_a_rebuild_carries_html_where_the_text_is_the_same(backend: Backend) -> None:
    services = with_child_replays(seeded(backend)[0])
    try:
        mark_live_html(services)
        stale = sorted(uri for uri, (text, _) in posts(services).items() if text)[0]
        with services.read_models.transaction() as session:
            # the live row's text differs from what the log says: its HTML is not taken
            session.execute("UPDATE posts SET text = 'another text' WHERE uri = ?",
                            (stale,))
        assert services.rebuilds is not None
        assert services.rebuilds.run().status == "completed"
        rebuilt = posts(services)
        assert rebuilt[stale][1] == post_html(rebuilt[stale][0]) != MARK
        others = {uri: row for uri, row in rebuilt.items() if uri != stale and row[0]}
        assert others and all(html == MARK for _, html in others.values())
        assert all(html is None for text, html in rebuilt.values() if text is None)
    finally:
        services.close()


def test_nothing_is_carried_from_html_another_renderer_made(backend: Backend) -> None:
    services = with_child_replays(seeded(backend)[0])
    try:
        mark_live_html(services)
        with services.read_models.transaction() as session:
            session.execute("UPDATE projection_versions SET version = version + 1"
                            " WHERE name = ?", (RENDERER_STAMP_NAME,))
        assert services.rebuilds is not None
        assert services.rebuilds.run().status == "completed"
        rebuilt = posts(services)
        assert any(text for text, _ in rebuilt.values())
        assert all(html == post_html(text) for text, html in rebuilt.values())
    finally:
        services.close()


def test_verify_renders_every_post_anew(backend: Backend) -> None:
    services, _ = seeded(backend)
    try:
        mark_live_html(services)
        assert services.rebuilds is not None
        _, differences = services.rebuilds.verify()
        assert [difference.table for difference in differences] == ["posts"]
    finally:
        services.close()


def test_an_unreadable_generation_means_rendering_not_failing(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2)
    try:
        settings = services.settings
        missing = "missing_generation" if settings.is_postgres else str(
            settings.data_dir / "missing" / "generation.sqlite")
        carried = CarriedHtml(partial(open_read_models, settings.read_model_url,
                                      location=missing, create=False))
        assert carried.html_of([("at://did:plc:x/space.atbb.post/1", "text")]) == {}
        assert not carried.usable()
    finally:
        services.close()


def test_a_copy_for_another_process_opens_the_generation_anew(backend: Backend) -> None:
    services, _ = seeded(backend, topics=2)
    try:
        uri, (text, html) = next((uri, row) for uri, row in posts(services).items()
                                 if row[0])
        assert text is not None
        carried = CarriedHtml(partial(open_read_models, services.settings.read_model_url,
                                      location=services.read_models.location, create=False))
        assert carried.html_of([(uri, text)]) == {uri: html}
        copy = pickle.loads(pickle.dumps(carried))
        assert copy.html_of([(uri, text)]) == {uri: html}
        assert copy.html_of([(uri, text + " edited")]) == {}
        carried.close()
        copy.close()
    finally:
        services.close()


def test_only_the_code_that_wrote_a_location_from_its_start_stamps_it(backend: Backend) -> None:
    """Newer code following a location an older one built must not name its renderer as
    the maker of HTML it did not make: a later rebuild would carry that HTML."""
    services, _ = seeded(backend, topics=2, project=False)
    try:
        head = services.event_log.head()
        project_to_head(services.event_log, services.projections, until=head // 2)
        assert services.read_models.versions() == current_versions(services)
        with services.read_models.transaction() as session:
            # as a location built before the stamps existed
            session.execute("DELETE FROM projection_versions WHERE name LIKE '%.%'")
        # the newer code: another process, following the location
        settings = services.settings
        services.close()
        services = bootstrap(settings)
        project_to_head(services.event_log, services.projections)
        assert services.read_models.versions().keys() == {"forum", "notifications", "search"}
    finally:
        services.close()
