"""Live updates: 1,000 Server-Sent Events clients on one topic receiving a new reply.

    python -m bench.sse [--clients 1000] [--replies 10] [--backends sqlite,postgresql]
                        [--posts 20000] [--topics 1000]

Seeds a forum (bench.web's generator) into the event log and projects it, then serves it
with the real `atbb serve --no-ingest` in a process of its own, and opens ``--clients``
streams on the long topic (`/t/{id}/live`) from this process. Then, ``--replies`` times,
1 to 2 s apart, this process appends a reply to the log (as a separate ingest process
would) and projects it; each client notes when the reply's event reached it. The time
measured is from the append's commit to each client's receipt: the server's watch of the
projections' position (every 0.25 s per process), the projection, one log read and one
visibility query for all the streams, and the writes to 1,000 sockets.

Baseline in the same run: a bare aiohttp server in its own process that reads the log's
head every 0.5 s and writes a fixed event to every stream when it moves (the floor of
a process that polls and fans out), with the same clients.

Target (2 cores): p99 from the post's arrival in the log to the last client < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp

from appview.bootstrap import Services, bootstrap
from appview.settings import Settings
from bench.web import Writer, backend_settings, forum_events, free_port, wait_up
from events import collections as c
from events.model import RecordEvent
from projections.ids import post_id
from projections.runner import project_to_head

P99_TARGET_S = 1.0
PROJECTING: list[float] = []  # seconds each reply took to project, in this process
FORUM = "did:plc:benchforumbenchforumbenc"
BASELINE_SERVER = """
import asyncio, sys
from aiohttp import web
from events.store import open_event_log
url, schema, port = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
log = open_event_log(url, schema=schema, create=False)
state = {"head": log.head(), "moved": None}
async def watch(app):
    loop = asyncio.get_running_loop()
    state["moved"] = loop.create_future()
    async def run():
        while True:
            await asyncio.sleep(0.5)
            head = await asyncio.to_thread(log.head)
            if head > state["head"]:
                state["head"] = head
                moved, state["moved"] = state["moved"], loop.create_future()
                moved.set_result(None)
    task = asyncio.create_task(run())
    yield
    task.cancel()
async def stream(request):
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"retry: 3000\\n\\n")
    while True:
        await state["moved"]
        await response.write(f"id: {state['head']}\\nevent: reply\\ndata: {{}}\\n\\n".encode())
app = web.Application()
app.cleanup_ctx.append(watch)
app.router.add_get("/", stream)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


def raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Clients:
    """``count`` streams on ``url``; the receipt times of each event kind ``reply``."""

    url: str
    count: int
    ready: int = 0
    received: list[list[float]] = field(default_factory=list)  # per event, per client

    async def run(self, stop: asyncio.Event, expect: int) -> None:
        self.received = [[] for _ in range(expect)]
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks = [asyncio.create_task(self._client(session)) for _ in range(self.count)]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, session: aiohttp.ClientSession) -> None:
        async with session.get(self.url) as response:
            if response.status != 200:
                raise RuntimeError(f"{self.url}: HTTP {response.status}")
            await response.content.readuntil(b"\n\n")  # retry:
            self.ready += 1
            seen = 0
            while True:
                block = await response.content.readuntil(b"\n\n")
                if b"event: reply" in block and seen < len(self.received):
                    self.received[seen].append(time.perf_counter())
                    seen += 1


def append_reply(services: Services, topic: RecordEvent, clock: list[int]) -> float:
    """Append one reply to the topic and project it; the perf_counter of the commit."""
    writer = Writer(clock)
    author = "did:plc:benchreplierbenchreplier"
    event = writer.event(author, c.POST, {
        "text": "A live reply.", "createdAt": "2026-12-07T12:00:00.000Z",
        "reply": {"root": {"uri": topic.uri, "cid": topic.cid or ""},
                  "parent": {"uri": topic.uri, "cid": topic.cid or ""}}})
    services.event_log.append([event])
    arrived = time.perf_counter()
    project_to_head(services.event_log, services.projections)
    PROJECTING.append(time.perf_counter() - arrived)
    return arrived


