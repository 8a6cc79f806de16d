"""Pulling a log over loopback (`atbb events pull`) beside exporting it to a file.

    python -m bench.pull [--events 1000000] [--page 50000]

Appends a realistic synthetic forum stream (bench/ingest.py's generator) to a source
log (embedded SQLite), then measures in the same run:

- baseline: `atbb events export` of the whole log to a file (``export_log``): read,
  decode, encode, write;
- pull: a fresh local log pulling the whole source log from `GET /api/admin/events`,
  served by the appview in a process of its own on 127.0.0.1, through
  ``appview.pull.pull`` (HTTP, parse, append with the cursor in each batch).

Prints events/s of both and their ratio; the target is a pull at least 0.5 of the
export's rate. Checks the pulled log holds as many events as the source, and the same
last thousand.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

from appview.bootstrap import bootstrap
from appview.pull import pull
from appview.replay import export_log
from appview.settings import Settings
from bench.ingest import generate
from events.store import open_event_log
from web.app import create_app

RATIO_TARGET = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(data_dir: Path, forum_did: str, port: int) -> None:
    """The source appview, serving its log (a process of its own)."""
    services = bootstrap(Settings(data_dir=data_dir, forum_did=forum_did))

    async def main() -> None:
        runner = web.AppRunner(create_app(services), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(main())
    finally:
        services.close()


def run(events: int, page: int) -> None:
    print(f"generating {events} events...", flush=True)
    lines, forum_did = generate(events)
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        work = Path(tmp)
        source_dir = work / "source"
        services = bootstrap(Settings(data_dir=source_dir, forum_did=forum_did))
        try:
            appender = services.appender(batch_size=2000)
            for number, line in enumerate(lines, start=1):
                appender.feed(line, number)
            appender.flush()
            stored = services.event_log.count()
            _, token = services.admin_tokens.issue(forum_did, "bench")
            del lines
            started = time.perf_counter()
            with (work / "export.jsonl").open("w") as out:
                exported = export_log(services.event_log, out, forum_did=forum_did)
            export_seconds = time.perf_counter() - started
        finally:
            services.close()
        size_mb = (work / "export.jsonl").stat().st_size / 1e6
        print(f"source log: {stored} events; export file {size_mb:.0f} MB", flush=True)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.pull", "--serve", str(source_dir), forum_did,
             str(port)], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready"
            local = open_event_log(f"sqlite:///{work / 'pulled' / 'events.sqlite3'}")
            try:
                started = time.perf_counter()
                report = pull(local, f"http://127.0.0.1:{port}", token=token, page=page)
                pull_seconds = time.perf_counter() - started
                pulled = local.count()
                source = open_event_log(f"sqlite:///{source_dir / 'events.sqlite3'}",
                                        create=False)
                try:
                    tail = [e.event for e in source.iter_from(max(0, source.head() - 1000))]
                finally:
                    source.close()
                local_tail = [e.event for e in local.iter_from(max(0, local.head() - 1000))]
            finally:
                local.close()
        finally:
            server.terminate()
            server.wait(10)
    assert pulled == stored == report.received == exported, (pulled, stored, report)
    assert local_tail == tail
    export_rate = exported / export_seconds
    pull_rate = report.received / pull_seconds
    ratio = pull_rate / export_rate
    print(f"export to a file: {exported} events in {export_seconds:.1f}s = "
          f"{export_rate:,.0f} events/s (baseline)")
    print(f"pull over loopback: {report.received} events in {pull_seconds:.1f}s = "
          f"{pull_rate:,.0f} events/s ({report.requests} requests of {page})")
    verdict = "met" if ratio >= RATIO_TARGET else "MISSED"
    print(f"pull / export = {ratio:.2f} (target >= {RATIO_TARGET}: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=50_000)
    parser.add_argument("--serve", nargs=3, metavar=("DATA_DIR", "FORUM_DID", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        data_dir, forum_did, port = args.serve
        serve(Path(data_dir), forum_did, int(port))
        return
    run(args.events, args.page)


if __name__ == "__main__":
    main()
