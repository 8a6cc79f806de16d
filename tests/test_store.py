"""events.store: the EventLog contract, run on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from events.codec import CodecError
from events.log import AppendResult, CursorUpdate, EventLog, RecordHead
from events.model import (
    AccountStatus,
    AccountStatusChanged,
    IdentityChanged,
    LogEvent,
    Logged,
    RecordEvent,
    int_to_tid,
    originator_of,
)
from events.store import RecorderEventLog, open_event_log
from tests.conftest import Backend, postgres_url

ALICE = "did:plc:alice000000000000000000"
BOB = "did:plc:bob00000000000000000000"
POST = "space.atbb.post"
T0 = 1_735_000_000_000_000 << 10  # a realistic TID value


def rev(n: int) -> str:
    return int_to_tid(T0 + n)


def post(
    rkey: str,
    n: int,
    operation: str = "create",
    *,
    did: str = ALICE,
    collection: str = POST,
    text: str = "hello",
    **changes: Any,
) -> RecordEvent:
    deleted = operation == "delete"
    fields: dict[str, Any] = {
        "operation": operation,
        "did": did,
        "collection": collection,
        "rkey": rkey,
        "rev": rev(n),
        "cid": None if deleted else f"bafy{rkey}{n}",
        "record": None if deleted else {"$type": collection, "text": f"{text} {n}"},
        "valid": True,
        "reason": None,
        "source": "jetstream",
        "source_cursor": 1000 + n,
        "observed_at": 2000 + n,
    }
    fields.update(changes)
    return RecordEvent(**fields)


def identity(did: str, seq: int, handle: str | None = "alice.test") -> IdentityChanged:
    return IdentityChanged(did, handle, seq, None, "jetstream", None, 3000 + seq)


def account(did: str, seq: int, status: AccountStatus | None = "takendown") -> AccountStatusChanged:
    return AccountStatusChanged(
        did, status is None, status, seq, None, "jetstream", None, 4000 + seq
    )


def uri(rkey: str, did: str = ALICE) -> str:
    return f"at://{did}/{POST}/{rkey}"


def open_log(backend: Backend, name: str = "", *, create: bool = True) -> EventLog:
    """The backend's log, or (``name``) a separate one beside it."""
    if backend.schema is None:
        file = backend.tmp / f"events{name}.sqlite3"
        return open_event_log(f"sqlite:///{file}", create=create)
    schema = f"{backend.schema}_{name}" if name else backend.schema
    return open_event_log(backend.url, schema=schema, create=create)


@pytest.fixture
def log(backend: Backend) -> Iterator[EventLog]:
    event_log = open_log(backend)
    try:
        yield event_log
    finally:
        event_log.close()


def everything(event_log: EventLog) -> list[Logged]:
    return list(event_log.iter_from(0, page=7))


def keys(logged: list[Logged]) -> list[tuple[str, int]]:
    return [originator_of(item.event) for item in logged]


def stored_columns(backend: Backend) -> list[tuple[Any, ...]]:
    """Our extra columns as the database holds them, in log order."""
    columns = "did, collection, rkey, rev, cid, kind, valid, source, source_cursor, observed_at"
    if backend.schema is None:
        with sqlite3.connect(backend.tmp / "events.sqlite3") as conn:
            rows = conn.execute(f"SELECT {columns} FROM stored_events ORDER BY rowid").fetchall()
    else:
        with psycopg.connect(postgres_url()) as conn:
            query = SQL("SELECT {} FROM {}.stored_events ORDER BY notification_id").format(
                SQL(columns), Identifier(backend.schema)
            )
            rows = conn.execute(query).fetchall()
    return [(*row[:6], None if row[6] is None else bool(row[6]), *row[7:]) for row in rows]


def test_append_then_read_gives_events_in_order_with_positions(log: EventLog) -> None:
    first: list[LogEvent] = [post("a", 1), post("b", 1), identity(ALICE, 1)]
    second: list[LogEvent] = [post("a", 2, "update"), account(ALICE, 1), post("c", 1, did=BOB)]

    r1 = log.append(first)
    r2 = log.append(second)

    assert (r1.appended, r2.appended) == (3, 3)
    positions = r1.positions + r2.positions
    assert positions == sorted(set(positions)) and positions[0] >= 1
    logged = log.read(0, 100)
    assert [item.position for item in logged] == positions
    assert [item.event for item in logged] == first + second
    assert log.head() == positions[-1]
    assert log.count() == 6
    assert log.read(positions[1], 2) == logged[2:4]
    assert log.read(positions[0], 100, until=positions[3]) == logged[1:4]
    assert log.read(log.head(), 10) == []
    assert everything(log) == logged
    assert list(log.iter_from(positions[2], until=positions[4], page=1)) == logged[3:5]


