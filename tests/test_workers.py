"""Many processes, one writer (web/workers.py, appview/writer.py), on both backends:
three `atbb serve` on one database with the writer SIGKILLed mid-ingest and mid-rebuild
lose nothing and all end on the new generation; `atbb serve --workers 2` shares one port,
has one writer, takes over when it is killed, restarts the dead worker and stops whole on
SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import aiohttp
import pytest

from appview.bootstrap import bootstrap
from appview.devnet.network import DevNetwork
from appview.rebuilds import INTERRUPTED, RebuildRunStore
from appview.settings import Settings
from projections.forum import ForumProjection
from tests.conftest import Backend
from tests.test_consumer import (
    caught_up,
    caught_up_to,
    dump,
    running,
    scenario_lines,
    settings_for,
    wait_for,
)
from web.workers import reserve_address

ROOT = Path(__file__).resolve().parent.parent
ATBB = [sys.executable, "-c", "from web.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(settings: Settings, jetstream_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(settings.data_dir),
            "FORUM_DID": settings.forum_did, "DATABASE_URL": settings.database_url,
            "DATABASE_SCHEMA": settings.database_schema, "LOG_LEVEL": "INFO",
            "JETSTREAM_URL": jetstream_url, "REBUILD_WORKER": "thread", **extra}


async def scrape(http: aiohttp.ClientSession, port: int) -> dict[str, float] | None:
    """The metrics of the process on ``port`` (name with labels -> value); None while
    it does not answer."""
    try:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
            text = await answer.text()
    except aiohttp.ClientError:
        return None
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def until(check: object, timeout: float, what: str) -> float:
    """Wait for the coroutine function ``check`` to return true; the seconds it took."""
    started = time.monotonic()
    while not await check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


class Serve:
    """One `atbb serve` process with its metrics port, restartable after a kill."""

    def __init__(self, cwd: Path, env: dict[str, str], log: IO[bytes]) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self._cwd, self._env, self._log = cwd, env, log
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*ATBB, "serve", "--port", str(self.port), "--no-backfill"], cwd=self._cwd,
            env={**self._env, "METRICS_PORT": str(self.metrics_port)},
            stdout=subprocess.DEVNULL, stderr=self._log)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def restart(self) -> None:
        self.process = self._start()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


async def test_three_processes_one_writer_killed_mid_ingest_and_mid_rebuild(
        backend: Backend) -> None:
    forum_did, lines = scenario_lines()
    third = len(lines) // 3
    settings = settings_for(backend, "three", forum_did)
    observer = bootstrap(settings)
    runs = RebuildRunStore(settings)
    log_path = backend.tmp / "serve.log"
    serves: list[Serve] = []
    async with DevNetwork() as network:
        env = environment(settings, network.jetstream_url)
        log = log_path.open("wb")
        try:
            serves = [Serve(backend.tmp, env, log) for _ in range(3)]
            async with aiohttp.ClientSession() as http:

                async def writers() -> list[Serve]:
                    found = []
                    for serve in serves:
                        metrics = await scrape(http, serve.metrics_port)
                        if metrics is not None and metrics.get("atbb_writer") == 1:
                            found.append(serve)
                    return found

                async def one_writer() -> bool:
                    return len(await writers()) == 1

                async def all_answer() -> bool:
                    return all([await scrape(http, s.metrics_port) is not None
                                for s in serves])

                await until(all_answer, 60, "every process serving")
                await until(one_writer, 30, "a writer")
                [writer] = await writers()
                # with no cursor yet the writer follows live: publish once it listens
                await until(lambda: _connected(http, writer.metrics_port), 30, "connected")
                for line in lines[:third]:
                    network.jetstream.publish_raw(line)
                await until(lambda: _true(observer.event_log.cursor("jetstream") is not None),
                            30, "ingesting")
                # mid-ingest: the second third is on its way into the log
                before = observer.event_log.count()
                for line in lines[third:2 * third]:
                    network.jetstream.publish_raw(line)
                await until(lambda: _true(observer.event_log.count() > before), 30,
                            "the second third arriving")
                writer.kill()
                took_over = await until(one_writer, 10, "a new writer after the kill")
                assert took_over < 5
                writer.restart()
                for line in lines[2 * third:]:
                    network.jetstream.publish_raw(line)
                newest = max(e.time_us for e in network.jetstream.history()
                             if e.kind is not None)
                await until(lambda: _true(caught_up_to(observer, newest)), 60, "caught up")
                assert observer.rebuilds is not None
                generation = observer.read_models.live_generation()  # type: ignore[attr-defined]

                # mid-rebuild: the live generation says an older version built it
                await kill_the_writer_mid_rebuild(observer, runs, writers)

                async def all_on_the_new_generation() -> bool:
                    live = observer.read_models.live_generation()  # type: ignore[attr-defined]
                    if live <= generation or observer.rebuilds.outdated():  # type: ignore[union-attr]
                        return False
                    seen = [await scrape(http, s.metrics_port) for s in serves]
                    return all(m is not None and m.get(
                        'atbb_projection_generation{projection="forum"}') == live
                        for m in seen) and await one_writer()

                await until(all_on_the_new_generation, 90, "every process on the new"
                            " generation")
                recent = runs.recent(10)
                assert [r.status for r in recent if r.error == INTERRUPTED] == ["failed"]
                assert any(r.status == "completed" and r.reason == "version changed"
                           for r in recent)
                assert caught_up_to(observer, newest)
                disturbed = dump(observer, with_times=False)
        finally:
            for serve in serves:
                serve.stop()
            log.close()
            observer.close()
        calm = bootstrap(settings_for(backend, "calm", forum_did))
        try:
            async with running(calm, network.jetstream_url) as live:
                await wait_for(lambda: caught_up(calm, network, live))
            expected = dump(calm, with_times=False)
        finally:
            calm.close()
    assert disturbed == expected
    assert all(serve.process.returncode == 0 for serve in serves), log_path.read_text()


async def kill_the_writer_mid_rebuild(observer: object, runs: RebuildRunStore,
                                      writers: object) -> None:
    """Outdate the live generation and SIGKILL the writer while its rebuild runs. A small
    log rebuilds in moments, so the writer is frozen (SIGSTOP) first and killed only if
    its run is still stored in progress (frozen, it cannot finish); a run that ended
    before the freeze is let go and the version outdated again."""
    for _ in range(10):
        with observer.read_models.transaction() as session:  # type: ignore[attr-defined]
            session.execute("UPDATE projection_versions SET version = ?"
                            " WHERE name = 'forum'", (ForumProjection.VERSION - 1,))
        await until(lambda: _true(bool(runs.in_progress())), 30, "a rebuild started")
        [writer] = await writers()  # type: ignore[operator]
        writer.process.send_signal(signal.SIGSTOP)
        if runs.in_progress():
            writer.kill()
            writer.restart()
            return
        writer.process.send_signal(signal.SIGCONT)
        await until(lambda: _true(not observer.rebuilds.outdated()),  # type: ignore[attr-defined]
                    60, "the rebuild that ended before the freeze")
    raise AssertionError("no rebuild was still running when its writer was frozen")


async def _connected(http: aiohttp.ClientSession, port: int) -> bool:
    metrics = await scrape(http, port)
    return metrics is not None and metrics.get(
        'atbb_ingest_connected{source="jetstream"}') == 1


async def _true(value: bool) -> bool:
    return value


async def test_workers_share_one_port_with_one_writer_and_survive_its_death(
        backend: Backend) -> None:
    forum_did, lines = scenario_lines()
    settings = settings_for(backend, "workers", forum_did)
    observer = bootstrap(settings)
    port, metrics_port = free_port(), free_port()
    while True:  # the second worker's metrics port must be free too
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", metrics_port + 1))
            break
        except OSError:
            metrics_port = free_port()
    log_path = backend.tmp / "workers.log"
    async with DevNetwork() as network:
        env = environment(settings, network.jetstream_url, METRICS_PORT=str(metrics_port))
        with log_path.open("wb") as log:
            parent = subprocess.Popen(
                [*ATBB, "serve", "--workers", "2", "--port", str(port), "--no-backfill"],
                cwd=backend.tmp, env=env, stdout=subprocess.PIPE, stderr=log)
        try:
            assert parent.stdout is not None
            ready = await asyncio.to_thread(parent.stdout.readline)
            assert ready.decode().strip() == f"serving on http://127.0.0.1:{port}/ (2 workers)"
            async with aiohttp.ClientSession() as http:
                async def roles() -> list[float | None]:
                    found: list[float | None] = []
                    for worker in (0, 1):
                        metrics = await scrape(http, metrics_port + worker)
                        found.append(None if metrics is None else metrics.get("atbb_writer"))
                    return found

                async def one_writer() -> bool:
                    return sorted(r or 0 for r in await roles()) == [0, 1] \
                        and None not in await roles()

                await until(one_writer, 30, "one writer of two workers")
                leading = metrics_port + (await roles()).index(1)
                await until(lambda: _connected(http, leading), 30, "connected")
                for line in lines:
                    network.jetstream.publish_raw(line)
                # killed with a cursor stored: the next writer resumes from it (with none
                # it would follow live, and the gap is a backfill's, off here)
                await until(lambda: _true(observer.event_log.cursor("jetstream") is not None),
                            30, "a cursor stored")
                # fresh connections are spread over both workers' sockets
                for _ in range(60):
                    async with aiohttp.ClientSession() as once, \
                            once.get(f"http://127.0.0.1:{port}/api/health") as answer:
                        assert answer.status == 200
                served = []
                for worker in (0, 1):
                    metrics = await scrape(http, metrics_port + worker) or {}
                    served.append(metrics.get('atbb_http_requests_total{method="GET",'
                                              'route="/api/health",status="200"}', 0))
                assert sum(served) == 60 and min(served) > 0, served

                writer = (await roles()).index(1)
                pids = _worker_pids(log_path)
                os.kill(pids[writer], signal.SIGKILL)
                took_over = await until(
                    lambda: _is_writer(http, metrics_port + 1 - writer), 10,
                    "the other worker taking over")
                assert took_over < 5
                # the supervisor starts the dead worker again, as a follower
                await until(lambda: _true(len(_worker_pids_all(log_path)) == 3), 30,
                            "the worker restarted")
                await until(one_writer, 30, "two workers, one writer, again")
                await until(lambda: _true(caught_up_to(observer, max(
                    e.time_us for e in network.jetstream.history() if e.kind is not None))),
                    60, "caught up")
        finally:
            if parent.poll() is None:
                parent.send_signal(signal.SIGTERM)
            code = parent.wait(timeout=40)
            observer.close()
    assert code == 0, log_path.read_text()
    for pid in _worker_pids_all(log_path):
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


async def _is_writer(http: aiohttp.ClientSession, port: int) -> bool:
    metrics = await scrape(http, port)
    return metrics is not None and metrics.get("atbb_writer") == 1


def _worker_pids_all(log_path: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"worker \d+ serving \(pid (\d+)\)",
                                           log_path.read_text())]


def _worker_pids(log_path: Path) -> dict[int, int]:
    """The live pid of each worker (the latest start of each)."""
    found: dict[int, int] = {}
    for worker, pid in re.findall(r"worker (\d+) serving \(pid (\d+)\)", log_path.read_text()):
        found[int(worker)] = int(pid)
    return found


def _is_zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True


def test_a_port_in_use_is_refused_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            reserve_address("127.0.0.1", taken.getsockname()[1]).close()
