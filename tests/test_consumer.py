"""The Jetstream consumer against the devnet's Jetstream server, on both backends: live
writes, faults, re-ordering, the real capture, bad frames and a flaky database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from appview.bootstrap import Services, bootstrap
from appview.devnet.faults import Disconnect, Fault, Hang, Malformed, Refuse, Resend, Stall
from appview.devnet.network import DevNetwork
from appview.devnet.scenario import build_scenario, scenario_to_jetstream_lines
from appview.ingest.consumer import JetstreamConsumer, ReconnectPolicy
from appview.live import LiveIngest
from appview.settings import Settings
from events.log import AppendResult, CursorState, CursorUpdate, EventLog, RecordHead
from events.model import LogEvent, Logged
from projections.schema import TABLES
from projections.search_schema import portable_rows
from tests.conftest import CAPTURE, Backend

FIXED_NOW_US = 1_780_000_000_000_000
FAST_RETRY = ReconnectPolicy(initial_delay=0.02, max_delay=0.2, breaker_threshold=4,
                             breaker_cooldown=0.3)


class FixedClock:
    """Every observation stamped alike, so two runs' read models compare row for row."""

    def now_us(self) -> int:
        return FIXED_NOW_US


def settings_for(backend: Backend, name: str, forum_did: str) -> Settings:
    """A store of its own per run: a data dir, or a schema named after the test's."""
    data_dir = backend.tmp / name
    if backend.name == "sqlite":
        return Settings(data_dir=data_dir, forum_did=forum_did)
    return Settings(data_dir=data_dir, database_url=backend.url,
                    database_schema=f"{backend.schema}_{name}", forum_did=forum_did)


def dump(services: Services, *, with_times: bool = True) -> dict[str, list[str]]:
    """Every read-model table's rows, sorted. ``with_times=False`` leaves out
    ``indexed_at`` (when the event was observed), which differs between processes; a
    database's own index columns (PostgreSQL's search tsvector) are left out, so a dump
    compares with one of read models replayed into SQLite."""
    out: dict[str, list[str]] = {}
    with services.read_models.read() as session:
        for table in TABLES:
            rows = portable_rows(table, session.query_dicts(f"SELECT * FROM {table}"))
            for row in rows:
                if not with_times:
                    row.pop("indexed_at", None)
            out[table] = sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
    return out


def scenario_lines(seed: int = 5) -> tuple[str, list[str]]:
    scenario = build_scenario(seed, "small", real_dids=False)
    start = time.time_ns() // 1000 - 60_000_000
    lines = list(scenario_to_jetstream_lines(scenario, start_time_us=start, spacing_us=10))
    return scenario.forum.did, lines


@asynccontextmanager
async def running(services: Services, url: str | None = None, *, stop_within: float = 10,
                  **options: Any) -> AsyncIterator[LiveIngest]:
    """Live ingest from the start of the stream (Jetstream at ``url``, else the
    settings' source) for the block's duration."""
    if url is not None:
        options["jetstream_url"] = url
    live = LiveIngest(services, initial_cursor=0, poll_seconds=0.05, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop))
    try:
        yield live
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=stop_within)


def caught_up(services: Services, network: DevNetwork, live: LiveIngest) -> bool:
    history = network.jetstream.history()
    newest = max((e.time_us for e in history if e.kind is not None), default=0)
    head = services.event_log.head()
    return (
        live.consumer.status.cursor is not None
        and live.consumer.status.cursor >= newest
        and all(p.position() == head for p in services.projections)
    )


def caught_up_to(services: Services, newest_time_us: int) -> bool:
    """The stored cursor has reached ``newest_time_us`` and every projection the head
    (as another process wrote them)."""
    state = services.event_log.cursor("jetstream")
    head = services.event_log.head()
    return (state is not None and state.value >= newest_time_us
            and all(p.position() == head for p in services.projections))


async def wait_for(predicate: Any, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.02)


async def ingest_all(backend: Backend, name: str, network: DevNetwork,
                     forum_did: str) -> dict[str, list[str]]:
    """An undisturbed run over the network's whole history: the expected read models."""
    services = bootstrap(settings_for(backend, name, forum_did), clock=FixedClock())
    try:
        async with running(services, network.jetstream_url) as live:
            await wait_for(lambda: caught_up(services, network, live))
        return dump(services)
    finally:
        services.close()