def test_an_empty_log_has_head_zero(log: EventLog) -> None:
    assert (log.head(), log.count(), log.read(0, 10), log.known_dids()) == (0, 0, [], [])
    assert log.append([]) == AppendResult()
    assert log.cursor("jetstream") is None
    assert log.history(uri("a")) == [] and log.repo_heads(ALICE) == {}


def test_a_duplicate_within_a_batch_is_counted_once_and_not_stored(log: EventLog) -> None:
    result = log.append([post("a", 1), post("b", 1), post("a", 1), identity(ALICE, 5)] * 2)

    assert (result.appended, result.duplicates, result.dropped) == (3, 5, 0)
    assert result.duplicate_indexes == [2, 4, 5, 6, 7]
    assert keys(everything(log)) == [
        (uri("a"), T0 + 1),
        (uri("b"), T0 + 1),
        (f"identity:{ALICE}", 5),
    ]


def test_a_duplicate_across_batches_does_not_fail_the_batch(log: EventLog) -> None:
    log.append([post("a", 1), identity(ALICE, 1)])

    result = log.append([post("b", 1), post("a", 1), identity(ALICE, 1), post("c", 1)])

    assert (result.appended, result.duplicates, result.duplicate_indexes) == (2, 2, [1, 2])
    assert [item.event for item in everything(log)][2:] == [post("b", 1), post("c", 1)]
    assert [item.position for item in everything(log)][2:] == result.positions


def test_an_older_rev_observed_later_is_still_stored(log: EventLog) -> None:
    # Each was a version of its record: the log keeps every one observed, in the order
    # observed; which one a read model shows is the projection's rule (the greatest rev).
    log.append([post("a", 20, "update")])

    result = log.append([post("a", 10), post("b", 6, "update"), post("b", 5)])

    assert (result.appended, result.duplicates) == (3, 0)
    assert [item.event for item in everything(log)] == [
        post("a", 20, "update"),
        post("a", 10),
        post("b", 6, "update"),
        post("b", 5),
    ]
    assert [item.event for item in log.history(uri("b"))] == [post("b", 5), post("b", 6, "update")]
    assert log.repo_heads(ALICE)[uri("a")].rev == rev(20)


def test_a_create_observed_after_its_delete_is_stored(log: EventLog) -> None:
    log.append([post("a", 5, "delete")])

    result = log.append([post("a", 4), post("a", 5, "delete")])

    assert (result.appended, result.duplicates, result.duplicate_indexes) == (1, 1, [1])
    assert [item.event for item in log.history(uri("a"))] == [post("a", 4), post("a", 5, "delete")]
    assert log.repo_heads(ALICE)[uri("a")] == RecordHead(uri("a"), rev(5), None, True)


def test_how_a_stream_is_batched_does_not_change_what_is_stored(log: EventLog) -> None:
    # A create and its later update in one batch are both kept, as they would be in two.
    result = log.append([post("b", 5), post("b", 6, "update")])

    assert (result.appended, result.duplicates) == (2, 0)
    assert [item.event for item in log.history(uri("b"))] == [
        post("b", 5), post("b", 6, "update"),
    ]


def test_an_older_delete_never_becomes_the_records_head(log: EventLog) -> None:
    log.append([post("a", 5, "update")])

    result = log.append([post("a", 4, "delete")])

    assert result.appended == 1
    assert log.repo_heads(ALICE)[uri("a")].deleted is False


def test_an_equal_rev_redelivery_adds_nothing(log: EventLog) -> None:
    batch: list[LogEvent] = [post("a", 1), post("a", 2, "update"), identity(ALICE, 3)]
    batch.append(account(BOB, 4))
    log.append(batch)
    before = everything(log)

    result = log.append([post("a", 2, "update"), identity(ALICE, 3), account(BOB, 4)])

    assert (result.appended, result.duplicates, result.positions) == (0, 3, [])
    assert everything(log) == before
    assert log.count() == 4  # rev 1 and rev 2 of the record, identity, account


