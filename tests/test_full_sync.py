"""full_sync on the devnet, both backends: what changed on the PDSes while the appview
was away is repaired; taken-down repos and 429 storms are recorded and respected; live
writes during a sync land exactly once; a sync killed midway resumes. And the writer of
finished repos: a repo is marked done only once its events are in the log."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from appview.backfill.fetcher import PdsFetcher
from appview.backfill.full_sync import FullSync, RepoWriter
from appview.backfill.progress import BackfillStore
from appview.backfill.resolver import DidResolver
from appview.bootstrap import Services, bootstrap
from appview.devnet.network import DevNetwork
from appview.devnet.seed import SeededForum
from appview.handles import HandleResolver, HandleVerdict
from appview.ingest.consumer import CURSOR_SOURCE
from appview.settings import Settings
from events import collections as c
from events.log import AppendResult, CursorUpdate
from events.model import LogEvent, RecordEvent
from tests.backfill_support import appview_for, comparable, fresh_sync
from tests.conftest import Backend
from tests.fakes import MemoryEventLog
from tests.test_consumer import FixedClock, caught_up, running, settings_for, wait_for

ROOT = Path(__file__).resolve().parent.parent


def change_while_away(network: DevNetwork, seeded: SeededForum) -> None:
    """An edit, a delete and a new member, written straight into the repos."""
    writers = []
    for account in seeded.accounts[1:]:
        host = next(h for h in network.pds.values() if h.account(account.did) is not None)
        posts = host.repo(account.did).list_records(c.POST, limit=100)
        if posts:
            writers.append((host, account, posts))
    (host, account, posts), (host2, account2, posts2) = writers[0], writers[1]
    edited = dict(posts[0].value, text="edited while the appview was away")
    host.repo(account.did).put(c.POST, posts[0].rkey, edited)
    host2.repo(account2.did).delete(c.POST, posts2[0].rkey)
    membership = host.repo(account.did).list_records(c.MEMBERSHIP, limit=1)[0]
    newcomer = host.create_account("newcomer.test", "pw-newcomer-1")
    host.repo(newcomer.did).create(c.MEMBERSHIP, dict(membership.value))


async def test_full_sync_repairs_what_changed_while_away(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "away", network, seeded)
        try:
            async with running(appview, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(appview, network, live))
            before = comparable(appview)
            change_while_away(network, seeded)
            assert appview.backfills is not None
            run = await asyncio.to_thread(appview.backfills.run, "full_sync")
            assert run.status == "completed", run.error_message
            assert run.error_count == 0
            assert run.dids_total == run.dids_processed == len(seeded.accounts) + 1
            assert run.records_indexed >= 3
            after = comparable(appview)
            assert after != before
            assert appview.projection_status()[0].generation == 2  # rebuilt from scratch

            assert await fresh_sync(backend, network, seeded) == after
            again = await asyncio.to_thread(appview.backfills.run, "full_sync")
            assert again.records_indexed == 0  # nothing left to repair
        finally:
            appview.close()


async def test_a_taken_down_repo_and_a_429_storm_are_recorded_and_respected(
        backend: Backend) -> None:
    async with DevNetwork(rate_limit=4, rate_window_s=1.0) as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "storm", network, seeded)
        try:
            async with running(appview, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(appview, network, live))
            before = comparable(appview)
            victim = seeded.accounts[2]
            host = next(h for h in network.pds.values() if h.account(victim.did) is not None)
            host.set_account_status(victim.did, "takendown")
            assert appview.backfills is not None
            started = time.monotonic()
            run = await asyncio.to_thread(appview.backfills.run, "full_sync")
            elapsed = time.monotonic() - started
            assert run.status == "completed" and run.error_count == 1
            [error] = appview.backfills.errors(run.id)
            assert error.did == victim.did and "RepoTakendown" in error.error_message
            fetcher = appview.backfills.last_fetcher
            assert fetcher is not None
            # the storm came (concurrent requests overran the window) and was waited
            # out: the run took as long as the host's 4 requests/s allow, no less
            assert fetcher.rate_limited >= 1
            assert elapsed >= (fetcher.requests - fetcher.rate_limited) / 4 - 2
            assert comparable(appview) == before  # the taken-down member's posts stay
        finally:
            appview.close()


@pytest.mark.parametrize("worker", ["auto", "process"])
async def test_live_writes_during_a_full_sync_land_exactly_once(backend: Backend,
                                                                worker: str) -> None:
    """With ``process``, the rebuild starts with the sync and follows the log it fills,
    beside the live follower writing the old generation."""
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "busy", network, seeded, backfill_concurrency=2,
                              backfill_rate_limit=40.0, rebuild_worker=worker)
        try:
            async with running(appview, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(appview, network, live))
                assert appview.backfills is not None
                run = appview.backfills.start("full_sync")
                change_while_away(network, seeded)  # live writes, during the sync
                finished = await asyncio.to_thread(appview.backfills.wait, run.id, 120)
                assert finished is not None and finished.status == "completed"
                assert appview.rebuilds is not None
                rebuilt = appview.rebuilds.recent(1)[0]
                assert (rebuilt.reason, rebuilt.status) == ("full_sync", "completed")
                assert appview.projection_status()[0].generation == 2
                await wait_for(lambda: caught_up(appview, network, live))
            assert comparable(appview) == await fresh_sync(backend, network, seeded)
        finally:
            appview.close()


async def test_a_full_sync_killed_midway_resumes_where_it_stopped(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "killed", network, seeded)
        settings = appview.settings
        appview.close()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(settings.data_dir),
               "FORUM_DID": settings.forum_did, "DATABASE_URL": settings.database_url,
               "DATABASE_SCHEMA": settings.database_schema, "PLC_URL": network.plc_url,
               "JETSTREAM_URL": network.jetstream_url, "RELAY_URL": network.relay_url,
               "HANDLE_RESOLVER_DEV_URLS": network.handle_resolver_dev_urls,
               "BACKFILL_RATE_LIMIT": "15",
               "BACKFILL_CONCURRENCY": "1", "LOG_LEVEL": "WARNING"}
        watcher = appview_for(backend, "killed", network, seeded)
        try:
            assert watcher.backfills is not None
            store = watcher.backfills.store
            process = subprocess.Popen(
                [sys.executable, "-c", "from web.cli import main; main()", "backfill",
                 "--force", "full_sync"], env=env, cwd=settings.data_dir.parent,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                await wait_for(lambda: bool(store.recent()) and
                               store.recent()[0].dids_processed >= 2, timeout=60)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
            [interrupted] = store.recent()
            assert interrupted.status == "in_progress"
            assert 2 <= interrupted.dids_processed < interrupted.dids_total
            done_before = interrupted.dids_processed
            # the devnet runs on this event loop: wait for the process without blocking it
            resumed = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from web.cli import main; main()", "backfill",
                env={**env, "BACKFILL_RATE_LIMIT": "0"}, cwd=settings.data_dir.parent,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, stderr = await asyncio.wait_for(resumed.communicate(), timeout=120)
            assert resumed.returncode == 0, stderr.decode()
            [finished] = store.recent()
            assert finished.id == interrupted.id and finished.status == "completed"
            assert finished.dids_processed == finished.dids_total > done_before
            assert finished.error_count == 0
            assert comparable(watcher) == await fresh_sync(backend, network, seeded)
        finally:
            watcher.close()


class RefusingLog(MemoryEventLog):
    """Refuses its next ``refusals`` appends, as a database that went away would."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def append(self, events: Sequence[LogEvent],
               cursor: CursorUpdate | None = None) -> AppendResult:
        if self.refusals > 0:
            self.refusals -= 1
            raise RuntimeError("the database went away")
        return super().append(events, cursor)


