"""`atbb dev projection`: the scratch generation rebuilt from the log and diffed against
the live one (both backends), and rebuilt again, in a fresh process, when the watched
code changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from click.testing import CliRunner

from appview.cli import cli
from appview.dev_projection import DevReport, rebuild_and_diff, scratch_location, watch
from tests.conftest import Backend
from tests.rebuild_support import seeded
from tests.test_cli_diff import _env


def test_the_scratch_generation_is_diffed_against_the_live_one(backend: Backend) -> None:
    services, _ = seeded(backend, topics=4)
    try:
        same = rebuild_and_diff(services.settings)
        assert same.lines == ["no row differs"]
        assert same.position == services.event_log.head()
        # the live generation as an older projection code would have left it
        with services.read_models.transaction() as session:
            session.execute("UPDATE posts SET reply_count = reply_count + 5"
                            " WHERE kind = 'topic'")
        changed = rebuild_and_diff(services.settings)
        [posts] = changed.diffs
        assert posts.table == "posts" and posts.changed and not posts.added
        assert all(set(c.columns) == {"reply_count"} for c in posts.changed)
        assert any("reply_count" in line and "→" in line for line in changed.lines)
        assert services.settings.data_dir.name in scratch_location(services.settings) or \
            backend.name == "postgresql"
        # the live generation was only read
        with services.read_models.read() as session:
            assert session.scalar("SELECT COUNT(*) FROM posts WHERE kind = 'topic'"
                                  " AND reply_count >= 5") >= len(posts.changed)
    finally:
        services.close()


def test_a_change_of_the_watched_code_rebuilds_again(tmp_path: Path) -> None:
    backend = Backend("sqlite", "", None, tmp_path)
    services, _ = seeded(backend, topics=2)
    services.close()
    watched = tmp_path / "code" / "projection.py"
    watched.parent.mkdir()
    watched.write_text("A = 1\n")
    reports: list[DevReport] = []
    starts: list[list[Path]] = []

    def on_report(report: DevReport) -> None:
        reports.append(report)
        if len(reports) == 1:
            time.sleep(0.05)  # a new modification time, whatever the clock's grain
            watched.write_text("A = 2\n")

    made = watch(services.settings, on_report, stop=threading.Event(),
                 roots=[watched.parent], poll_seconds=0.1, max_runs=2,
                 on_start=starts.append)
    assert made == 2
    assert [r.error for r in reports] == [None, None]
    assert all(r.lines == ["no row differs"] for r in reports)
    assert starts == [[], [watched]]


def test_the_command_once(tmp_path: Path) -> None:
    services, _ = seeded(Backend("sqlite", "", None, tmp_path), topics=2)
    try:
        result = CliRunner().invoke(cli, ["dev", "projection", "--once"],
                                    env=_env(services))
    finally:
        services.close()
    assert result.exit_code == 0, result.output
    assert "the scratch generation against the live one:\nno row differs" in result.output