def test_records_outside_space_atbb_are_dropped(log: EventLog) -> None:
    result = log.append(
        [post("a", 1, collection="app.bsky.feed.post"), post("b", 1), identity(BOB, 1)],
        CursorUpdate("jetstream", 77),
    )

    assert (result.appended, result.dropped) == (2, 1)
    assert [item.event for item in everything(log)] == [post("b", 1), identity(BOB, 1)]
    assert log.known_dids() == [ALICE]
    cursor = log.cursor("jetstream")
    assert cursor is not None and cursor.value == 77


def test_an_all_dropped_batch_still_writes_its_cursor(log: EventLog) -> None:
    result = log.append([post("a", 1, collection="com.example.x")], CursorUpdate("js", 5))

    assert (result.appended, result.dropped) == (0, 1)
    cursor = log.cursor("js")
    assert cursor is not None and cursor.value == 5
    assert log.count() == 0


def test_invalid_records_are_stored_with_their_reason(log: EventLog) -> None:
    bad = post("a", 1, valid=False, reason="record/text: required")

    log.append([bad])

    assert everything(log)[0].event == bad


def test_the_queryable_columns_hold_each_event(backend: Backend, log: EventLog) -> None:
    log.append(
        [
            post("a", 1, valid=False, reason="nope"),
            post("b", 2, "delete", source="backfill", source_cursor=None),
            identity(BOB, 9),
        ]
    )

    assert stored_columns(backend) == [
        (ALICE, POST, "a", rev(1), "bafya1", "create", False, "jetstream", 1001, 2001),
        (ALICE, POST, "b", rev(2), None, "delete", True, "backfill", None, 2002),
        (BOB, None, None, None, None, "identity", None, "jetstream", None, 3009),
    ]


def test_the_cursor_is_written_with_the_events_and_never_moves_back(log: EventLog) -> None:
    log.append([post("a", 1)], CursorUpdate("jetstream", 500))
    first = log.cursor("jetstream")

    log.append([post("b", 1)], CursorUpdate("jetstream", 300))
    log.append([], CursorUpdate("backfill", 9))

    second = log.cursor("jetstream")
    assert first is not None and second is not None
    assert (first.value, second.value) == (500, 500)
    assert second.updated_at >= first.updated_at > 1_600_000_000_000_000
    other = log.cursor("backfill")
    assert other is not None and other.value == 9
    log.append([], CursorUpdate("jetstream", 900))
    moved = log.cursor("jetstream")
    assert moved is not None and moved.value == 900
    assert log.count() == 2


def test_a_failure_mid_append_leaves_neither_events_nor_cursor(log: EventLog) -> None:
    log.append([post("a", 1)], CursorUpdate("jetstream", 10))
    before = everything(log)

    # The events go in first; the cursor does not fit a BIGINT, so the same transaction
    # fails after them.
    with pytest.raises(PersistenceError):
        log.append([post("b", 1), post("c", 1)], CursorUpdate("jetstream", 2**70))
    # This time the insert itself fails, on the second row.
    with pytest.raises(PersistenceError):
        log.append([post("d", 1), post("e", 1, observed_at=2**70)], CursorUpdate("jetstream", 20))
    # And an event that cannot be encoded fails before the database is touched.
    with pytest.raises(CodecError, match="JSON"):
        log.append([post("f", 1), post("g", 1, record={"x": {1, 2}})], CursorUpdate("js", 1))

    assert everything(log) == before
    cursor = log.cursor("jetstream")
    assert cursor is not None and cursor.value == 10
    assert log.cursor("js") is None
    result = log.append([post("b", 1)], CursorUpdate("jetstream", 30))
    assert result.appended == 1 and result.positions[0] > before[-1].position


def test_history_is_oldest_rev_first_and_only_that_record(log: EventLog) -> None:
    log.append([post("a", 1), post("b", 1)])
    log.append([post("a", 3, "update")])
    log.append([post("a", 2, "update"), post("a", 5, "delete")])

    history = log.history(uri("a"))

    assert [item.event for item in history] == [
        post("a", 1),
        post("a", 2, "update"),
        post("a", 3, "update"),
        post("a", 5, "delete"),
    ]
    # rev 2 was observed after rev 3: the history is by rev, not by position
    assert [item.position for item in history] != sorted(item.position for item in history)
    assert log.history(uri("zzz")) == []


