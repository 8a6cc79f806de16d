"""`atbb serve`: one process, or N worker processes on one port (`--workers N`).

Each worker is a whole `atbb serve` (web pages, API, live ingest behind the leader
lock) listening on the same address with ``SO_REUSEPORT``: the kernel spreads new
connections over the workers' sockets, evenly by their addresses, and a worker that
dies takes only its own connections with it. The workers are spawned (not forked) by a
supervisor that holds no database connection, no thread and no event loop; it binds the
address first (so a port in use, or port 0, is settled once for all of them), restarts a
worker that dies (after 1 s, doubling to 30 s while it keeps dying young), and on SIGTERM
or SIGINT passes SIGTERM on and waits for them to finish.

Exactly one process of the whole appview, these workers and any other `atbb serve` or
`atbb ingest` on the same database, holds the writer role (``appview.writer``); the others
serve what it writes and take over within seconds of its death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

from aiohttp import web

from appview.bootstrap import Services, bootstrap
from appview.leader import LeaderLock
from appview.live import LiveIngest
from appview.logs import configure_logging
from appview.past import open_past
from appview.settings import Settings
from appview.writer import WriterDuties
from web import server
from web.app import create_app
from web.metrics import Metrics

log = logging.getLogger(__name__)

RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
# A worker that ran this long before dying is restarted after the first delay again.
YOUNG_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ServeOptions:
    no_ingest: bool = False
    no_backfill: bool = False


async def serve_until_signalled(app: web.Application, settings: Settings, *,
                                on_ready: Callable[[int], None] | None = None,
                                reuse_port: bool = False,
                                metrics: Metrics | None = None,
                                worker: int = 0) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; ``on_ready(port)`` once it listens (and
    the metrics listener, given ``metrics`` and METRICS_PORT, on METRICS_PORT + worker)."""
    runner, port = await server.start(app, settings.host, settings.port,
                                      header_timeout=settings.request_read_timeout,
                                      reuse_port=reuse_port)
    metrics_runner = None
    try:
        if metrics is not None and settings.metrics_port:
            metrics_runner = web.AppRunner(metrics.app(), access_log=None)
            await metrics_runner.setup()
            await web.TCPSite(metrics_runner, settings.metrics_host,
                              settings.metrics_port + worker).start()
        if on_ready is not None:
            on_ready(port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()


def serve_process(settings: Settings, options: ServeOptions, *,
                  on_ready: Callable[[int], None] | None = None,
                  own_read_models: Callable[[Services], None] | None = None,
                  reuse_port: bool = False, worker: int = 0) -> None:
    """One `atbb serve` process: the web app, live ingest while it leads, and the
    writer's duties (``appview.writer``) while it leads."""

    async def main() -> None:
        services = bootstrap(settings)
        try:
            if own_read_models is not None:
                own_read_models(services)
            else:
                services.ensure_own_read_models()
            live = None
            if options.no_ingest:
                # a reader only: no writer role, but read models of an older version are
                # rebuilt (under the rebuild lock) so that it serves what this code reads
                if services.rebuilds is not None:
                    services.rebuilds.rebuild_outdated()
            else:
                # ingests, and does the writer's other work, only while it leads: beside
                # `atbb ingest` (or another serve) it serves what the leader writes, and
                # takes over when the leader dies
                live = LiveIngest(services, leader=LeaderLock(settings),
                                  duties=WriterDuties(services,
                                                      backfill=not options.no_backfill))
            metrics = Metrics(services, live) if settings.metrics_port else None
            app = create_app(services, live=live, metrics=metrics)
            await serve_until_signalled(app, settings, on_ready=on_ready,
                                        reuse_port=reuse_port, metrics=metrics,
                                        worker=worker)
        finally:
            services.close()

    asyncio.run(main())


def serve_past(settings: Settings, *, until: int | None = None, at: int | None = None,
               on_ready: Callable[[int, str], None] | None = None) -> None:
    """`atbb serve --until POS` / `--at TIME`: the forum as it was (``appview.past``),
    projected into a scratch directory that goes when serving stops, served read only
    with no ingest and no writer's duties (``web.past``)."""

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="atbb-past-") as scratch:
            services, label = await asyncio.to_thread(open_past, settings, Path(scratch),
                                                      until=until, at=at)
            try:
                app = create_app(services, past=label)
                ready = None if on_ready is None else (lambda port: on_ready(port, label))
                await serve_until_signalled(app, settings, on_ready=ready)
            finally:
                services.close()

    asyncio.run(main())


