"""Page latency and throughput on a large seeded forum.

    python -m bench.web [--posts 1000000] [--topics 100000] [--backends sqlite,postgresql]
                        [--seconds 10] [--connections 50]
                        [--workers 1,2 [--only-workers] [--load-generator auto|wrk|aiohttp]]

Seeds a forum of ``--posts`` posts in ``--topics`` topics over 20 boards (one topic with
2,000 replies, the others sharing the rest) straight into the event log and projects it,
then serves it with the real `atbb serve --no-ingest` in a process of its own and loads it
from this one with an aiohttp client on loopback (``--connections`` at once, for
``--seconds`` per page): the index, a board's first and 50th page, the 2,000-reply topic's
first and last page. Baseline in the same run: an aiohttp handler in its own process
returning a fixed page of the same size as the topic page.

Then what readers do, in the same run: topic pages drawn uniformly from every topic of the
forum (the cold case: nearly every request misses the page cache), a Zipf mix over
topics, boards and their pages (the realistic case: 70 % topic pages, 25 % board pages,
5 % the index; topics and boards by Zipf s=1 over a fixed popularity order, pages within
them by Zipf over page numbers, the first most read), and the same mix while another
process appends replies to Zipf-drawn topics at ``--append-rate`` a second and projects
them (each projected post moves the projection's position, which every page's ETag names:
the page cache is invalidated as in a live forum, seen by the server within
PAGE_STATE_SECONDS).

Targets (2 cores): p99 < 50 ms for every fixed page at 50 connections; throughput at least a
third of the fixed-page baseline. Uniform random topics: p99 < 50 ms and at least 0.15 of
the baseline; the Zipf mix at least 0.5 of it; the mix under appends p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from appview.bootstrap import bootstrap
from appview.settings import Settings
from bench.ingest import PG_URL, _drop_schemas
from events import collections as c
from events.model import IdentityChanged, LogEvent, RecordEvent, int_to_tid
from projections.ids import post_id, record_id
from projections.runner import project_from_start, project_to_head
from web.pages.forum import TOPICS_PER_PAGE
from web.pages.topic import REPLIES_PER_PAGE

BOARDS = 20
UNIFORM_P99_MS = 50.0
UNIFORM_RATIO = 0.15
ZIPF_RATIO = 0.5
APPENDS_P99_MS = 100.0
MEMBERS = 2000
LONG_TOPIC_REPLIES = 2000
P99_TARGET_MS = 50.0
THROUGHPUT_RATIO = 1 / 3
FIXED_SERVER = """
import sys
from aiohttp import web
body = "x" * int(sys.argv[2])
async def page(request):
    return web.Response(text=body, content_type="text/html")
app = web.Application()
app.router.add_get("/", page)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class Writer:
    """Record events of one repo with increasing revs (a shared clock for every repo)."""

    def __init__(self, clock: list[int]) -> None:
        self.clock = clock

    def event(self, did: str, collection: str, record: dict[str, object],
              rkey: str | None = None) -> RecordEvent:
        self.clock[0] += 1
        rev = int_to_tid(self.clock[0] << 10)
        return RecordEvent("create", did, collection, rkey or rev, rev, f"bafy{rev}", record,
                           True, None, "local", None, self.clock[0])


def when(micros: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(micros / 1e6))


@dataclass
class Seeded:
    """A generated forum: its events and what the loads draw from."""

    events: list[LogEvent]
    board_ids: list[str]
    # every topic: id, reply count, its root and board strong refs (for appended replies)
    topics: list[tuple[str, int, dict[str, str], dict[str, str]]]
    members: list[str]
    clock: int