def test_repo_heads_after_create_update_and_delete(log: EventLog) -> None:
    log.append([post("a", 1), post("b", 1), post("c", 1), identity(ALICE, 1)])
    log.append([post("b", 4, "update"), post("c", 5, "delete"), post("a", 1, did=BOB)])

    heads = log.repo_heads(ALICE)

    assert heads == {
        uri("a"): RecordHead(uri("a"), rev(1), "bafya1", False),
        uri("b"): RecordHead(uri("b"), rev(4), "bafyb4", False),
        uri("c"): RecordHead(uri("c"), rev(5), None, True),
    }
    assert log.repo_heads(BOB) == {
        uri("a", BOB): RecordHead(uri("a", BOB), rev(1), "bafya1", False)
    }
    assert log.repo_heads("did:plc:nobody") == {}


def test_known_dids_are_the_distinct_writers_of_records(log: EventLog) -> None:
    carol = "did:web:carol.example.com"
    log.append([post("a", 1, did=BOB), post("b", 1, did=BOB), post("a", 1), identity(carol, 1)])
    log.append([account(carol, 2), post("x", 1, did=carol, collection="app.bsky.feed.like")])

    assert log.known_dids() == [ALICE, BOB]


def test_identity_and_account_events_are_deduplicated_by_seq(log: EventLog) -> None:
    first = log.append([identity(ALICE, 1), identity(ALICE, 2), account(ALICE, 1)])
    second = log.append(
        [identity(ALICE, 2), identity(ALICE, 1, handle=None), identity(BOB, 1), account(ALICE, 1)]
    )
    third = log.append([account(ALICE, 2, status=None), identity(ALICE, 3)])

    assert (first.appended, second.appended, second.duplicates, third.appended) == (3, 1, 3, 2)
    assert (second.duplicate_indexes, third.duplicates) == ([0, 1, 3], 0)
    assert [originator_of(item.event) for item in everything(log)] == [
        (f"identity:{ALICE}", 1),
        (f"identity:{ALICE}", 2),
        (f"account:{ALICE}", 1),
        (f"identity:{BOB}", 1),
        (f"account:{ALICE}", 2),
        (f"identity:{ALICE}", 3),
    ]
    # The first delivery of a seq is the one kept.
    assert everything(log)[0].event == identity(ALICE, 1)


def test_reopening_the_log_keeps_everything(backend: Backend) -> None:
    event_log = open_log(backend)
    event_log.append([post("a", 1), identity(ALICE, 1)], CursorUpdate("jetstream", 42))
    before = everything(event_log)
    event_log.close()

    for create in (True, False):
        reopened = open_log(backend, create=create)
        try:
            assert everything(reopened) == before
            assert reopened.repo_heads(ALICE)[uri("a")].rev == rev(1)
            cursor = reopened.cursor("jetstream")
            assert cursor is not None and cursor.value == 42
        finally:
            reopened.close()

    reopened = open_log(backend)
    try:
        result = reopened.append([post("a", 1), post("a", 2, "update")])
        assert (result.duplicates, result.appended) == (1, 1)
        assert result.positions[0] > before[-1].position
    finally:
        reopened.close()


def test_the_library_notification_log_is_the_same_log(log: EventLog) -> None:
    result = log.append([post("a", 1), identity(ALICE, 1), post("b", 1)])

    assert isinstance(log, RecorderEventLog)
    notifications = log.recorder.select_notifications(start=0, limit=10)
    assert [n.id for n in notifications] == result.positions
    assert [n.topic for n in notifications] == [
        "atbb.RecordCreated",
        "atbb.IdentityChanged",
        "atbb.RecordCreated",
    ]
    assert log.recorder.max_notification_id() == log.head()
    assert [e.originator_version for e in log.recorder.select_events(uri("a"))] == [T0 + 1]
    # The stock insert path keeps the library's promise: a duplicate raises.
    stored = log.recorder.select_events(uri("a"))[0]
    log.recorder.insert_events([StoredEvent(uri("z"), 7, stored.topic, stored.state)])
    assert log.count() == 4
    with pytest.raises(IntegrityError):
        log.recorder.insert_events([StoredEvent(uri("z"), 7, stored.topic, stored.state)])