def reserve_address(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to host:port with SO_REUSEPORT: it settles the port
    (a free one for 0) and fails at once if another program holds it, while the workers
    bind beside it. Only listening sockets are given connections."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _worker_main(settings: Settings, options: ServeOptions, index: int,
                 ready: ProcessEvent) -> None:
    """A worker process (spawned): logs as worker ``index``, serves until signalled."""
    configure_logging(settings, worker=index)
    log.info("worker %d serving (pid %d)", index, os.getpid())
    serve_process(settings, options, on_ready=lambda _port: ready.set(), reuse_port=True,
                  worker=index)


@dataclass
class _Slot:
    index: int
    process: SpawnProcess
    ready: ProcessEvent
    started: float
    delay: float = RESTART_FIRST_SECONDS
    restart_at: float | None = None


class Supervisor:
    """Runs ``count`` workers on one port until stopped (``stop``, or SIGTERM/SIGINT in
    :meth:`run`)."""

    def __init__(self, settings: Settings, options: ServeOptions, count: int) -> None:
        if count < 1:
            raise ValueError(f"--workers must be at least 1, got {count}")
        self._settings = settings
        self._options = options
        self._count = count
        self._context = multiprocessing.get_context("spawn")
        self.stop = threading.Event()
        self._slots: list[_Slot] = []

    def pids(self) -> list[int | None]:
        return [slot.process.pid for slot in self._slots]

    def _spawn(self, index: int, settings: Settings) -> _Slot:
        ready = self._context.Event()
        process = self._context.Process(
            target=_worker_main, args=(settings, self._options, index, ready),
            name=f"atbb-worker-{index}", daemon=False)
        process.start()
        return _Slot(index, process, ready, time.monotonic())

    def run(self, on_ready: Callable[[int], None] | None = None) -> int:
        """Serve until SIGTERM or SIGINT; returns the exit status (0)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        reservation = reserve_address(self._settings.host, self._settings.port)
        try:
            port = int(reservation.getsockname()[1])
            settings = self._settings.with_overrides(port=port)
            self._slots = [self._spawn(i, settings) for i in range(self._count)]
            announced = False
            while not self.stop.wait(0.2):
                if not announced and all(slot.ready.is_set() for slot in self._slots):
                    announced = True
                    if on_ready is not None:
                        on_ready(port)
                self._tend(settings)
        finally:
            self._stop_all()
            reservation.close()
        return 0

    def _tend(self, settings: Settings) -> None:
        now = time.monotonic()
        for position, slot in enumerate(self._slots):
            if slot.process.is_alive():
                continue
            if slot.restart_at is None:
                if now - slot.started >= YOUNG_SECONDS:
                    slot.delay = RESTART_FIRST_SECONDS
                slot.restart_at = now + slot.delay
                log.error("worker %d (pid %s) ended with status %s; restarting it in %.0fs",
                          slot.index, slot.process.pid, slot.process.exitcode, slot.delay)
            elif now >= slot.restart_at:
                fresh = self._spawn(slot.index, settings)
                fresh.delay = min(slot.delay * 2, RESTART_MAX_SECONDS)
                self._slots[position] = fresh

    def _stop_all(self) -> None:
        for slot in self._slots:
            if slot.process.is_alive() and slot.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for slot in self._slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                print(f"worker {slot.index} did not stop within {STOP_TIMEOUT_SECONDS:.0f}s;"
                      " killing it", file=sys.stderr)
                slot.process.kill()
                slot.process.join()
