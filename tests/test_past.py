"""The forum as it was (`appview.past`, `web.past`): read models projected up to a past
position or moment, served read only under a banner, on both backends' logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from appview.past import open_past, past_label
from events.moments import describe
from tests.conftest import Backend
from tests.rebuild_support import seeded
from web import urls
from web.app import create_app
from web.cli import serve


async def test_the_past_is_served_read_only_under_a_banner(backend: Backend,
                                                           tmp_path: Path) -> None:
    live, _ = seeded(backend, topics=6)
    try:
        head = live.event_log.head()
        cut = head // 3
        services, label = open_past(live.settings, tmp_path, until=cut)
        try:
            assert label == f"as it was at log position {cut}"
            assert all(p.position() <= cut for p in services.projections)
            assert services.read_models.row_counts()["posts"] < \
                live.read_models.row_counts()["posts"]
            async with TestClient(TestServer(create_app(services, past=label))) as client:
                page = await client.get(urls.index())
                assert page.status == 200
                assert f"This forum is shown {label}" in await page.text()
                write = await client.post(urls.API_TOPICS, json={"title": "x", "text": "y"})
                assert write.status == 403 and (await write.json())["error"] == "ReadOnly"
                signin = await client.post(urls.SIGNIN_PASSWORD, data={"handle": "a"})
                assert signin.status == 403
                theme = await client.post(urls.THEME_CHOICE, data={"theme": "dark"},
                                          allow_redirects=False)
                assert theme.status in (302, 303)
        finally:
            services.close()
        # the live forum is untouched and carries no banner
        assert all(p.position() == head for p in live.projections)
        async with TestClient(TestServer(create_app(live))) as client:
            assert "This forum is shown" not in await (await client.get(urls.index())).text()
    finally:
        live.close()


def test_a_moment_names_its_position(backend: Backend, tmp_path: Path) -> None:
    live, _ = seeded(backend, topics=3)
    try:
        events = list(live.event_log.iter_from())
        moment = events[len(events) // 2].event.observed_at
        services, label = open_past(live.settings, tmp_path, at=moment)
        try:
            position = max(p.position() for p in services.projections)
            assert label == past_label(position, moment)
            assert label.startswith(f"as it was at {describe(moment)} (log position ")
        finally:
            services.close()
        with pytest.raises(ValueError):
            open_past(live.settings, tmp_path / "x")
        both = CliRunner().invoke(serve, ["--until", "3", "--at", "2026-01-01"],
                                  obj=live.settings)
        assert both.exit_code == 2 and "not both" in both.output
        many = CliRunner().invoke(serve, ["--until", "3", "--workers", "2"],
                                  obj=live.settings)
        assert many.exit_code == 2
    finally:
        live.close()