def test_a_concurrent_reader_never_sees_a_gap_fill_later(log: EventLog) -> None:
    # Two writers racing each other: without the write serialisation a transaction could
    # take lower positions than another yet commit after it, and the reader, already
    # past them, would never see those events.
    batches = 20
    writers_left = threading.Semaphore(0)
    failures: list[BaseException] = []

    def write(name: str) -> None:
        try:
            for b in range(batches):
                events = [post(f"{name}{b}-{i}", 1) for i in range(30)]
                # Re-deliveries consume no position on SQLite and leave gaps on PostgreSQL.
                events += [post(f"{name}{max(b - 1, 0)}-{i}", 1) for i in range(5)]
                log.append(events, CursorUpdate(name, b))
        except BaseException as exc:
            failures.append(exc)
        finally:
            writers_left.release()

    writers = [threading.Thread(target=write, args=(name,)) for name in ("w", "v")]
    for writer in writers:
        writer.start()
    seen: list[int] = []
    position = 0
    finished = 0
    while True:
        if writers_left.acquire(blocking=False):
            finished += 1
        page = log.read(position, 15)
        seen.extend(item.position for item in page)
        if page:
            position = page[-1].position
        elif finished == len(writers):
            break
    for writer in writers:
        writer.join()

    assert failures == []
    assert seen == sorted(set(seen))
    assert seen == [item.position for item in everything(log)]
    assert len(seen) == 2 * batches * 30


def _append_in_time(log: EventLog, events: list[LogEvent], seconds: float) -> AppendResult:
    """Append on a thread and insist it returns promptly (the PostgreSQL pipeline-mode
    hang on large saves would otherwise stall the run)."""
    results: list[AppendResult] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(log.append(events))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"append of {len(events)} events hung for {seconds}s"
    assert failures == []
    return results[0]


def test_a_one_megabyte_batch_and_a_900_kb_record_append_promptly(log: EventLog) -> None:
    batch: list[LogEvent] = [post(f"big{i}", 1, text="x" * 4000) for i in range(260)]
    huge = post("huge", 1, record={"$type": POST, "text": "é" * 450_000})

    assert _append_in_time(log, batch, 30).appended == 260
    assert _append_in_time(log, [huge], 30).appended == 1

    assert log.history(uri("huge"))[0].event == huge
    assert sum(1 for _ in log.iter_from(0)) == 261


def test_open_event_log_refuses_what_it_cannot_open(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported event log URL scheme 'mysql'"):
        open_event_log("mysql://root@localhost/x")
    with pytest.raises(ValueError, match="TCP only"):
        open_event_log("postgresql://postgres@/test?host=/var/run/postgresql")
    with pytest.raises(ValueError, match="no database name") as refused:
        open_event_log("postgresql://postgres:s3cret@127.0.0.1:5432/")
    assert "s3cret" not in str(refused.value)  # errors are printed and logged
    with pytest.raises(ValueError, match="schema"):
        open_event_log(f"sqlite:///{tmp_path}/e.sqlite3", schema="atbb")
    with pytest.raises(FileNotFoundError, match="create=False"):
        open_event_log(f"sqlite:///{tmp_path}/missing.sqlite3", create=False)


def test_sqlite_creates_parent_directories_and_supports_memory(tmp_path: Path) -> None:
    nested = open_event_log(f"sqlite:///{tmp_path}/a/b/c/events.sqlite3")
    memory = open_event_log("sqlite:///:memory:")
    try:
        for event_log in (nested, memory):
            event_log.append([post("a", 1)], CursorUpdate("js", 1))
            assert [item.event for item in everything(event_log)] == [post("a", 1)]
        assert (tmp_path / "a" / "b" / "c" / "events.sqlite3").exists()
    finally:
        nested.close()
        memory.close()



def test_sqlite_log_connections_checkpoint_rarely_and_cache_more(tmp_path: Path) -> None:
    from events.store_sqlite import (
        CACHE_SIZE_KIB,
        JOURNAL_SIZE_LIMIT_BYTES,
        WAL_AUTOCHECKPOINT_PAGES,
        LogSQLiteRecorder,
    )

    event_log = open_event_log(f"sqlite:///{tmp_path}/events.sqlite3")
    try:
        assert isinstance(event_log, RecorderEventLog)
        assert isinstance(event_log.recorder, LogSQLiteRecorder)
        with event_log.recorder.datastore.transaction(commit=False) as c:
            settings_seen = {}
            for pragma in ("journal_mode", "synchronous", "wal_autocheckpoint",
                           "journal_size_limit", "cache_size"):
                c.execute(f"PRAGMA {pragma}")
                settings_seen[pragma] = c.fetchone()[0]
        assert settings_seen == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "wal_autocheckpoint": WAL_AUTOCHECKPOINT_PAGES,
            "journal_size_limit": JOURNAL_SIZE_LIMIT_BYTES,
            "cache_size": -CACHE_SIZE_KIB,
        }
    finally:
        event_log.close()

