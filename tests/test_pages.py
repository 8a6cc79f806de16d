"""Template setup: the date filter, autoescaping, and the route table."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp_jinja2
import pytest

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.web_forum import seeded_services
from web.app import create_app
from web.pages import when


def test_when_renders_stored_timestamps() -> None:
    assert when("2026-03-02T09:00:00.000000Z") == "2026-03-02 09:00 UTC"
    assert when(None) == "unknown time"
    assert when("not a date") == "not a date"


@pytest.fixture
def services(backend: Backend) -> Iterator[Services]:
    with seeded_services(backend) as seeded:
        yield seeded


def test_templates_escape_and_routes_exist(services: Services) -> None:
    app = create_app(services)
    env = aiohttp_jinja2.get_env(app)
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert str(env.filters["markdown"]("<i>x</i>")) == "<p>&lt;i&gt;x&lt;/i&gt;</p>\n"
    paths = {getattr(r.resource, "canonical", None) for r in app.router.routes()}
    for path in ("/", "/b/{id}", "/t/{id}", "/p/{id}", "/u/{did}", "/b/{id}/feed.atom",
                 "/t/{id}/feed.atom", "/robots.txt", "/theme.css", "/theme", "/static"):
        assert path in paths, path
