"""`GET /api/health` of a process that ingests, of one that follows another process's
ingest, and of one whose projection cannot write, on both backends."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import bootstrap
from appview.devnet.network import DevNetwork
from appview.leader import LeaderLock
from appview.live import LiveIngest, ProjectorBackoff
from tests.conftest import Backend
from tests.test_consumer import FAST_RETRY, scenario_lines, settings_for, wait_for
from tests.test_firehose import firehose_settings
from tests.test_live import _refuse_writes
from web.app import create_app


async def _health(client: TestClient[Any, Any]) -> Any:
    response = await client.get("/api/health")
    assert response.status == 200
    return await response.json()


async def test_a_follower_says_another_process_ingests_and_takes_over_when_it_goes(
        backend: Backend) -> None:
    forum_did, _ = scenario_lines()
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "follow", forum_did))
        other = LeaderLock(services.settings)  # `atbb ingest` in another process
        assert other.acquire()
        try:
            live = LiveIngest(services, jetstream_url=network.jetstream_url,
                              policy=FAST_RETRY, rng=random.Random(1),
                              leader=LeaderLock(services.settings, poll_seconds=0.05))
            async with TestClient(TestServer(create_app(services, live=live))) as client:
                await wait_for(lambda: live.role == "follower")
                health = await _health(client)
                assert health["status"] == "healthy"
                assert health["services"]["firehose"]["status"] == "follower"
                await asyncio.to_thread(other.release)
                await wait_for(lambda: live.consumer.status.connected, timeout=10)
                health = await _health(client)
                firehose = health["services"]["firehose"]
                assert (firehose["status"], firehose["role"]) == ("connected", "leader")
        finally:
            other.release()
            services.close()


async def test_a_projection_that_cannot_write_is_named_in_health(backend: Backend) -> None:
    forum_did, lines = scenario_lines()
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "stuck", forum_did))
        try:
            _refuse_writes(services, backend, on=True)
            live = LiveIngest(services, jetstream_url=network.jetstream_url,
                              initial_cursor=0, poll_seconds=0.05,
                              projector_backoff=ProjectorBackoff(0.05, 0.2))
            async with TestClient(TestServer(create_app(services, live=live))) as client:
                for line in lines:
                    network.jetstream.publish_raw(line)
                await wait_for(lambda: live.projector.failures_in_a_row >= 2)
                health = await _health(client)
                assert health["status"] == "degraded"
                projector = health["services"]["projector"]
                assert projector["status"] == "failing"
                assert "disk I/O error" in projector["error"]
                assert projector["failures_in_a_row"] >= 2
                assert projector["retry_in_seconds"] > 0
                assert any(p["lag_events"] > 0
                           for p in health["services"]["projections"].values())
        finally:
            services.close()


async def test_a_firehose_leader_reports_its_checks(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        settings = firehose_settings(backend, "health", network, seeded.forum_did)
        services = bootstrap(settings)
        try:
            live = LiveIngest(services, initial_cursor=0, poll_seconds=0.05)
            async with TestClient(TestServer(create_app(services, live=live))) as client:
                await wait_for(lambda: (live.consumer.status.cursor or 0) >= pds.firehose.seq)
                firehose = (await _health(client))["services"]["firehose"]
                assert firehose["source"] == "firehose"
                assert firehose["cursor"] == str(pds.firehose.seq)
                checks = firehose["verification"]
                assert checks["verified"] == checks["commits"] > 400
                assert (checks["rejected"], checks["repo_resyncs"]) == (0, 0)
        finally:
            services.close()
