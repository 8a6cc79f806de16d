"""Export → import → replay reproduces the read models; --until shows the past; history
lists every revision; all through the CLI, on both backends."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from appview.bootstrap import bootstrap
from appview.cli import cli
from appview.replay import export_log, import_lines
from events.model import RecordEvent
from events.moments import describe, from_micros, position_at
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.rebuild_support import seeded
from tests.test_cli_rebuild import env_of
from tests.test_consumer import dump, settings_for


def test_export_import_replay_reproduces_the_read_models(backend: Backend,
                                                          tmp_path: Path) -> None:
    services, _ = seeded(backend)
    settings = services.settings
    expected = dump(services, with_times=True)
    head = services.event_log.head()
    services.close()
    runner = CliRunner()
    exported = tmp_path / "log.jsonl"
    result = runner.invoke(cli, ["events", "export", "-o", str(exported)],
                           env=env_of(settings), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = exported.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "atbb-event-log"
    assert len(lines) - 1 == bootstrap_count(settings)

    # into another appview's log (same backend), then projected
    other = settings_for(backend, "imported", settings.forum_did)
    imported = runner.invoke(cli, ["events", "import", str(exported)], env=env_of(other))
    assert imported.exit_code == 0, imported.output
    again = runner.invoke(cli, ["events", "import", str(exported)], env=env_of(other))
    assert "appended 0" in again.stdout  # importing twice adds nothing
    target = bootstrap(other)
    try:
        project_to_head(target.event_log, target.projections)
        assert dump(target, with_times=True) == expected
    finally:
        target.close()

    # replay into a new embedded database: the same read models
    db = tmp_path / "replayed"
    replayed = runner.invoke(cli, ["replay", str(exported), "--db", str(db)],
                             catch_exceptions=False, env={"FORUM_DID": ""})
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed {len(lines) - 1} events" in replayed.stdout
    assert "posts:" in replayed.stdout  # the status report follows
    local = bootstrap(settings_for_dir(db, settings.forum_did))
    try:
        assert dump(local, with_times=True) == expected
    finally:
        local.close()
    refused = runner.invoke(cli, ["replay", str(exported), "--db", str(db)])
    assert refused.exit_code == 1 and "already holds" in refused.output
    assert head > 0


def bootstrap_count(settings) -> int:
    services = bootstrap(settings)
    try:
        return services.event_log.count()
    finally:
        services.close()


def settings_for_dir(db: Path, forum_did: str):
    from appview.settings import Settings

    return Settings(data_dir=db, forum_did=forum_did)


def test_replay_until_shows_the_forum_as_it_was(backend: Backend, tmp_path: Path) -> None:
    services, _ = seeded(backend)
    try:
        buffer = io.StringIO()
        export_log(services.event_log, buffer, forum_did=services.settings.forum_did)
        cut = services.event_log.head() // 2
        past = settings_for(backend, "past", services.settings.forum_did)
        expected_services = bootstrap(past)
        try:
            # the state at ``cut``: the original log projected only that far
            project_to_head(services.event_log, expected_services.projections, until=cut)
            expected_past = dump(expected_services, with_times=True)
        finally:
            expected_services.close()
    finally:
        services.close()
    exported = tmp_path / "log.jsonl"
    exported.write_text(buffer.getvalue())
    db = tmp_path / "then"
    result = CliRunner().invoke(cli, ["replay", str(exported), "--db", str(db),
                                      "--until", str(cut)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"up to position {cut}" in result.stdout
    then = bootstrap(settings_for_dir(db, past.forum_did))
    try:
        assert dump(then, with_times=True) == expected_past
    finally:
        then.close()


def test_history_lists_every_revision_of_a_record(backend: Backend) -> None:
    services, _ = seeded(backend)
    settings = services.settings
    try:
        counts: dict[str, int] = {}
        for logged in services.event_log.iter_from(0):
            if isinstance(logged.event, RecordEvent):
                counts[logged.event.uri] = counts.get(logged.event.uri, 0) + 1
        uri = max(counts, key=lambda u: counts[u])
        revisions = services.event_log.history(uri)
    finally:
        services.close()
    assert len(revisions) >= 2  # a record that was edited or deleted
    result = CliRunner().invoke(cli, ["events", "history", uri], env=env_of(settings))
    assert result.exit_code == 0, result.output
    assert f"{len(revisions)} revisions of {uri}" in result.stdout
    for logged in revisions:
        assert f"#{logged.position} " in result.stdout
        assert logged.event.rev in result.stdout  # type: ignore[union-attr]
    missing = CliRunner().invoke(cli, ["events", "history",
                                       "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/space.atbb.post/x"],
                                 env=env_of(settings))
    assert missing.exit_code == 1 and "no revision" in missing.output
    bad = CliRunner().invoke(cli, ["events", "history", "nonsense"], env=env_of(settings))
    assert bad.exit_code == 2


def test_a_bad_line_is_reported_and_the_rest_imported(backend: Backend) -> None:
    services, _ = seeded(backend, topics=3, project=False)
    try:
        buffer = io.StringIO()
        export_log(services.event_log, buffer, forum_did=services.settings.forum_did)
        lines = buffer.getvalue().splitlines()
        lines.insert(3, "{not json")
        target = bootstrap(settings_for(backend, "bad", services.settings.forum_did))
        try:
            report = import_lines(target.event_log, lines, batch_size=7)
            assert [n for n, _ in report.errors] == [4]
            assert target.event_log.count() == services.event_log.count()
        finally:
            target.close()
    finally:
        services.close()


def test_replay_at_a_moment_is_the_log_as_it_stood_then(backend: Backend,
                                                        tmp_path: Path) -> None:
    services, _ = seeded(backend, topics=10)
    try:
        buffer = io.StringIO()
        export_log(services.event_log, buffer, forum_did=services.settings.forum_did)
        events = list(services.event_log.iter_from())
        moment = events[len(events) // 2].event.observed_at
        cut = position_at(events, moment)
        assert 0 < cut < services.event_log.head()
    finally:
        services.close()
    exported = tmp_path / "log.jsonl"
    exported.write_text(buffer.getvalue())
    by_position = CliRunner().invoke(cli, ["replay", str(exported), "--db",
                                           str(tmp_path / "until"), "--until", str(cut)])
    by_time = CliRunner().invoke(cli, ["replay", str(exported), "--db", str(tmp_path / "at"),
                                       "--at", from_micros(moment).isoformat()])
    assert by_position.exit_code == 0, by_position.output
    assert by_time.exit_code == 0, by_time.output
    assert f"as the log stood at {describe(moment)}" in by_time.stdout
    dumps = []
    for name in ("until", "at"):
        then = bootstrap(settings_for_dir(tmp_path / name, services.settings.forum_did))
        try:
            dumps.append(dump(then, with_times=True))
        finally:
            then.close()
    assert dumps[0] == dumps[1]
    bad = CliRunner().invoke(cli, ["replay", str(exported), "--db", str(tmp_path / "x"),
                                   "--at", "yesterday"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