def posts_of(did: str, count: int) -> list[LogEvent]:
    return [RecordEvent("create", did, c.POST, f"3kpost{n:07d}", "3kaaaaaaaaaa2", "bafyrei",
                        {"text": "hello"}, True, None, "backfill", None, 1)
            for n in range(count)]


def writer_store(backend: Backend) -> tuple[BackfillStore, str, list[str]]:
    settings = settings_for(backend, "writer", "did:plc:forum")
    bootstrap(settings).close()  # the event-log database the progress tables live in
    store = BackfillStore(settings, FixedClock())
    run = store.create("full_sync")
    dids = [f"did:plc:member{n:018d}" for n in range(6)]
    store.add_repos(run.id, dids)
    return store, run.id, dids


async def test_repos_finishing_together_are_written_and_then_marked_done(
        backend: Backend) -> None:
    store, run_id, dids = writer_store(backend)
    log = MemoryEventLog()
    writer = RepoWriter(log, store, run_id)
    try:
        await asyncio.gather(*(writer.finish(did, posts_of(did, 3), failed=n == 5)
                               for n, did in enumerate(dids)))
    finally:
        await writer.close()
    assert log.count() == 18
    assert store.pending_repos(run_id) == []
    run = store.get(run_id)
    assert run is not None and (run.dids_processed, run.records_indexed) == (6, 18)


