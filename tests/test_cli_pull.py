"""`atbb events pull`: the log of a serving appview appended here over HTTP, resumed by
the next run; a refused token is one line and exit status 1."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from appview.cli import cli
from events.store import open_event_log
from tests.admin_support import admin_app
from tests.conftest import Backend


def _pull(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), "--database-url", "",
                                    "events", "pull", *args], env={"FORUM_DID": ""})


async def test_a_pull_then_a_resumed_pull(backend: Backend, tmp_path: Path) -> None:
    async with admin_app(backend, topics=3) as app:
        base = str(app.client.make_url("/"))
        here = tmp_path / "here"
        first = await asyncio.to_thread(_pull, here, base, "--token", app.operator,
                                        "--page", "50")
        assert first.exit_code == 0, first.output
        count = app.services.event_log.count()
        assert f"pulled {count} events" in first.output
        again = await asyncio.to_thread(_pull, here, base, "--token", app.operator)
        assert "pulled 0 events" in again.output
        log = open_event_log(f"sqlite:///{here}/events.sqlite3")
        try:
            assert [e.event for e in log.iter_from()] == [
                e.event for e in app.services.event_log.iter_from()]
        finally:
            log.close()
        refused = await asyncio.to_thread(_pull, here, base, "--token", app.nobody,
                                          "--retries", "0")
        assert refused.exit_code == 1 and "HTTP 403" in refused.output