async def test_writes_on_a_pds_appear_in_the_read_models_within_a_second(
    backend: Backend,
) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        services = bootstrap(settings_for(backend, "live", seeded.forum_did))
        try:
            async with running(services, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(services, network, live))
                forum = next(w for w in seeded.writes if "/space.atbb.forum.forum/" in w.uri)
                board = next(w for w in seeded.writes if "/space.atbb.forum.board/" in w.uri)
                member = seeded.accounts[1]
                pds = next(p for p in network.pds.values() if p.account(member.did))
                delays = []
                for n in range(3):
                    started = time.monotonic()
                    write = pds.repo(member.did).create("space.atbb.post", {
                        "$type": "space.atbb.post", "title": f"Live topic {n}",
                        "text": "written while the appview follows",
                        "forum": {"uri": forum.uri, "cid": forum.cid},
                        "board": {"uri": board.uri, "cid": board.cid},
                        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    })

                    def visible(uri: str = write.uri) -> bool:
                        with services.read_models.read() as session:
                            return bool(session.scalar(
                                "SELECT COUNT(*) FROM posts WHERE uri = ? AND state = 'ok'",
                                (uri,)))

                    await wait_for(visible, timeout=5)
                    delays.append(time.monotonic() - started)
                assert max(delays) < 1.0, delays
                assert live.consumer.status.connected
                assert not live.consumer.status.bad_frames
        finally:
            services.close()


FAULTS: dict[str, Sequence[Fault]] = {
    "disconnect": [Disconnect(after=40)],
    "resend": [Resend(last=150)],
    "malformed": [Malformed(), Malformed(binary=True)],
    "stall": [Stall(seconds=1.0)],
    "hang": [Hang(seconds=1.5)],
    "refuse": [Refuse(seconds=0.8), Disconnect(after=0)],
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_after_a_fault_the_read_models_equal_an_undisturbed_run(
    backend: Backend, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    forum_did, lines = scenario_lines()
    half = len(lines) // 2
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "faulty", forum_did), clock=FixedClock())
        try:
            async with running(services, network.jetstream_url, heartbeat=0.3,
                               policy=FAST_RETRY, rng=random.Random(1)) as live:
                await wait_for(lambda: live.consumer.status.connected)
                for line in lines[:half]:
                    network.jetstream.publish_raw(line)
                await wait_for(lambda: caught_up(services, network, live))
                for item in FAULTS[fault]:
                    network.jetstream.inject(item)
                await asyncio.sleep(0.05)
                for line in lines[half:]:
                    network.jetstream.publish_raw(line)
                await wait_for(lambda: caught_up(services, network, live))
                status = live.consumer.status
            disturbed = dump(services)
        finally:
            services.close()
        expected = await ingest_all(backend, "calm", network, forum_did)
    assert disturbed == expected
    assert sum(len(rows) for rows in expected.values()) > 100
    if fault == "malformed":
        assert sum(status.bad_frames.values()) == 2, status.bad_frames
    else:
        assert not status.bad_frames
    if fault in ("disconnect", "hang", "refuse"):
        assert status.connects >= 2, status
    if fault == "stall":  # a quiet stream that answers pings is not a dead one
        assert status.connects == 1 and status.last_error is None, status
    if fault == "hang":
        assert status.last_error is not None and "no answer to a ping" in status.last_error
    if fault == "refuse":
        # the refusals are logged as they happen; the last error may be a later one
        refusals = [r for r in caplog.records if "connection failed" in r.getMessage()
                    and "503" in r.getMessage()]
        assert refusals, status


def interleave(lines: list[str], rng: random.Random) -> list[str]:
    """A random merge of the per-repo streams: each repo's order kept, the order across
    repos arbitrary."""
    queues: dict[str, list[str]] = {}
    for line in lines:
        queues.setdefault(json.loads(line)["did"], []).append(line)
    heads = {did: 0 for did in queues}
    out: list[str] = []
    while heads:
        did = rng.choice(sorted(heads))
        out.append(queues[did][heads[did]])
        heads[did] += 1
        if heads[did] == len(queues[did]):
            del heads[did]
    return out


def references_before_targets(lines: list[str]) -> int:
    """How many records arrive before a record they point at (a reply before its topic, a
    reaction before its post, ...)."""
    seen: set[str] = set()
    early = 0
    for line in lines:
        data = json.loads(line)
        commit = data.get("commit") or {}
        record = commit.get("record")
        if record is not None:
            text = json.dumps(record)
            refs = {part.split('"')[0] for part in text.split('"uri": "')[1:]}
            early += sum(1 for ref in refs if ref not in seen)
            seen.add(f"at://{data['did']}/{commit['collection']}/{commit['rkey']}")
    return early