async def test_a_refused_write_leaves_its_repos_pending_and_tells_each_of_them(
        backend: Backend) -> None:
    store, run_id, dids = writer_store(backend)
    log = RefusingLog(refusals=1)
    writer = RepoWriter(log, store, run_id)
    try:
        results = await asyncio.gather(*(writer.finish(did, posts_of(did, 2), failed=False)
                                         for did in dids), return_exceptions=True)
        refused = [did for did, result in zip(dids, results, strict=True)
                   if isinstance(result, RuntimeError)]
        assert refused and all(r is None or isinstance(r, RuntimeError) for r in results)
        # never marked: a resumed run syncs them again
        assert sorted(store.pending_repos(run_id)) == sorted(refused)
        assert log.count() == 2 * (len(dids) - len(refused))
        assert all("went away" in str(r) for r in results if r is not None)
        await writer.finish(refused[0], [], failed=True)  # what sync_repo does next
        assert refused[0] not in store.pending_repos(run_id)
    finally:
        await writer.close()


def _sync_killed_at(settings: Settings, step: str, occurrence: int) -> None:
    """In a child process: a full_sync (resuming any interrupted one) that dies at the
    ``occurrence``-th ``step``, as SIGKILL would: no cleanup, no finally blocks."""
    seen: list[str] = []

    def die_at(_run_id: str, name: str) -> None:
        seen.append(name)
        if seen.count(step) == occurrence and name == step:
            os._exit(137)

    services = bootstrap(settings)
    assert services.backfills is not None
    manager = dataclasses.replace(services.backfills, on_step=die_at)
    manager.run("full_sync")
    os._exit(0)  # the step never came: the parent sees exit 0 and fails the test


KILL_POINTS = [("claimed", 1), ("listed", 1), ("repo", 1), ("repo", 3), ("synced", 1),
               ("cursor", 1), ("rebuilt", 1)]


@pytest.mark.parametrize(("step", "occurrence"), KILL_POINTS)
async def test_a_full_sync_killed_at_any_step_is_finished_by_the_next_start(
        backend: Backend, step: str, occurrence: int) -> None:
    """A new appview's first full_sync killed at each durable step (the first at once,
    before its repos were listed): the next start resumes it and the forum is whole,
    with the cursor written only once the sync's data is in the log."""
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, f"kill_{step}_{occurrence}", network, seeded,
                              rebuild_worker="thread")
        settings = appview.settings
        appview.close()
        child = multiprocessing.get_context("spawn").Process(
            target=_sync_killed_at, args=(settings, step, occurrence))
        child.start()
        await asyncio.to_thread(child.join, 120)
        assert child.exitcode == 137, f"never reached {step} #{occurrence}"

        restarted = bootstrap(settings)
        try:
            backfills = restarted.backfills
            assert backfills is not None
            [interrupted] = backfills.recent()
            assert interrupted.status == "in_progress"
            cursor = restarted.event_log.cursor(CURSOR_SOURCE)
            if KILL_POINTS.index((step, occurrence)) < KILL_POINTS.index(("cursor", 1)):
                assert cursor is None  # no claim to hold what the sync had not brought
            run = backfills.start_if_needed()  # what `atbb serve` does at startup
            assert run is not None and run.id == interrupted.id
            finished = await asyncio.to_thread(backfills.wait, run.id, 120)
            assert finished is not None and finished.status == "completed", finished
            assert finished.dids_total == finished.dids_processed == len(seeded.accounts)
            assert restarted.event_log.cursor(CURSOR_SOURCE) is not None
            assert restarted.queries.forum() is not None
            assert backfills.detect() is None
            assert comparable(restarted) == await fresh_sync(backend, network, seeded)
        finally:
            restarted.close()


