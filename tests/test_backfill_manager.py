"""Gap detection with a controllable clock, and a catch_up that replays the firehose
from an old cursor, on the devnet and both backends."""

from __future__ import annotations

import asyncio

from appview.backfill.catch_up import LIVE_MARGIN_US
from appview.backfill.manager import SyncFollower
from appview.bootstrap import bootstrap
from appview.devnet.clock import DevClock
from appview.devnet.network import DevNetwork
from events.log import CursorUpdate
from tests.conftest import Backend
from tests.test_consumer import settings_for

FORUM = "did:plc:forumforumforumforumforu"
HOUR = 3600.0


def test_gap_detection_follows_the_cursor_age(backend: Backend) -> None:
    clock = DevClock()
    services = bootstrap(settings_for(backend, "gaps", FORUM), clock=clock)
    try:
        manager = services.backfills
        assert manager is not None
        assert manager.detect() == "full_sync"  # an empty database: no cursor at all
        services.event_log.append([], CursorUpdate("jetstream", clock.now_us()))
        clock.advance(2 * HOUR)  # down for two hours: the cursor resume covers it
        assert manager.detect() is None
        clock.advance(70 * HOUR)  # three days: past BACKFILL_CURSOR_MAX_AGE_HOURS (48)
        assert manager.detect() == "catch_up"
    finally:
        services.close()


async def test_catch_up_replays_the_firehose_from_an_old_cursor(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        settings = settings_for(backend, "behind", seeded.forum_did).with_overrides(
            jetstream_url=network.jetstream_url, plc_url=network.plc_url)
        services = bootstrap(settings)
        try:
            oldest = min(e.time_us for e in network.jetstream.history())
            services.event_log.append([], CursorUpdate("jetstream", oldest))
            assert services.backfills is not None
            run = await asyncio.to_thread(services.backfills.run, "catch_up")
            assert run.status == "completed", run.error_message
            assert run.records_indexed == services.event_log.count() > 100
            state = services.event_log.cursor("jetstream")
            newest = max(e.time_us for e in network.jetstream.history())
            # live means within LIVE_MARGIN_US of now: the devnet's history is seconds
            # old, so the last of it may be left to live ingest (which resumes from the
            # cursor minus its rewind, so nothing between is lost)
            assert state is not None and state.value >= newest - LIVE_MARGIN_US
            assert state.value > oldest
        finally:
            services.close()


async def test_on_the_firehose_catch_up_and_gap_detection_use_its_own_seq_cursor(
        backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=4, size="small", via="direct")
        pds = network.pds["pds1"]
        settings = settings_for(backend, "seq", seeded.forum_did).with_overrides(
            ingest_source="firehose", firehose_url=network.firehose_url(),
            plc_url=network.plc_url)
        clock = DevClock()
        services = bootstrap(settings, clock=clock)
        try:
            assert services.backfills is not None
            # a Jetstream cursor says nothing about where the firehose is
            services.event_log.append([], CursorUpdate("jetstream", clock.now_us()))
            assert services.backfills.detect() == "full_sync"
            services.event_log.append([], CursorUpdate("firehose", 3))
            # a seq is no time: its age is that of its last write
            assert services.backfills.detect() is None
            clock.advance(72 * HOUR)
            assert services.backfills.detect() == "catch_up"
            run = await asyncio.to_thread(services.backfills.run, "catch_up")
            assert run.status == "completed", run.error_message
            assert run.records_indexed == services.event_log.count() > 100
            # the frames are seconds old: live at once, or after the quiet period
            state = services.event_log.cursor("firehose")
            assert state is not None and 3 < state.value <= pds.firehose.seq
        finally:
            services.close()


def test_a_large_sync_starts_its_rebuild_early_and_a_small_one_does_not(
        backend: Backend) -> None:
    """SyncFollower with REBUILD_WORKER=auto: a sync with repos by the hundred starts the
    following rebuild after its first repo; a small one over a small log never does (it
    rebuilds after its repos, in-process)."""
    services = bootstrap(settings_for(backend, "follow", FORUM))
    try:
        assert services.rebuilds is not None
        small = SyncFollower(services.rebuilds, services.settings, services.event_log,
                             lambda: 12)
        for _ in range(45):
            small.consider()
        assert services.rebuilds.current() is None
        assert small.finish() is False  # nothing started: the caller rebuilds

        asked: list[int] = []

        def total() -> int:
            asked.append(1)
            return 1000

        large = SyncFollower(services.rebuilds, services.settings, services.event_log,
                             total)
        large.consider()  # before any repo: not yet
        assert services.rebuilds.current() is None
        large.consider()  # the first repo done
        run = services.rebuilds.current()
        assert run is not None and run.reason == "full_sync"
        for _ in range(30):
            large.consider()  # started once, and the total was read once
        assert asked == [1]
        large.abandon("the test's sync failed")
        assert services.rebuilds.current() is None
        assert services.rebuilds.recent(1)[0].status == "failed"
        assert services.projection_status()[0].generation == 1
    finally:
        services.close()