async def test_cross_repo_order_and_rewinds_do_not_change_the_read_models(
    backend: Backend,
) -> None:
    forum_did, lines = scenario_lines(seed=9)
    rng = random.Random(4)
    shuffled = interleave(lines, rng)
    # A category's board first, out of its own repo's order: the projection must cope.
    board = next(i for i, line in enumerate(shuffled) if "space.atbb.forum.board" in line)
    category = next(i for i, line in enumerate(shuffled) if "space.atbb.forum.category" in line)
    if category < board:
        shuffled.insert(category, shuffled.pop(board))
    # A rewind: updates followed by their records' creates again (duplicates).
    updates = [line for line in shuffled if '"operation":"update"' in line]
    assert updates, "the scenario has edits"
    creates = {json.loads(u)["commit"]["rkey"] for u in updates}
    redelivered = [line for line in lines if '"operation":"create"' in line
                   and json.loads(line)["commit"]["rkey"] in creates]
    shuffled.extend(redelivered)
    assert references_before_targets(shuffled) > references_before_targets(lines)
    async with DevNetwork() as network:
        for line in shuffled:
            network.jetstream.publish_raw(line)
        services = bootstrap(settings_for(backend, "shuffled", forum_did), clock=FixedClock())
        try:
            async with running(services, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(services, network, live))
            shuffled_dump = dump(services)
            stored = services.event_log.count()
        finally:
            services.close()
    async with DevNetwork() as network:
        for line in lines:
            network.jetstream.publish_raw(line)
        expected = await ingest_all(backend, "ordered", network, forum_did)
    assert stored > 0
    assert shuffled_dump == expected


