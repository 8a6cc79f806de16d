"""Append throughput of the event log against the stock ``eventsourcing`` recorders.

``bare_library_append`` is for ``bench/ingest.py``; run this module to print the figures
recorded in ``docs/adr/0002-event-store-recorders.md``::

    .venv/bin/python -m bench.store_baseline [--events 20000] [--batch 1000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from events.codec import encode
from events.log import CursorUpdate
from events.model import RecordEvent, int_to_tid
from events.store import RecorderEventLog, open_event_log, plan_batch

WORDS = (
    "forum",
    "thread",
    "reply",
    "board",
    "topic",
    "moderator",
    "post",
    "quote",
    "link",
    "thanks",
    "agree",
    "question",
    "answer",
    "update",
    "release",
    "schedule",
    "meeting",
)


def realistic_post_events(count: int, *, seed: int = 7) -> list[RecordEvent]:
    """``count`` post creations by 200 authors, ~400 bytes each once encoded."""
    rng = random.Random(seed)
    base_us = 1_735_000_000_000_000
    forum = "did:plc:forumforumforumforum00"
    events: list[RecordEvent] = []
    for i in range(count):
        did = f"did:plc:{rng.randrange(200):024d}"
        rev = int_to_tid(((base_us + i * 1000) << 10) | rng.randrange(1024))
        text = " ".join(rng.choice(WORDS) for _ in range(3))
        record = {
            "$type": "space.atbb.post",
            "text": text,
            "forum": {"uri": f"at://{forum}/space.atbb.forum.forum/self"},
            "createdAt": "2025-01-01T12:00:00.000Z",
        }
        events.append(
            RecordEvent(
                operation="create",
                did=did,
                collection="space.atbb.post",
                rkey=rev,
                rev=rev,
                cid="bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5rmnwqpxkfsxqmu",
                record=record,
                valid=True,
                reason=None,
                source="jetstream",
                source_cursor=base_us + i * 1000,
                observed_at=base_us + i * 1000 + 5,
            )
        )
    return events


@contextlib.contextmanager
def _bare_sqlite_recorder(url: str) -> Iterator[ApplicationRecorder]:
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    path = Path(f"{url.removeprefix('sqlite:///')}.bare-{uuid.uuid4().hex[:8]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    datastore = SQLiteDatastore(str(path), originator_id_type="text")
    try:
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        yield recorder
    finally:
        datastore.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def _bare_postgres_recorder(url: str, schema: str | None) -> Iterator[ApplicationRecorder]:
    from eventsourcing.postgres import PostgresApplicationRecorder
    from psycopg.sql import SQL, Identifier

    from events.store_postgres import postgres_datastore

    bare_schema = f"{schema or 'public'}_bare"
    datastore = postgres_datastore(url, schema=bare_schema)
    try:
        with datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(bare_schema)))
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()
        yield recorder
        with datastore.transaction(commit=True) as curs:
            curs.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(bare_schema)))
    finally:
        datastore.close()


def _bare_recorder(
    url: str, schema: str | None
) -> contextlib.AbstractContextManager[ApplicationRecorder]:
    """A stock application recorder beside (never inside) the log at ``url``: a sibling
    SQLite file, or the PostgreSQL schema ``<schema>_bare``; removed afterwards."""
    if url.startswith("sqlite:"):
        return _bare_sqlite_recorder(url)
    return _bare_postgres_recorder(url, schema)


def bare_library_append(
    url: str, schema: str | None, stored_events: Sequence[StoredEvent], batch: int
) -> float:
    """Events per second of the stock recorder's ``insert_events`` for ``stored_events``
    in batches of ``batch`` (no duplicates allowed: one fails its whole batch)."""
    with _bare_recorder(url, schema) as recorder:
        started = time.perf_counter()
        for i in range(0, len(stored_events), batch):
            recorder.insert_events(stored_events[i : i + batch])
        elapsed = time.perf_counter() - started
    return len(stored_events) / elapsed


def event_log_append(
    url: str, schema: str | None, events: Sequence[RecordEvent], batch: int
) -> float:
    """Events per second of ``EventLog.append`` (encode, filters, insert, the cursor in
    the same transaction) into the log at ``url``/``schema``, which should be new."""
    log = open_event_log(url, schema=schema)
    try:
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            chunk = events[i : i + batch]
            log.append(chunk, CursorUpdate("jetstream", chunk[-1].source_cursor or 0))
        elapsed = time.perf_counter() - started
    finally:
        log.close()
    return len(events) / elapsed


def event_log_insert_only(
    url: str, schema: str | None, events: Sequence[RecordEvent], batch: int
) -> float:
    """Events per second of the database half of ``EventLog.append``: the batches are
    encoded and planned before the clock starts, as the bare library's are."""
    log = open_event_log(url, schema=schema)
    try:
        if not isinstance(log, RecorderEventLog):
            raise TypeError(f"not a recorder-backed log: {type(log).__name__}")
        plans = [plan_batch(events[i : i + batch]) for i in range(0, len(events), batch)]
        started = time.perf_counter()
        for plan in plans:
            log.recorder.append_plan(plan, CursorUpdate("jetstream", 1))
        elapsed = time.perf_counter() - started
    finally:
        log.close()
    return len(events) / elapsed


def encode_only(events: Sequence[RecordEvent], batch: int) -> float:
    """Events per second of the in-memory half of ``EventLog.append`` (encode, plan)."""
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        plan_batch(events[i : i + batch])
    return len(events) / (time.perf_counter() - started)


def _measure(
    url: str, schemas: Iterator[str | None], events: Sequence[RecordEvent], batch: int
) -> tuple[float, float, float]:
    """One run of each (bare library, our database half, our whole append), each into a
    table of its own."""
    stored = [encode(e) for e in events]
    bare = bare_library_append(url, next(schemas), stored, batch)
    insert = event_log_insert_only(url, next(schemas), events, batch)
    ours = event_log_append(url, next(schemas), events, batch)
    return bare, insert, ours


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of N runs")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    events = realistic_post_events(args.events)
    size = sum(len(encode(e).state) for e in events) / len(events)
    print(
        f"{len(events)} events, mean state {size:.0f} bytes, batches of {args.batch}, "
        f"best of {args.repeat}"
    )
    _report("in memory", max(encode_only(events, args.batch) for _ in range(args.repeat)), 3)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            _measure(
                f"sqlite:///{tmp}/run{k}.sqlite3",
                iter((None, None, None)),
                events,
                args.batch,
            )
            for k in range(args.repeat)
        ]
        for i in range(3):
            _report("sqlite", max(r[i] for r in runs), i)
    # Each PostgreSQL run gets its own schemas, all dropped at the end.
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        runs = [
            _measure(
                args.postgres,
                iter((f"{prefix}_{k}a", f"{prefix}_{k}b", f"{prefix}_{k}c")),
                events,
                args.batch,
            )
            for k in range(args.repeat)
        ]
        for i in range(3):
            _report("postgresql", max(r[i] for r in runs), i)
    finally:
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",)
            ).fetchall():
                conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(name)))
    return 0


_LABELS = (
    "bare library insert_events",
    "EventLog, database half",
    "EventLog.append, whole",
    "encode + plan only",
)


def _report(backend: str, rate: float, which: int) -> None:
    print(f"{backend:<11}{_LABELS[which]:<28}{rate:>9,.0f}/s")


if __name__ == "__main__":
    sys.exit(main())