@contextmanager
def backend_settings(tmp: str, backend: str, forum: str) -> Iterator[Settings]:
    """Settings for one backend: a fresh data folder, on PostgreSQL a fresh schema, dropped
    afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    settings = Settings(data_dir=Path(tmp) / schema, forum_did=forum)
    if backend == "postgresql":
        settings = settings.with_overrides(database_url=PG_URL, database_schema=schema)
    try:
        yield settings
    finally:
        if backend == "postgresql":
            _drop_schemas(schema)


def forum_events(posts: int, topics: int, forum: str) -> Seeded:
    """The forum's events and what the loads draw from (the long topic is the first)."""
    rng = random.Random(7)
    clock = [1_780_000_000_000_000]
    w = Writer(clock)
    out: list[LogEvent] = []
    forum_rec = w.event(forum, c.FORUM, {"name": "Bench forum", "createdAt": when(clock[0])},
                        rkey="self")
    out.append(forum_rec)

    def ref(e: RecordEvent) -> dict[str, str]:
        return {"uri": e.uri, "cid": e.cid or ""}

    category = w.event(forum, c.CATEGORY, {"name": "Everything", "sortOrder": 0,
                                          "createdAt": when(clock[0])})
    out.append(category)
    boards = [w.event(forum, c.BOARD, {"name": f"Board {i}", "sortOrder": i,
                                       "category": ref(category), "createdAt": when(clock[0])})
              for i in range(BOARDS)]
    out += boards
    members = [f"did:plc:{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}" for _ in range(MEMBERS)]
    for seq, did in enumerate(members, start=1):
        out.append(IdentityChanged(did, f"member{seq}.test", seq, None, "local", None, 0))
        out.append(w.event(did, c.MEMBERSHIP, {"forum": ref(forum_rec),
                                               "createdAt": when(clock[0])}))
    opened: list[tuple[RecordEvent, dict[str, str]]] = []
    for index in range(topics):
        author = members[rng.randrange(MEMBERS)]
        board = ref(boards[index % BOARDS])
        opened.append((w.event(author, c.POST, {
            "title": f"Topic {index}: {' '.join(rng.choice(WORDS) for _ in range(5))}",
            "text": body(rng, 40), "board": board, "createdAt": when(clock[0])}), board))
    out += [topic for topic, _ in opened]
    replies = [0] * topics
    for index in range(posts - topics):
        which = 0 if index < LONG_TOPIC_REPLIES else rng.randrange(1, topics)
        replies[which] += 1
        root, board = opened[which]
        author = members[rng.randrange(MEMBERS)]
        out.append(w.event(author, c.POST, {
            "text": body(rng, 60), "board": board,
            "reply": {"root": ref(root), "parent": ref(root)},
            "createdAt": when(clock[0])}))
    return Seeded(out, [record_id(b.uri) for b in boards],
                  [(post_id(t.uri), replies[i], ref(t), board)
                   for i, (t, board) in enumerate(opened)], members, clock[0])


WORDS = ("forum", "thread", "reply", "protocol", "repo", "record", "cursor", "event",
         "projection", "moderator", "theme", "board", "category", "markdown", "**bold**",
         "`code`", "[link](https://example.com)")


