"""Live ingest in the running process, on both backends: one process ingests at a time
and another serving beside it follows, then takes over; a projection that cannot write
backs off, says why, and carries on when it can again."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from appview.bootstrap import Services, bootstrap
from appview.devnet.clock import DevClock
from appview.devnet.firehose import PATH, FirehoseServer
from appview.devnet.network import DevNetwork
from appview.ingest.firehose import FirehoseConsumer
from appview.leader import LeaderLock
from appview.live import LiveIngest, ProjectorBackoff
from events.log import CursorUpdate
from tests.conftest import Backend
from tests.test_consumer import (
    FAST_RETRY,
    FixedClock,
    caught_up,
    dump,
    ingest_all,
    scenario_lines,
    settings_for,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent


class Process:
    """A LiveIngest running as one process's would, with the leader lock, until stopped
    (as SIGTERM stops `atbb serve`)."""

    def __init__(self, services: Services, url: str, **options: object) -> None:
        self.live = LiveIngest(services, jetstream_url=url, initial_cursor=0,
                               poll_seconds=0.05, policy=FAST_RETRY, rng=random.Random(1),
                               leader=LeaderLock(services.settings, poll_seconds=0.05),
                               **options)  # type: ignore[arg-type]
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.live.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, timeout=10)


def leads(process: Process) -> bool:
    return process.live.role == "leader"


async def test_one_process_ingests_and_the_other_follows_then_takes_over(
        backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    """`atbb serve` beside `atbb ingest` (two processes on one database): the second
    waits for the leader lock instead of ingesting too; stopping the leader hands the
    stream to it, and the read models equal one undisturbed ingest."""
    forum_did, lines = scenario_lines()
    third = len(lines) // 3
    async with DevNetwork() as network:
        settings = settings_for(backend, "two", forum_did)
        first = bootstrap(settings, clock=FixedClock())
        second = bootstrap(settings, clock=FixedClock())
        leader = follower = None
        try:
            leader = Process(first, network.jetstream_url)
            await wait_for(lambda: leads(leader))
            follower = Process(second, network.jetstream_url)
            for line in lines[:third]:
                network.jetstream.publish_raw(line)
            await wait_for(lambda: caught_up(first, network, leader.live))
            for line in lines[third:2 * third]:
                network.jetstream.publish_raw(line)
            await wait_for(lambda: caught_up(first, network, leader.live))
            assert follower.live.role == "follower"
            status = follower.live.consumer.status
            assert (status.connects, status.stored) == (0, 0)

            stopped = time.monotonic()
            await leader.stop()
            await wait_for(lambda: leads(follower), timeout=5)
            took_over = time.monotonic() - stopped
            for line in lines[2 * third:]:
                network.jetstream.publish_raw(line)
            await wait_for(lambda: caught_up(second, network, follower.live))
            await follower.stop()
            disturbed = dump(second)
        finally:
            for process in (leader, follower):
                if process is not None and not process._task.done():
                    await process.stop()
            first.close()
            second.close()
        expected = await ingest_all(backend, "calm", network, forum_did)
    assert disturbed == expected
    assert took_over < 3.0
    assert not [r for r in caplog.records if "locked" in r.getMessage()]


@pytest.fixture
def backoff() -> ProjectorBackoff:
    return ProjectorBackoff(initial=0.05, maximum=0.4)


def _refuse_writes(services: Services, backend: Backend, *, on: bool) -> None:
    """A read-model table that refuses every write, as a file that cannot be written
    (permissions, a full disk) does: the database's own trigger, no fake."""
    with services.read_models.transaction() as session:
        if backend.name == "sqlite":
            if on:
                session.execute(
                    "CREATE TRIGGER refuse_posts BEFORE INSERT ON posts"
                    " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
            else:
                session.execute("DROP TRIGGER refuse_posts")
            return
        if on:
            session.execute(
                "CREATE FUNCTION refuse_posts() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'disk I/O error'; END $$")
            session.execute("CREATE TRIGGER refuse_posts BEFORE INSERT ON posts"
                            " FOR EACH ROW EXECUTE FUNCTION refuse_posts()")
        else:
            session.execute("DROP TRIGGER refuse_posts ON posts")
            session.execute("DROP FUNCTION refuse_posts()")


async def test_a_projection_that_cannot_write_backs_off_says_why_and_recovers(
        backend: Backend, backoff: ProjectorBackoff,
        caplog: pytest.LogCaptureFixture) -> None:
    forum_did, lines = scenario_lines()
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "stuck", forum_did), clock=FixedClock())
        process = None
        try:
            _refuse_writes(services, backend, on=True)
            process = Process(services, network.jetstream_url, projector_backoff=backoff)
            live = process.live
            for line in lines:
                network.jetstream.publish_raw(line)
            await wait_for(lambda: live.projector.failures_in_a_row >= 3)
            started, attempts = time.monotonic(), live.projector.failures_in_a_row
            await asyncio.sleep(1.5)
            # doubling waits of 0.05 s up to 0.4 s: a handful of attempts, not thirty
            made = live.projector.failures_in_a_row - attempts
            assert 2 <= made <= 1.5 / backoff.maximum + 2, made
            assert time.monotonic() - started >= 1.5
            projector = live.projector
            assert projector.last_error is not None and "disk I/O error" in projector.last_error
            assert projector.retry_in == backoff.maximum
            logged = [r for r in caplog.records if r.name == "appview.live"
                      and r.levelno >= logging.ERROR]
            assert len(logged) <= projector.failures_in_a_row
            assert sum(r.exc_info is not None for r in logged) == 1  # one traceback

            _refuse_writes(services, backend, on=False)
            # the status is cleared just after the batch commits: wait for both
            await wait_for(lambda: caught_up(services, network, live)
                           and live.projector.last_error is None)
            assert live.projector.failures_in_a_row == 0
        finally:
            if process is not None:
                await process.stop()
            services.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_atbb_serve_beside_atbb_ingest_follows_then_takes_over_when_it_is_killed(
        backend: Backend) -> None:
    """The two commands as an operator runs them: serve says it follows while ingest
    leads, and ingests itself within seconds of ingest's SIGKILL."""
    forum_did, lines = scenario_lines()
    settings = settings_for(backend, "pair", forum_did)
    port = _free_port()
    async with DevNetwork() as network:
        for line in lines:
            network.jetstream.publish_raw(line)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(settings.data_dir),
               "FORUM_DID": forum_did, "DATABASE_URL": settings.database_url,
               "DATABASE_SCHEMA": settings.database_schema, "LOG_LEVEL": "WARNING",
               "JETSTREAM_URL": network.jetstream_url}
        atbb = [sys.executable, "-c", "from web.cli import main; main()"]
        observer = bootstrap(settings)
        ingest = subprocess.Popen([*atbb, "ingest", "--from-start"], cwd=backend.tmp,
                                  env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        serve = None
        try:
            await wait_for(lambda: observer.event_log.count() > 0, timeout=30)
            serve = subprocess.Popen([*atbb, "serve", "--port", str(port), "--no-backfill"],
                                     cwd=backend.tmp, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            async with aiohttp.ClientSession() as http:
                async def firehose_status() -> str | None:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/api/health") as answer:
                            body = await answer.json()
                    except aiohttp.ClientError:
                        return None
                    return str(body["services"]["firehose"]["status"])

                async def wait_status(wanted: str, timeout: float) -> None:
                    deadline = time.monotonic() + timeout
                    while await firehose_status() != wanted:
                        assert time.monotonic() < deadline, f"never {wanted}"
                        await asyncio.sleep(0.1)

                await wait_status("follower", 30)
                ingest.send_signal(signal.SIGKILL)
                ingest.wait(timeout=10)
                killed = time.monotonic()
                await wait_status("connected", 15)
                assert time.monotonic() - killed < 5
        finally:
            for process in (ingest, serve):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=20)
            observer.close()
        assert serve is not None and serve.returncode == 0


async def test_a_firehose_that_lost_our_place_gets_a_full_sync_started(
        backend: Backend) -> None:
    """#info OutdatedCursor: the host no longer has the frames after our cursor, so what
    they changed can only come back by reading the repos."""
    server = FirehoseServer(DevClock(), keep=2)
    for n in range(6):
        server.identity(f"did:plc:{n:024d}", None)
    app = web.Application()
    server.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    settings = settings_for(backend, "outdated", "did:plc:forumforumforumforumforu")
    services = bootstrap(settings.with_overrides(
        ingest_source="firehose",
        firehose_url=f"ws://127.0.0.1:{runner.addresses[0][1]}{PATH}",
        plc_url="http://127.0.0.1:9"))
    try:
        services.event_log.append([], CursorUpdate("firehose", 1))
        backfills = services.backfills
        assert backfills is not None
        live = LiveIngest(services, poll_seconds=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(live.run(stop))
        try:
            assert isinstance(live.consumer, FirehoseConsumer)
            consumer = live.consumer
            await wait_for(lambda: consumer.stats.infos["OutdatedCursor"] == 1)
            await wait_for(lambda: any(run.type == "full_sync" for run in backfills.recent()))
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
        backfills.shutdown()
    finally:
        services.close()
        await runner.cleanup()
