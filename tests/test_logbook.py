"""`appview.logbook`: a log opened read-only, its events filtered, projected in memory
(to a position or a moment) to the same rows as the appview's; docs/replay.md's
examples run as they are."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from appview.bootstrap import Services
from appview.logbook import EVENT_TYPES, open_log
from appview.replay import export_log
from events.model import RecordEvent
from projections.runner import project_to_head
from projections.schema import TABLES
from projections.search_schema import portable_rows
from tests.conftest import Backend
from tests.rebuild_support import seeded

DOCS = Path(__file__).resolve().parent.parent / "docs" / "replay.md"


@pytest.fixture(scope="module")
def forum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Path]]:
    tmp = tmp_path_factory.mktemp("logbook")
    services, _ = seeded(Backend("sqlite", "", None, tmp), "prod", topics=8)
    with (tmp / "forum-log.jsonl").open("w") as out:
        export_log(services.event_log, out, forum_did=services.settings.forum_did)
    yield services, tmp
    services.close()


def rows(query: object, exclude: tuple[str, ...] = (), *,
         with_times: bool = True) -> dict[str, list[str]]:
    """Every table's rows, sorted; ``with_times=False`` leaves out ``indexed_at`` (when
    the event was observed: a log appended anew has times of its own). A database's own
    index columns are left out, so rows projected in memory (SQLite) compare with either
    backend's."""
    out: dict[str, list[str]] = {}
    for table in TABLES:
        if table in exclude:
            continue
        found = query(f"SELECT * FROM {table}")  # type: ignore[operator]
        out[table] = sorted(repr(sorted((k, v) for k, v in row.items()
                                        if with_times or k != "indexed_at"))
                            for row in portable_rows(table, found))
    return out


def services_rows(services: Services, *, with_times: bool = True) -> dict[str, list[str]]:
    with services.read_models.read() as session:
        return rows(session.query_dicts, exclude=("projection_versions",),
                    with_times=with_times)


def test_the_docs_examples_run(forum: tuple[Services, Path],
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    _, tmp = forum
    section = DOCS.read_text().split("## The Python API")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp)
    scope: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), scope)
    assert "RecordCreated" in capsys.readouterr().out


def test_filters(forum: tuple[Services, Path]) -> None:
    services, tmp = forum
    with open_log(tmp / "prod") as log:
        everything = list(log.events())
        assert [e.position for e in everything] == [
            logged.position for logged in services.event_log.iter_from()]
        assert {e.type for e in everything} <= set(EVENT_TYPES)
        posts = list(log.events(collection="space.atbb.post"))
        assert posts and all(e.collection == "space.atbb.post" for e in posts)
        author = posts[0].did
        assert all(e.did == author for e in log.events(did=[author]))
        creates = list(log.events(types="RecordCreated"))
        assert all(isinstance(e.event, RecordEvent) and e.event.operation == "create"
                   for e in creates)
        middle = everything[len(everything) // 2]
        later = list(log.events(since=middle.event.observed_at))
        assert later and all(e.event.observed_at >= middle.event.observed_at for e in later)
        earlier = list(log.events(until=middle.observed))
        assert all(e.observed <= middle.observed for e in earlier)
        assert [e.position for e in log.events(after=middle.position, limit=3)] == [
            e.position for e in everything if e.position > middle.position][:3]
        with pytest.raises(ValueError, match="unknown event types"):
            list(log.events(types="RecordMoved"))


def test_an_export_reads_as_the_stored_log(forum: tuple[Services, Path]) -> None:
    services, tmp = forum
    with open_log(tmp / "forum-log.jsonl") as exported, open_log(tmp / "prod") as stored:
        assert list(exported.events()) == list(stored.events())
        assert exported.forum_did == services.settings.forum_did
        assert exported.head() == stored.head()


def test_a_projection_in_memory_has_the_appviews_rows(forum: tuple[Services, Path]) -> None:
    services, tmp = forum
    with open_log(tmp / "prod", forum_did=services.settings.forum_did) as log, \
            log.project() as projected:
        assert projected.position == services.event_log.head()
        assert rows(projected.query, exclude=("projection_versions",)) == \
            services_rows(services)


def test_a_projection_to_a_position_and_to_a_moment(
        forum: tuple[Services, Path], backend: Backend) -> None:
    services, tmp = forum
    did = services.settings.forum_did
    with open_log(tmp / "prod", forum_did=did) as log:
        entries = list(log.events())
        cut = entries[len(entries) // 3]
        past, _ = seeded(backend, "past", topics=8, project=False)
        try:
            project_to_head(past.event_log, past.projections, until=cut.position)
            with log.project(upto=cut.position) as then:
                assert rows(then.query, exclude=("projection_versions",),
                            with_times=False) == services_rows(past, with_times=False)
            moment = cut.event.observed_at
            expected = log.position_at(moment)
            assert all(e.event.observed_at <= moment for e in entries
                       if e.position <= expected)
            with log.project(at=moment) as then:
                assert then.position == expected
        finally:
            past.close()


def test_opening_makes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_log(tmp_path / "nothing")
    assert list(tmp_path.iterdir()) == []
