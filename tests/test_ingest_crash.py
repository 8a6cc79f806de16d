"""`atbb ingest` killed with SIGKILL in the middle of a busy stream, several times, then
restarted: the read models end up equal to an uninterrupted run's. The devnet runs in the
test process, so it outlives every ingest process."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from appview.bootstrap import bootstrap
from appview.devnet.network import DevNetwork
from appview.devnet.scenario import build_scenario, scenario_to_jetstream_lines
from appview.devnet.scenario_model import ScenarioSize
from tests.conftest import Backend
from tests.test_consumer import caught_up_to, dump, running, settings_for, wait_for

ROOT = Path(__file__).resolve().parent.parent
KILLS = 3


def busy_lines() -> tuple[str, list[str]]:
    size = ScenarioSize(members=30, categories=3, boards=6, topics=120, replies_per_topic=6.0)
    scenario = build_scenario(11, size, real_dids=False)
    start = time.time_ns() // 1000 - 30_000_000
    lines = list(scenario_to_jetstream_lines(scenario, start_time_us=start, spacing_us=20,
                                             duplicate_rate=0.02, redelivery_rate=0.005))
    return scenario.forum.did, lines


def spawn(backend: Backend, forum_did: str, url: str) -> subprocess.Popen[bytes]:
    settings = settings_for(backend, "crashy", forum_did)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(settings.data_dir),
           "FORUM_DID": forum_did, "DATABASE_URL": settings.database_url,
           "DATABASE_SCHEMA": settings.database_schema, "LOG_LEVEL": "WARNING",
           "INGEST_BATCH_SIZE": "100"}
    return subprocess.Popen(
        [sys.executable, "-c", "from appview.cli import main; main()",
         "ingest", "--jetstream-url", url, "--from-start"],
        cwd=backend.tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def test_sigkilled_ingest_restarts_to_the_same_read_models(backend: Backend) -> None:
    forum_did, lines = busy_lines()
    assert len(lines) > 1500
    rng = random.Random(2024)
    newest = max(int(line.split('"time_us":', 1)[1].split(",", 1)[0]) for line in lines)
    async with DevNetwork() as network:
        for line in lines[:500]:
            network.jetstream.publish_raw(line)
        rest = iter(lines[500:])

        async def publish_busily() -> None:
            # The stream stays busy while the ingest processes come and go.
            for index, line in enumerate(rest):
                network.jetstream.publish_raw(line)
                if index % 10 == 9:
                    await asyncio.sleep(0.02)

        publisher = asyncio.create_task(publish_busily())
        observer = bootstrap(settings_for(backend, "crashy", forum_did))
        try:
            for _ in range(KILLS):
                before = observer.event_log.count()
                process = spawn(backend, forum_did, network.jetstream_url)
                try:
                    # A fast ingest may drain the stream before the next kill: then there
                    # is nothing left to grow and the kill lands on an idle process.
                    await wait_for(lambda start=before: observer.event_log.count() > start
                                   or caught_up_to(observer, newest), timeout=30)
                    await asyncio.sleep(rng.uniform(0.0, 0.4))
                finally:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
            await publisher
            await wait_for(lambda: network.jetstream.connections == 0, timeout=10)
            process = spawn(backend, forum_did, network.jetstream_url)
            try:
                # Connected means started: its signal handlers are in place, so the SIGTERM
                # below asks for a clean stop (the others may have caught up already).
                await wait_for(lambda: network.jetstream.connections > 0, timeout=30)
                await wait_for(lambda: caught_up_to(observer, newest), timeout=40)
            finally:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=15) == 0
            crashed = dump(observer, with_times=False)
        finally:
            observer.close()
        calm = bootstrap(settings_for(backend, "calm", forum_did))
        try:
            async with running(calm, network.jetstream_url):
                await wait_for(lambda: caught_up_to(calm, newest), timeout=40)
            expected = dump(calm, with_times=False)
        finally:
            calm.close()
    assert sum(len(rows) for rows in expected.values()) > 1000
    assert crashed == expected