# Re-deliveries and rewinds: a small universe of records, revs and seqs, so that
# sequences repeat themselves often. Re-delivered content is identical, as it is on the
# wire.
def _universe() -> list[LogEvent]:
    events: list[LogEvent] = []
    for did in (ALICE, BOB):
        for rkey in ("p", "q"):
            events.append(post(rkey, 1, did=did))
            events.append(post(rkey, 2, "update", did=did))
            events.append(post(rkey, 3, "delete", did=did))
        events.append(identity(did, 1))
        events.append(identity(did, 2))
        events.append(account(did, 1))
        events.append(post("x", 1, did=did, collection="app.bsky.feed.post"))
    return events


UNIVERSE = _universe()


def _first_of_each(events: list[LogEvent]) -> list[LogEvent]:
    """The deduplicated sequence: the first delivery of each (originator, version), in
    the order delivered, non-atbb records left out."""
    first: dict[tuple[str, int], LogEvent] = {}
    for event in events:
        if isinstance(event, RecordEvent) and not event.collection.startswith("space.atbb."):
            continue
        first.setdefault(originator_of(event), event)
    return list(first.values())


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    events=st.lists(st.sampled_from(UNIVERSE), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=6),
)
def test_any_batching_of_redeliveries_converges_on_the_deduplicated_log(
    backend: Backend, events: list[LogEvent], cuts: list[int]
) -> None:
    name = uuid.uuid4().hex[:8]
    batched, once = open_log(backend, f"b{name}"), open_log(backend, f"o{name}")
    single = open_log(backend, f"s{name}")
    try:
        single.append(events)
        bounds = [0, *sorted(c for c in cuts if c < len(events)), len(events)]
        total = AppendResult()
        for start, stop in itertools.pairwise(bounds):
            total.merge(batched.append(events[start:stop]))
        reference = _first_of_each(events)
        once_result = once.append(reference)

        # Appending the deduplicated sequence once stores exactly it.
        assert once_result.appended == len(reference)
        assert keys(everything(once)) == [originator_of(e) for e in reference]
        stored = everything(batched)
        # The cuts between batches change nothing: the same events, in the same order:
        # every version delivered, once, in the order first delivered, whatever its rev...
        assert keys(stored) == keys(everything(single)) == keys(everything(once))
        assert [item.event for item in stored] == reference
        for did in (ALICE, BOB):
            assert batched.repo_heads(did) == once.repo_heads(did)
        # ...and every event given is accounted for once: the duplicates by their place.
        assert total.appended == len(stored) == batched.count()
        assert total.appended + total.duplicates + total.dropped == len(events)
        assert total.positions == [item.position for item in stored]
        dropped = {i for i, e in enumerate(events)
                   if isinstance(e, RecordEvent) and not e.collection.startswith("space.atbb.")}
        seen: set[tuple[str, int]] = set()
        repeated = []
        for index, event in enumerate(events):
            if index in dropped:
                continue
            if originator_of(event) in seen:
                repeated.append(index)
            seen.add(originator_of(event))
        assert total.duplicate_indexes == repeated
    finally:
        batched.close()
        once.close()
        single.close()


def test_a_log_has_one_identity_for_life_and_another_log_has_another(
        backend: Backend) -> None:
    first = open_log(backend)
    try:
        identity_of_first = first.identity()
        first.append([post("a", 1)])
    finally:
        first.close()
    for create in (True, False):
        reopened = open_log(backend, create=create)
        try:
            assert reopened.identity() == identity_of_first
        finally:
            reopened.close()
    other = open_log(backend, "other")
    try:
        assert other.identity() not in ("", identity_of_first)
    finally:
        other.close()


def test_many_processes_opening_the_log_and_its_read_models_at_once_all_succeed(
        backend: Backend) -> None:
    """`atbb serve --workers N` and a deployment's machines start together: each makes
    the log's tables and the live generation's, and none may fail for another doing so
    at the same moment (PostgreSQL refuses concurrent catalog rewrites)."""
    from projections.readmodel import open_read_models

    schema = backend.schema
    read_url = backend.url if schema is not None else \
        f"sqlite:///{backend.tmp / 'readmodels'}"
    location = f"{schema}_g1" if schema is not None else "gen-1"
    open_log(backend).close()
    open_read_models(read_url, location=location).close()
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def open_both() -> None:
        try:
            start.wait()
            for _ in range(3):
                open_log(backend).close()
                open_read_models(read_url, location=location).close()
        except BaseException as exc:  # collected: the test names them
            failures.append(exc)

    threads = [threading.Thread(target=open_both) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