async def test_a_full_sync_that_cannot_read_the_forum_fails_and_is_owed(
        backend: Backend) -> None:
    """The Forum account's repo unreadable: the run fails saying so, writes no cursor,
    and gap detection asks for a full_sync again, even after live ingest wrote one."""
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "noforum", network, seeded)
        try:
            host = next(h for h in network.pds.values()
                        if h.account(seeded.forum_did) is not None)
            host.set_account_status(seeded.forum_did, "takendown")
            backfills = appview.backfills
            assert backfills is not None
            run = await asyncio.to_thread(backfills.run, "full_sync")
            assert run.status == "failed"
            assert run.error_message is not None
            assert seeded.forum_did in run.error_message
            assert "RepoTakendown" in run.error_message
            assert appview.event_log.cursor(CURSOR_SOURCE) is None
            assert backfills.detect() == "full_sync"
            appview.event_log.append([], CursorUpdate(CURSOR_SOURCE, 1))  # live ingest's
            assert backfills.detect() == "full_sync"

            host.set_account_status(seeded.forum_did, "active")
            again = await asyncio.to_thread(backfills.run, "full_sync")
            assert again.status == "completed", again.error_message
            assert appview.queries.forum() is not None
            appview.event_log.append([], CursorUpdate(CURSOR_SOURCE,
                                                      appview.clock.now_us()))
            assert backfills.detect() is None
        finally:
            appview.close()


def handles_of(services: Services) -> dict[str, str | None]:
    with services.read_models.read() as session:
        return {str(did): handle for did, handle in
                session.query("SELECT did, handle FROM members", ())}


async def test_members_on_a_host_are_found_though_describe_repo_fails_for_each(
        backend: Backend) -> None:
    """describeRepo is a hint: a host whose describeRepo fails (as the reference PDS's
    does on loopback) still gives every repo it lists, each then read by getRepo."""
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        network.pds["pds1"].serve_describe_repo = False
        appview = appview_for(backend, "hint", network, seeded, relay_url="")
        try:
            assert appview.backfills is not None
            run = await asyncio.to_thread(appview.backfills.run, "full_sync")
            assert run.status == "completed", run.error_message
            assert run.error_count == 0
            assert run.dids_total == run.dids_processed == len(seeded.accounts)
            assert set(handles_of(appview)) >= {a.did for a in seeded.accounts}
        finally:
            appview.close()


async def test_a_relay_finds_members_on_hosts_the_appview_never_knew(
        backend: Backend) -> None:
    """A new appview knows the Forum account's host only: the members on a second host
    come from the relay's listReposByCollection."""
    async with DevNetwork(pds_hosts=2) as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        elsewhere = {a.did for a in seeded.accounts if a.pds_url == network.pds_urls["pds2"]}
        assert elsewhere
        hosts_only = appview_for(backend, "hostsonly", network, seeded, relay_url="")
        with_relay = appview_for(backend, "relay", network, seeded)
        try:
            assert hosts_only.backfills is not None and with_relay.backfills is not None
            blind = await asyncio.to_thread(hosts_only.backfills.run, "full_sync")
            assert blind.status == "completed"
            assert blind.dids_total == len(seeded.accounts) - len(elsewhere)
            run = await asyncio.to_thread(with_relay.backfills.run, "full_sync")
            assert run.status == "completed", run.error_message
            assert run.error_count == 0
            assert run.dids_total == run.dids_processed == len(seeded.accounts)
            assert elsewhere <= set(handles_of(with_relay))
            assert comparable(with_relay) == await fresh_sync(backend, network, seeded)
        finally:
            hosts_only.close()
            with_relay.close()


