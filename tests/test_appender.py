"""appview.ingest.appender: every line in one bucket, each refused or invalid line
reported once, identity and account events held back in an order-free way; on SQLite
and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.ingest.appender import LineAppender, LineError
from events.jetstream import to_line
from events.lexicon import LexiconValidator
from events.log import EventLog
from events.model import AccountStatusChanged, IdentityChanged, LogEvent, RecordEvent
from events.store import open_event_log
from tests.conftest import Backend
from tests.forum_strategies import FORUM_DID, MEMBER_DIDS, any_order, forums

ALICE, BOB = MEMBER_DIDS[0], MEMBER_DIDS[1]
STRANGER = "did:plc:strangerstrangerstranger"
OBSERVED_US = 1_780_000_000_000_000
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
FORUM_REF = {"uri": f"at://{FORUM_DID}/space.atbb.forum.forum/self", "cid": CID}
BOARD_REF = {"uri": f"at://{FORUM_DID}/space.atbb.forum.board/3kboard2222222", "cid": CID}


class FixedClock:
    def now_us(self) -> int:
        return OBSERVED_US


@pytest.fixture(scope="module")
def validator() -> LexiconValidator:
    return LexiconValidator.load()


@pytest.fixture
def logs(backend: Backend) -> Callable[[], AbstractContextManager[EventLog]]:
    """A fresh event log per call, closed after use (the backend fixture drops it)."""
    counter = itertools.count()

    @contextmanager
    def fresh() -> Iterator[EventLog]:
        n = next(counter)
        if backend.name == "sqlite":
            event_log = open_event_log(f"sqlite:///{backend.tmp / f'events-{n}.sqlite3'}")
        else:
            event_log = open_event_log(backend.url, schema=f"{backend.schema}_l{n}")
        try:
            yield event_log
        finally:
            event_log.close()

    return fresh


def appender_on(event_log: EventLog, validator: LexiconValidator, reported: list[LineError],
                batch_size: int | None = 2000) -> LineAppender:
    return LineAppender(event_log, validator, forum_did=FORUM_DID, clock=FixedClock(),
                        batch_size=batch_size, on_line=reported.append)


def topic(did: str, rkey: str, rev: str, *, valid_text: bool = True) -> str:
    record: dict[str, object] = {"$type": "space.atbb.post", "title": "A topic",
                                 "forum": FORUM_REF, "board": BOARD_REF,
                                 "createdAt": "2026-01-02T03:04:05.000Z"}
    if valid_text:
        record["text"] = "hello"
    event = RecordEvent("create", did, "space.atbb.post", rkey, rev, CID, record, True, None,
                        "jetstream", 1, 0)
    return to_line(event, 1)


def identity(did: str, seq: int, handle: str) -> str:
    return to_line(IdentityChanged(did, handle, seq, None, "jetstream", None, 0), 10 + seq)


def account(did: str, seq: int) -> str:
    return to_line(AccountStatusChanged(did, False, "takendown", seq, None, "jetstream", None,
                                        0), 10 + seq)


def feed_all(appender: LineAppender, lines: list[str]) -> None:
    for number, line in enumerate(lines, start=1):
        appender.feed(line, number)
    appender.flush()


def test_a_held_back_identity_event_is_counted_once_when_its_did_writes(logs, validator):
    reported: list[LineError] = []
    with logs() as event_log:
        appender = appender_on(event_log, validator, reported, batch_size=1)
        feed_all(appender, [
            identity(ALICE, 1, "alice.test"),
            account(ALICE, 2),
            identity(STRANGER, 3, "stranger.test"),
            topic(ALICE, "3kaaaaaaaaaa2", "3kaaaaaaaaaa2"),
        ])
        stats = appender.stats
        assert (stats.lines, stats.stored, stats.held, stats.ignored) == (4, 3, 1, 0)
        assert stats.buckets == stats.lines
        assert event_log.count() == 3
        assert reported == []


def test_the_greatest_seq_waits_for_the_first_record_whatever_the_order(logs, validator):
    with logs() as event_log:
        appender = appender_on(event_log, validator, [])
        feed_all(appender, [
            identity(ALICE, 7, "newer.test"),
            identity(ALICE, 5, "older.test"),
            account(ALICE, 9),
            account(ALICE, 8),
            topic(ALICE, "3kaaaaaaaaaa2", "3kaaaaaaaaaa2"),
        ])
        kept = [item.event for item in event_log.iter_from(0)]
        assert [(type(e).__name__, getattr(e, "seq", None)) for e in kept] == [
            ("IdentityChanged", 7), ("AccountStatusChanged", 9), ("RecordEvent", None)]
        assert (appender.stats.stored, appender.stats.held) == (3, 2)


def test_refused_and_invalid_lines_are_reported_once_each_with_the_right_level(
        logs, validator, caplog):
    lines = [
        topic(ALICE, "3kaaaaaaaaaa2", "3kaaaaaaaaaa2"),
        "{not json",
        topic(BOB, "3kaaaaaaaaab2", "3kaaaaaaaaab2", valid_text=False),
        topic(ALICE, "3kaaaaaaaaaa2", "3kaaaaaaaaaa2"),  # a re-delivery
        topic(BOB, "3kaaaaaaaaab2", "3kaaaaaaaaab2", valid_text=False),  # and of an invalid
        "   ",
    ]
    reported: list[LineError] = []
    caplog.set_level(logging.WARNING, logger="appview.ingest.appender")
    with logs() as event_log:
        appender = appender_on(event_log, validator, reported, batch_size=2)
        feed_all(appender, lines)
    stats = appender.stats
    assert (stats.stored, stats.invalid, stats.duplicates, stats.errors, stats.ignored) == (
        2, 1, 2, 1, 1)
    assert stats.buckets == stats.lines == 6
    assert sorted((r.line, r.outcome) for r in reported) == [
        (2, "error"), (3, "invalid"), (4, "duplicate"), (5, "duplicate")]
    by_line = {r.line: r.reason for r in reported}
    assert "text" in by_line[3] and "at://did:plc:bob" in by_line[3]
    assert by_line[4].startswith("already in the log: at://did:plc:alice")
    warned = [r.getMessage() for r in caplog.records]
    assert len([m for m in warned if m.startswith("line 2:")]) == 1
    assert len([m for m in warned if m.startswith("line 3:")]) == 1
    assert not [m for m in warned if m.startswith(("line 4:", "line 5:"))]


# --- any input ---------------------------------------------------------------------------

_NOT_OURS = json.dumps({"did": ALICE, "time_us": 5, "kind": "commit", "commit": {
    "rev": "3kaaaaaaaaaa2", "operation": "create", "collection": "app.bsky.feed.post",
    "rkey": "3kaaaaaaaaaa2", "record": {"text": "hi"}, "cid": CID}})


@st.composite
def inputs(draw: st.DrawFn) -> list[str]:
    """Lines of a forum's stream in any order and re-sent, mixed with lines that are not
    ours, identity events of strangers, blank and malformed lines."""
    scenario = draw(forums(max_steps=20))
    events: list[LogEvent] = draw(any_order(scenario))
    lines = [to_line(e, e.source_cursor or 1 if isinstance(e, RecordEvent) else 10 + e.seq)
             for e in events]
    extras = st.one_of(
        st.just(_NOT_OURS),
        st.builds(lambda seq: identity(STRANGER, seq, "stranger.test"), st.integers(1, 5)),
        st.sampled_from(("", "  ", "{", "[]", '{"kind": "commit"}', "null")),
        st.text(max_size=30),
    )
    for extra in draw(st.lists(extras, max_size=12)):
        lines.insert(draw(st.integers(0, len(lines))), extra)
    return lines


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=inputs(), batch_size=st.sampled_from((1, 4, 2000)))
def test_any_input_lands_in_the_buckets_and_the_report_names_each_line_once(
        logs, validator, lines, batch_size):
    reported: list[LineError] = []
    with logs() as event_log:
        appender = appender_on(event_log, validator, reported, batch_size=batch_size)
        feed_all(appender, lines)
        stats = appender.stats
        assert stats.lines == len(lines)
        assert stats.buckets == stats.lines and stats.pending == 0
        assert stats.stored == event_log.count()
    numbers = [r.line for r in reported]
    assert len(numbers) == len(set(numbers))
    by_outcome = {outcome: sum(1 for r in reported if r.outcome == outcome)
                  for outcome in ("error", "duplicate", "invalid")}
    assert by_outcome == {"error": stats.errors, "duplicate": stats.duplicates,
                          "invalid": stats.invalid}
    stranger_lines = sum(1 for line in lines if line.startswith('{"did":"' + STRANGER))
    assert stats.held >= stranger_lines