def body(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(words // 2, words)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never came up")


async def load(url: str, seconds: float, connections: int) -> tuple[float, float, float, int]:
    """p50 ms, p99 ms, requests/s, body bytes of ``url`` under ``connections`` clients."""
    return await load_paths(url, lambda: "", seconds, connections)


async def load_paths(base: str, next_path: Callable[[], str], seconds: float,
                     connections: int) -> tuple[float, float, float, int]:
    """As ``load``, each request for ``base + next_path()`` (bytes: the last body's)."""
    latencies: list[float] = []
    size = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            nonlocal size
            while time.perf_counter() < deadline:
                url = base + next_path()
                started = time.perf_counter()
                async with session.get(url) as response:
                    data = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")
                latencies.append((time.perf_counter() - started) * 1000)
                size = len(data)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98], len(latencies) / elapsed, size


def wrk_load(url: str, seconds: float, connections: int,
             paths: list[str] | None = None) -> tuple[float, float, float, int]:
    """As ``load``, by wrk (a C load generator, one thread) instead of this process: a
    Python client costs about as much CPU per request as the server, so on two cores it
    takes the second worker's core. With ``paths``, each request asks for one of them
    at random (wrk's Lua ``request`` hook). The body's size is not reported (0)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if paths:
            quoted = ",".join('"' + path.replace('"', '\\"') + '"' for path in paths)
            script.write(f"local paths = {{{quoted}}}\n"
                         "request = function()\n"
                         "  return wrk.format(nil, paths[math.random(#paths)])\n"
                         "end\n")
            script.flush()
            command += ["-s", script.name]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                             timeout=seconds + 60).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise RuntimeError(f"{url}: wrk saw failed requests:\n{out}")

    def percentile(label: str) -> float:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no {label}th percentile in wrk's output:\n{out}")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return float(found.group(1)) * scale

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if rate is None:
        raise RuntimeError(f"no rate in wrk's output:\n{out}")
    return percentile("50"), percentile("99"), float(rate.group(1)), 0


class Zipf:
    """Ranks 0..n-1 drawn with probability proportional to 1 / (rank + 1) ** s."""

    def __init__(self, n: int, rng: random.Random, s: float = 1.0) -> None:
        self._cumulative = list(itertools.accumulate(1 / (k + 1) ** s for k in range(n)))
        self._rng = rng

    def __call__(self) -> int:
        point = self._rng.random() * self._cumulative[-1]
        return min(bisect.bisect_left(self._cumulative, point), len(self._cumulative) - 1)


class Readers:
    """The paths readers ask for: uniform over topics, or the Zipf mix."""

    def __init__(self, seeded: Seeded, seed: int) -> None:
        self._rng = random.Random(seed)
        order = random.Random(11)  # the same popularity order in every run and process
        self._topics = [(topic_id, pages_of(replies, REPLIES_PER_PAGE))
                        for topic_id, replies, _root, _board in seeded.topics]
        self.popular_topics = list(range(len(self._topics)))
        order.shuffle(self.popular_topics)
        self._boards = list(seeded.board_ids)
        order.shuffle(self._boards)
        board_pages = pages_of(len(seeded.topics) // len(seeded.board_ids), TOPICS_PER_PAGE)
        self._topic_rank = Zipf(len(self._topics), self._rng)
        self._board_rank = Zipf(len(self._boards), self._rng)
        self._board_page = Zipf(board_pages, self._rng)
        self._page_ranks: dict[int, Zipf] = {}

    def uniform_topic(self) -> str:
        return f"/t/{self._rng.choice(self._topics)[0]}"

    def popular_topic(self) -> int:
        """A topic's index in ``Seeded.topics``, by Zipf over the popularity order."""
        return self.popular_topics[self._topic_rank()]

    def mix(self) -> str:
        roll = self._rng.random()
        if roll < 0.70:
            topic_id, pages = self._topics[self.popular_topic()]
            return f"/t/{topic_id}" + self._page_query(pages)
        if roll < 0.95:
            board = self._boards[self._board_rank()]
            return f"/b/{board}" + self._page_query(0)
        return "/"

    def _page_query(self, pages: int) -> str:
        if pages == 0:  # a board's
            page = self._board_page() + 1
        elif pages == 1:
            return ""
        else:
            page = self._page_ranks.setdefault(pages, Zipf(pages, self._rng))() + 1
        return "" if page == 1 else f"?page={page}"


def pages_of(items: int, per_page: int) -> int:
    return max(1, -(-items // per_page))


def append_posts(settings: Settings, seeded: Seeded, rate: float, stop: object,
                 counter: object) -> None:
    """In a process of its own: a reply to a Zipf-drawn topic every 1/``rate`` s, each
    appended to the log and projected at once (what a live forum's ingest does), until
    ``stop`` (a multiprocessing Event) is set; ``counter`` (a Value) counts them."""
    readers = Readers(seeded, seed=99)
    rng = random.Random(5)
    clock = [seeded.clock]
    writer = Writer(clock)
    services = bootstrap(settings)
    interval = 1 / rate
    try:
        due = time.perf_counter()
        while not stop.is_set():  # type: ignore[attr-defined]
            _topic_id, _replies, root, board = seeded.topics[readers.popular_topic()]
            clock[0] = max(clock[0], int(time.time() * 1e6))
            event = writer.event(seeded.members[rng.randrange(len(seeded.members))], c.POST,
                                 {"text": body(rng, 60), "board": board,
                                  "reply": {"root": root, "parent": root},
                                  "createdAt": when(clock[0])})
            services.event_log.append([event])
            project_to_head(services.event_log, services.projections)
            with counter.get_lock():  # type: ignore[attr-defined]
                counter.value += 1  # type: ignore[attr-defined]
            due += interval
            time.sleep(max(0.0, due - time.perf_counter()))
    finally:
        services.close()


async def measure(settings: Settings, seeded: Seeded, args: argparse.Namespace,
                  last_topic_page: int) -> int:
    board_id, topic_id = seeded.board_ids[1], seeded.topics[0][0]
    port, fixed_port = free_port(), free_port()
    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "FORUM_DID": settings.forum_did,
           "DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
           "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "web", "serve", "--no-ingest",
                               "--no-backfill", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    failures = 0
    try:
        await wait_up(base + "/")
        board_page = min(50, -(-args.topics // BOARDS // TOPICS_PER_PAGE))
        pages = {"index": "/", "board page 1": f"/b/{board_id}",
                 f"board page {board_page}": f"/b/{board_id}?page={board_page}",
                 "topic page 1": f"/t/{topic_id}",
                 f"topic page {last_topic_page}": f"/t/{topic_id}?page={last_topic_page}"}
        _, _, _, topic_size = await load(base + pages["topic page 1"], 1.0, 2)
        fixed = subprocess.Popen([sys.executable, "-c", FIXED_SERVER, str(fixed_port),
                                  str(topic_size)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            await wait_up(f"http://127.0.0.1:{fixed_port}/")
            b50, b99, brate, _ = await load(f"http://127.0.0.1:{fixed_port}/", args.seconds,
                                            args.connections)
        finally:
            fixed.terminate()
            fixed.wait(10)
        print(f"  baseline fixed page ({topic_size:,} B)  p50 {b50:6.1f} ms  p99 {b99:6.1f} ms"
              f"  {brate:8,.0f} req/s")
        for name, path in pages.items():
            await load(base + path, 0.5, 2)  # warm the caches
            p50, p99, rate, size = await load(base + path, args.seconds, args.connections)
            ok = p99 < P99_TARGET_MS and rate >= brate * THROUGHPUT_RATIO
            failures += not ok
            print(f"  {name:<22} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  {rate:8,.0f} req/s"
                  f"  ({rate / brate:.2f} of baseline, {size:,} B)  {'ok' if ok else 'MISSED'}")
        failures += await measure_readers(settings, seeded, args, base, brate)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
    return failures


async def measure_readers(settings: Settings, seeded: Seeded, args: argparse.Namespace,
                          base: str, brate: float) -> int:
    """The uniform, Zipf and Zipf-under-appends loads against the running server."""
    failures = 0
    readers = Readers(seeded, seed=1)

    def report(name: str, figures: tuple[float, float, float, int], p99_target: float | None,
               ratio_target: float | None, note: str = "") -> None:
        nonlocal failures
        p50, p99, rate, _size = figures
        ok = (p99_target is None or p99 < p99_target) and (
            ratio_target is None or rate >= brate * ratio_target)
        failures += not ok
        wanted = " and ".join(
            ([f"p99 < {p99_target:.0f} ms"] if p99_target else [])
            + ([f">= {ratio_target} of baseline"] if ratio_target else []))
        print(f"  {name:<22} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  {rate:8,.0f} req/s"
              f"  ({rate / brate:.2f} of baseline)  target {wanted}: "
              f"{'ok' if ok else 'MISSED'}{note}")

    report("uniform random topics",
           await load_paths(base, readers.uniform_topic, args.seconds, args.connections),
           UNIFORM_P99_MS, UNIFORM_RATIO)
    await load_paths(base, readers.mix, 1.0, args.connections)  # the popular pages cached
    report("Zipf mix", await load_paths(base, readers.mix, args.seconds, args.connections),
           None, ZIPF_RATIO)
    context = multiprocessing.get_context("fork")
    stop, counter = context.Event(), context.Value("i", 0)
    appender = context.Process(target=append_posts,
                               args=(settings, seeded, args.append_rate, stop, counter))
    appender.start()
    try:
        await asyncio.sleep(1.0)  # appending at its pace
        before, started = counter.value, time.perf_counter()
        figures = await load_paths(base, readers.mix, args.seconds, args.connections)
        appended = (counter.value - before) / (time.perf_counter() - started)
    finally:
        stop.set()
        appender.join(30)
    report("Zipf mix, appending", figures, APPENDS_P99_MS, None,
           f"  ({appended:.0f} posts/s appended)")
    return failures


WORKERS_RATIO_TARGET = 1.7  # 2 workers on 2 cores against 1 worker


async def measure_workers(settings: Settings, seeded: Seeded, args: argparse.Namespace,
                          ) -> int:
    """``--workers 1,2``: the long topic's first page (the page cache's case) and topic
    pages drawn uniformly from every topic (the cold case) at ``--connections``
    connections, served by `atbb serve --workers N` for each N; pages/s and p99, and
    each N's rate against the first's (target: 2 workers >= 1.7 x 1). The load comes
    from wrk when it is installed (``--load-generator``), this process's aiohttp client
    otherwise."""
    generator = args.load_generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "aiohttp"
    print(f"  load generator: {generator}")
    readers = Readers(seeded, seed=7)
    uniform = [readers.uniform_topic() for _ in range(20_000)]
    loads = {"topic page": [f"/t/{seeded.topics[0][0]}"], "uniform topics": uniform}

    async def load_by(base: str, paths: list[str], seconds: float,
                      ) -> tuple[float, float, float, int]:
        if generator == "wrk":
            return await asyncio.to_thread(wrk_load, base + paths[0], seconds,
                                           args.connections, paths)
        rng = random.Random(3)
        return await load_paths(base, lambda: rng.choice(paths), seconds, args.connections)

    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "FORUM_DID": settings.forum_did,
           "DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
           "LOG_LEVEL": "WARNING"}
    first_rates: dict[str, float] = {}
    failures = 0
    for count in [int(n) for n in args.workers.split(",")]:
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "web", "serve", "--no-ingest",
                                   "--no-backfill", "--port", str(port), "--workers",
                                   str(count)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_up(base + loads["topic page"][0])
            for name, paths in loads.items():
                await load_by(base, paths, 2.0)  # every worker warm
                p50, p99, rate, _ = await load_by(base, paths, args.seconds)
                first = first_rates.setdefault(name, rate)
                ratio = rate / first
                note = ""
                if count == 2 and first != rate:
                    ok = ratio >= WORKERS_RATIO_TARGET
                    failures += not ok
                    note = f"  (target {WORKERS_RATIO_TARGET}: {'ok' if ok else 'MISSED'})"
                print(f"  {count} worker(s)  {name:<15} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
                      f"  {rate:8,.0f} pages/s  {ratio:.2f} x 1 worker{note}", flush=True)
        finally:
            server.terminate()
            server.wait(40)
    return failures


def seed(settings: Settings, seeded: Seeded) -> float:
    """Append the forum's events to a fresh log and project them; the seconds taken."""
    services = bootstrap(settings)
    try:
        started = time.perf_counter()
        events = seeded.events
        for start in range(0, len(events), 10_000):
            services.event_log.append(events[start:start + 10_000])
        # as `atbb project` projects a fresh appview's log: a bulk load, its batches
        # prepared by child processes
        project_from_start(services.event_log, services.projections, services.read_models,
                           batch_size=10_000, open_log=services.open_log)
        return time.perf_counter() - started
    finally:
        services.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--topics", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--append-rate", type=float, default=50.0,
                        help="posts a second appended during the last load")
    parser.add_argument("--workers", default="",
                        help="e.g. 1,2: then the topic page by `serve --workers N`")
    parser.add_argument("--only-workers", action="store_true",
                        help="with --workers: measure nothing else")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "aiohttp"),
                        default="auto", help="for --workers: wrk when installed (auto)")
    args = parser.parse_args(argv)
    forum = "did:plc:benchforumbenchforumbenc"
    started = time.perf_counter()
    seeded = forum_events(args.posts, args.topics, forum)
    print(f"generated {len(seeded.events):,} events ({args.posts:,} posts, {args.topics:,} topics) "
          f"in {time.perf_counter() - started:.0f}s")
    last_topic_page = -(-LONG_TOPIC_REPLIES // REPLIES_PER_PAGE)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="atbb-bench-web-") as tmp:
        for backend in args.backends.split(","):
            with backend_settings(tmp, backend, forum) as settings:
                seconds = seed(settings, seeded)
                print(f"\n{backend}: seeded in {seconds:.0f}s; "
                      f"{args.connections} connections, {args.seconds:.0f}s per page")
                if not args.only_workers:
                    failures += asyncio.run(measure(settings, seeded, args,
                                                    last_topic_page))
                if args.workers:
                    failures += asyncio.run(measure_workers(settings, seeded, args))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