async def test_the_real_capture_is_read_in_full_and_nothing_is_stored(backend: Backend) -> None:
    lines = (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 152
    async with DevNetwork() as network:
        for line in lines:
            network.jetstream.publish_raw(line)
        services = bootstrap(settings_for(backend, "capture", "did:plc:forumforumforumforumforu"))
        try:
            async with running(services, network.jetstream_url,
                               wanted_collections=()) as live:
                await wait_for(lambda: live.consumer.status.frames == 152)
                await wait_for(lambda: live.consumer.appender.pending == 0)
            status = live.consumer.status
            assert not status.bad_frames
            assert live.consumer.appender.stats.errors == 0
            assert services.event_log.count() == 0
        finally:
            services.close()


async def test_an_oversize_frame_is_refused_with_a_reason_and_the_stream_goes_on(
    backend: Backend,
) -> None:
    forum_did, lines = scenario_lines()
    data = json.loads(next(line for line in lines if '"space.atbb.post"' in line))
    data["commit"]["record"]["text"] = "x" * 1_200_000
    data["commit"]["rkey"] = "3kzzzzzzzzzz2"
    async with DevNetwork() as network:
        network.jetstream.publish_raw(lines[0])
        network.jetstream.publish_raw(json.dumps(data))
        for line in lines[1:]:
            network.jetstream.publish_raw(line)
        services = bootstrap(settings_for(backend, "big", forum_did), clock=FixedClock())
        try:
            async with running(services, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(services, network, live))
            reasons = list(live.consumer.status.bad_frames)
            assert sum(live.consumer.status.bad_frames.values()) == 1
            assert any("byte" in reason or "large" in reason for reason in reasons), reasons
            assert services.event_log.count() > 100
        finally:
            services.close()


async def test_identity_and_account_events_update_handles_and_hide_content(
    backend: Backend,
) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        services = bootstrap(settings_for(backend, "accounts", seeded.forum_did))

        def member_row(did: str) -> tuple[Any, ...]:
            with services.read_models.read() as session:
                handle = session.scalar("SELECT handle FROM members WHERE did = ?", (did,))
                counts = session.query(
                    "SELECT COUNT(*), SUM(suspended), SUM(CASE WHEN state = 'removed'"
                    " THEN 1 ELSE 0 END) FROM posts WHERE did = ?", (did,))[0]
            return (handle, int(counts[0]), int(counts[1] or 0), int(counts[2] or 0))

        try:
            async with running(services, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(services, network, live))
                poster = max(seeded.accounts[1:], key=lambda a: sum(
                    1 for w in seeded.writes if w.uri.startswith(f"at://{a.did}/space.atbb.post")))
                pds = next(p for p in network.pds.values() if p.account(poster.did))
                handle, posts, suspended, removed = member_row(poster.did)
                assert handle == poster.handle and posts > 0 and suspended == removed == 0

                pds.update_handle(poster.did, "renamed-member.test")
                await wait_for(lambda: member_row(poster.did)[0] == "renamed-member.test")
                for status in ("takendown", "suspended", "deactivated"):
                    pds.set_account_status(poster.did, status)
                    await wait_for(lambda: member_row(poster.did)[2] == posts)
                    pds.set_account_status(poster.did, "active")
                    await wait_for(lambda: member_row(poster.did)[2] == 0)
                pds.set_account_status(poster.did, "deleted")
                await wait_for(lambda: member_row(poster.did)[3] == posts)
        finally:
            services.close()


class FlakyLog:
    """An EventLog whose first ``failures`` appends fail as a dropped connection does."""

    def __init__(self, inner: EventLog, failures: int) -> None:
        self._inner = inner
        self.failures = failures
        self.attempts = 0

    def append(self, events: Sequence[LogEvent],
               cursor: CursorUpdate | None = None) -> AppendResult:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return self._inner.append(events, cursor)

    def read(self, after: int, limit: int, until: int | None = None) -> list[Logged]:
        return self._inner.read(after, limit, until)

    def iter_from(self, after: int = 0, until: int | None = None,
                  page: int = 2000) -> Iterator[Logged]:
        return self._inner.iter_from(after, until, page)

    def head(self) -> int:
        return self._inner.head()

    def count(self) -> int:
        return self._inner.count()

    def cursor(self, source: str) -> CursorState | None:
        return self._inner.cursor(source)

    def identity(self) -> str:
        return self._inner.identity()

    def history(self, uri: str) -> list[Logged]:
        return self._inner.history(uri)

    def repo_heads(self, did: str) -> dict[str, RecordHead]:
        return self._inner.repo_heads(did)

    def known_dids(self) -> list[str]:
        return self._inner.known_dids()

    def close(self) -> None:
        self._inner.close()


async def test_a_transient_database_error_is_retried_and_nothing_is_lost(
    backend: Backend,
) -> None:
    forum_did, lines = scenario_lines()
    async with DevNetwork() as network:
        for line in lines:
            network.jetstream.publish_raw(line)
        real = bootstrap(settings_for(backend, "flaky", forum_did), clock=FixedClock())
        flaky = FlakyLog(real.event_log, failures=3)
        services = dataclasses.replace(real, event_log=flaky)
        try:
            consumer = JetstreamConsumer(
                url=network.jetstream_url, event_log=flaky,
                appender=services.appender(cursor_source="jetstream"),
                clock=services.clock, batch_size=100, policy=FAST_RETRY,
                initial_cursor=0,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(consumer.run(stop))
            newest = max(json.loads(line)["time_us"] for line in lines)
            await wait_for(lambda: (consumer.status.cursor or 0) >= newest)
            stop.set()
            await asyncio.wait_for(task, timeout=10)
            assert flaky.failures == 0 and consumer.status.database_retries == 3
            assert consumer.status.connects == 1
            kinds = {json.loads(line)["kind"] for line in lines}
            assert kinds == {"commit", "identity", "account"}
            stored = consumer.status.stored
            assert stored == flaky.count() > 100
        finally:
            services.close()
        expected_services = bootstrap(settings_for(backend, "steady", forum_did),
                                      clock=FixedClock())
        try:
            consumer = JetstreamConsumer(
                url=network.jetstream_url, event_log=expected_services.event_log,
                appender=expected_services.appender(cursor_source="jetstream"),
                clock=expected_services.clock, initial_cursor=0)
            stop = asyncio.Event()
            task = asyncio.create_task(consumer.run(stop))
            await wait_for(lambda: (consumer.status.cursor or 0) >= newest)
            stop.set()
            await asyncio.wait_for(task, timeout=10)
            assert expected_services.event_log.count() == stored
        finally:
            expected_services.close()


async def test_a_quiet_stream_is_followed_without_reconnecting_and_without_lag(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Minutes without a record are normal on a stream filtered to space.atbb.*: pings
    keep the connection known to be alive, nothing is logged, and the lag stays what
    the stream's own times say (the newest event arrived at once), while the time since
    the last event grows."""
    scenario = build_scenario(5, "small", real_dids=False)
    lines = list(scenario_to_jetstream_lines(scenario, start_time_us=time.time_ns() // 1000,
                                             spacing_us=10))[:40]
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "quiet", scenario.forum.did))
        try:
            async with running(services, network.jetstream_url, heartbeat=0.2) as live:
                await wait_for(lambda: live.consumer.status.connected)
                for line in lines:
                    network.jetstream.publish_raw(line)
                await wait_for(lambda: caught_up(services, network, live))
                status = live.consumer.status
                lag_at_the_last_event = status.lag_seconds(services.clock.now_us())
                await asyncio.sleep(2.0)  # ten heartbeats of silence
                assert status.connected and status.connects == 1, status
                assert status.last_error is None
                now = services.clock.now_us()
                assert status.last_event_at is not None
                assert now - status.last_event_at > 2_000_000
                # how late the last event came, not how long ago: silence adds nothing
                assert lag_at_the_last_event is not None
                assert status.lag_seconds(now) == lag_at_the_last_event
        finally:
            services.close()
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