async def test_full_sync_corrects_handles_changed_while_away_and_hides_unverified_ones(
        backend: Backend) -> None:
    """A handle changed while the appview was away replaces the one the firehose gave;
    a handle the DID document claims but that does not resolve back to the DID is not
    shown (the member has no handle: pages show the DID)."""
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "handles", network, seeded)
        try:
            async with running(appview, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(appview, network, live))
            renamed, impostor, steady = seeded.accounts[1], seeded.accounts[2], \
                seeded.accounts[3]
            assert handles_of(appview)[renamed.did] == renamed.handle
            host = network.pds["pds1"]
            host.update_handle(renamed.did, "renamed-while-away.test")
            # the DID document claims a handle its PDS does not answer for
            network.plc.update_handle(impostor.did, "impostor.test")
            assert appview.backfills is not None
            run = await asyncio.to_thread(appview.backfills.run, "full_sync")
            assert run.status == "completed", run.error_message
            handles = handles_of(appview)
            assert handles[renamed.did] == "renamed-while-away.test"
            assert handles[impostor.did] is None
            assert handles[steady.did] == steady.handle
            member = appview.queries.member(impostor.did, now=datetime.now(UTC))
            assert member is not None and member.handle is None
            assert await fresh_sync(backend, network, seeded) == comparable(appview)
            again = await asyncio.to_thread(appview.backfills.run, "full_sync")
            assert again.records_indexed == 0  # nothing left to correct
        finally:
            appview.close()


async def no_wait(seconds: float) -> None:
    return None


async def test_a_relay_that_cannot_list_is_one_error_row_and_the_hosts_still_count(
        backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "norelay", network, seeded)
        try:
            store = BackfillStore(appview.settings, appview.clock)
            run = store.create("full_sync")
            async with aiohttp.ClientSession() as session:
                sync = FullSync(appview.event_log, appview.validator, seeded.forum_did,
                                store, DidResolver(appview.settings, session),
                                PdsFetcher(session, rate=0, sleep=no_wait), appview.clock,
                                concurrency=4, relay_url="http://127.0.0.1:9")
                found = await sync.discover(run.id, [seeded.forum_did])
            assert set(found) == {a.did for a in seeded.accounts} - {seeded.forum_did}
            errors = store.errors(run.id)
            assert [e.collection for e in errors] == [c.MEMBERSHIP, c.POST]
            assert all("at the relay http://127.0.0.1:9" in e.error_message for e in errors)
        finally:
            appview.close()


class BrokenHandles(HandleResolver):
    """A handle check that fails in a way nobody planned for."""

    async def verify(self, did: str, handle: str | None) -> HandleVerdict:
        raise RuntimeError("the handle check broke")


async def test_a_handle_check_that_breaks_costs_the_handle_not_the_records(
        backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        appview = appview_for(backend, "brokenhandles", network, seeded)
        try:
            store = BackfillStore(appview.settings, appview.clock)
            run = store.create("full_sync")
            async with aiohttp.ClientSession() as session:
                await FullSync(appview.event_log, appview.validator, seeded.forum_did,
                               store, DidResolver(appview.settings, session),
                               PdsFetcher(session, rate=0), appview.clock, concurrency=4,
                               handles=BrokenHandles(appview.settings, session)).run(run.id)
            assert store.errors(run.id) == []
            assert len(store.pending_repos(run.id)) == 0
            for account in seeded.accounts:
                assert appview.event_log.repo_heads(account.did)
                assert appview.event_log.history(f"identity:{account.did}") == []
        finally:
            appview.close()
