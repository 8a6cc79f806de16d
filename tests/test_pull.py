"""`appview.pull`: a pull interrupted anywhere, any number of times, resumes to a log
equal to the source's; answers that are not the stream are refused."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.pull import PullError, _lines, cursor_source, events_url, pull
from events.export import ExportHeader, to_line
from events.log import EventLog
from events.public import public_logged
from events.store import open_event_log
from tests.conftest import Backend
from tests.rebuild_support import seeded

URL = "http://forum.example:8080"


class Cut(Exception):
    """Where a fake connection drops."""


class Source:
    """The stream endpoint over a log, as a Fetch; it cuts its answers where told: after
    so many lines in all (``cuts``), whole or within a line."""

    def __init__(self, log: EventLog, cuts: Iterable[tuple[int, bool]] = ()) -> None:
        self.log = log
        self.cuts = list(cuts)
        self.lines_sent = 0
        self.urls: list[str] = []

    def lines(self, url: str) -> Iterator[bytes]:
        query = parse_qs(urlsplit(url).query)
        after, limit = int(query["after"][0]), int(query["limit"][0])
        public = query.get("public") == ["1"]
        yield ExportHeader("did:plc:forum", after, None, self.log.head()).to_line().encode() \
            + b"\n"
        for logged in self.log.read(after, limit):
            shown = public_logged(logged) if public else logged
            if shown is not None:
                yield to_line(shown).encode() + b"\n"

    @contextmanager
    def __call__(self, url: str, token: str | None) -> Iterator[Iterable[bytes]]:
        self.urls.append(url)
        yield self._cut(self.lines(url))

    def _cut(self, lines: Iterator[bytes]) -> Iterator[bytes]:
        for line in lines:
            if self.cuts and self.lines_sent >= self.cuts[0][0]:
                _, within = self.cuts.pop(0)
                if within:
                    yield line[: len(line) // 2]
                raise OSError("connection reset")
            self.lines_sent += 1
            yield line


def events_of(log: EventLog) -> list[object]:
    return [logged.event for logged in log.iter_from()]


@pytest.fixture(scope="module")
def source_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventLog]:
    tmp = tmp_path_factory.mktemp("source")
    services, _ = seeded(Backend("sqlite", f"sqlite:///{tmp}/e.sqlite3", None, tmp),
                         topics=8, project=False)
    services.read_models.close()
    yield services.event_log
    services.event_log.close()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, 400), st.booleans()), max_size=6),
       page=st.integers(1, 120), batch=st.integers(1, 50))
def test_any_sequence_of_interrupted_pulls_yields_the_source_log(
        source_log: EventLog, cuts: list[tuple[int, bool]], page: int, batch: int) -> None:
    fetch = Source(source_log, sorted(cuts))
    with tempfile.TemporaryDirectory() as tmp:
        local = open_event_log(f"sqlite:///{tmp}/events.sqlite3")
        try:
            for _attempt in range(len(cuts) + 1):
                try:
                    report = pull(local, URL, page=page, batch_size=batch, fetch=fetch)
                    break
                except PullError:
                    continue
            else:
                pytest.fail("the pull never finished")
            assert events_of(local) == events_of(source_log)
            assert report.position == source_log.head()
            assert report.duplicates == 0  # nothing received whole was asked for again
            fetch.cuts.clear()  # cuts past what the pull needed are not this one's
            again = pull(local, URL, fetch=fetch)
            assert again.received == 0 and events_of(local) == events_of(source_log)
        finally:
            local.close()


def test_a_pull_resumes_after_the_last_one_and_appends_only_new_events(
        source_log: EventLog, tmp_path: Path) -> None:
    local = open_event_log(f"sqlite:///{tmp_path}/events.sqlite3")
    fetch = Source(source_log)
    try:
        first = pull(local, URL, page=100, fetch=fetch)
        assert first.received == source_log.count() and first.requests > 1
        assert local.cursor(cursor_source(URL)) is not None
        fetch.urls.clear()
        second = pull(local, f"{URL}/some/page?x=1", fetch=fetch)
        assert second.received == 0 and second.started_after == source_log.head()
        assert fetch.urls == [f"{URL}/api/admin/events?after={source_log.head()}"
                              "&limit=50000"]
    finally:
        local.close()


def test_the_public_view_is_pulled_under_a_cursor_of_its_own(
        source_log: EventLog, tmp_path: Path) -> None:
    local = open_event_log(f"sqlite:///{tmp_path}/events.sqlite3")
    try:
        report = pull(local, URL, public=True, fetch=Source(source_log))
        assert report.position == source_log.head()
        assert local.cursor(cursor_source(URL)) is None
        assert local.cursor(cursor_source(URL, public=True)) is not None
        expected = [p.event for p in map(public_logged, source_log.iter_from()) if p]
        assert events_of(local) == expected
    finally:
        local.close()


def test_an_answer_that_is_not_the_stream_is_refused(tmp_path: Path) -> None:
    @contextmanager
    def html(url: str, token: str | None) -> Iterator[Iterable[bytes]]:
        yield [b"<html>\n"]

    local = open_event_log(f"sqlite:///{tmp_path}/events.sqlite3")
    try:
        with pytest.raises(PullError, match=r"not an event|header"):
            pull(local, URL, fetch=html)
        assert local.count() == 0
    finally:
        local.close()


def test_urls_typed_by_a_developer() -> None:
    assert events_url("forum.example") == "http://forum.example/api/admin/events"
    assert events_url("https://f.example/x?y=1") == "https://f.example/api/admin/events"
    with pytest.raises(ValueError):
        events_url("ftp://f.example")


class _Blocks:
    """An answer that arrives in the blocks given (as read1 returns them)."""

    def __init__(self, *blocks: bytes) -> None:
        self.blocks = list(blocks)

    def read1(self, size: int) -> bytes:
        return self.blocks.pop(0) if self.blocks else b""


def test_an_answer_read_in_blocks_gives_whole_lines_and_a_cut_last_one() -> None:
    whole = list(_lines(_Blocks(b'{"a"', b':1}\n{"b":2}\n{', b'"c":3}\n')))  # type: ignore[arg-type]
    assert whole == [b'{"a":1}\n', b'{"b":2}\n', b'{"c":3}\n']
    cut = list(_lines(_Blocks(b'{"a":1}\n{"b"')))  # type: ignore[arg-type]
    assert cut == [b'{"a":1}\n', b'{"b"']