async def measure(label: str, url: str, services: Services, topic: RecordEvent,
                  args: argparse.Namespace, clock: list[int]) -> list[float]:
    """Per reply, the seconds from its arrival in the log to the last client; prints
    the distribution over every client's receipt too."""
    clients = Clients(url, args.clients)
    stop = asyncio.Event()
    running = asyncio.create_task(clients.run(stop, args.replies))
    try:
        for _ in range(600):
            if clients.ready >= args.clients:
                break
            if running.done():
                running.result()
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{label}: only {clients.ready} of {args.clients} connected")
        rng = random.Random(3)
        arrivals = []
        for number in range(args.replies):
            await asyncio.sleep(1.0 + rng.random())
            arrivals.append(await asyncio.to_thread(append_reply, services, topic, clock))
            for _ in range(100):  # every client has it, or 10 s passed
                if len(clients.received[number]) >= args.clients:
                    break
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await running
    every = [t - arrivals[n] for n, times in enumerate(clients.received) for t in times]
    last = [max(times) - arrivals[n] if len(times) == args.clients else float("inf")
            for n, times in enumerate(clients.received)]
    projecting = statistics.median(PROJECTING[-len(arrivals):]) * 1000
    missing = sum(args.clients - len(times) for times in clients.received)
    cuts = statistics.quantiles(every, n=100) if len(every) > 1 else [0.0] * 99
    last_sorted = sorted(last)
    p99_last = last_sorted[min(len(last) - 1, int(len(last) * 0.99))]
    print(f"  {label:<28} each client p50 {cuts[49] * 1000:6.0f} ms  p99 {cuts[98] * 1000:6.0f}"
          f" ms · last client p50 {statistics.median(last) * 1000:6.0f} ms"
          f"  p99 {p99_last * 1000:6.0f} ms  max {max(last) * 1000:6.0f} ms"
          f" · projecting p50 {projecting:4.0f} ms"
          f"{f'  ({missing} receipts missing)' if missing else ''}")
    return last


async def run_backend(settings: Settings, topic: RecordEvent, args: argparse.Namespace,
                      clock: list[int]) -> int:
    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "FORUM_DID": settings.forum_did,
           "DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
           "LOG_LEVEL": "WARNING"}
    port, base_port = free_port(), free_port()
    services = bootstrap(settings)
    server = subprocess.Popen([sys.executable, "-c", "import resource as r;"
                               " s, h = r.getrlimit(r.RLIMIT_NOFILE);"
                               " r.setrlimit(r.RLIMIT_NOFILE, (h, h));"
                               " from web.cli import main; main()",
                               "serve", "--no-ingest", "--no-backfill", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    schema = settings.database_schema if settings.is_postgres else ""
    baseline = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER,
                                 settings.event_log_url, schema, str(base_port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_up(f"http://127.0.0.1:{port}/")
        await measure("baseline (poll + fixed event)", f"http://127.0.0.1:{base_port}/",
                      services, topic, args, clock)
        baseline.terminate()
        last = await measure(f"{args.clients} streams on one topic",
                             f"http://127.0.0.1:{port}/t/{post_id(topic.uri)}/live",
                             services, topic, args, clock)
    finally:
        for process in (server, baseline):
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        services.close()
    last_sorted = sorted(last)
    p99 = last_sorted[min(len(last) - 1, int(len(last) * 0.99))]
    ok = p99 < P99_TARGET_S
    print(f"  target: p99 to the last client < {P99_TARGET_S:.0f} s: "
          f"{'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=10)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    raise_file_limit()
    events = forum_events(args.posts, args.topics, FORUM).events
    topic = next(e for e in events if isinstance(e, RecordEvent) and e.collection == c.POST)
    clock = [max(e.observed_at for e in events if isinstance(e, RecordEvent)) + 1000]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="atbb-bench-sse-") as tmp:
        for backend in args.backends.split(","):
            with backend_settings(tmp, backend, FORUM) as settings:
                services = bootstrap(settings)
                try:
                    for start in range(0, len(events), 10_000):
                        services.event_log.append(events[start:start + 10_000])
                    project_to_head(services.event_log, services.projections,
                                    batch_size=10_000)
                finally:
                    services.close()
                print(f"\n{backend}: {len(events):,} events; {args.clients} clients,"
                      f" {args.replies} replies")
                failures += asyncio.run(run_backend(settings, topic, args, clock))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
