"""Live ingest end to end: a devnet Jetstream and a devnet PDS's firehose, the consumer,
the log and the projections.

    python -m bench.live_ingest [--events 20000] [--backends sqlite,postgresql] [--rate 500]
        [--firehose-events 3000] [--sources jetstream,firehose]

Per backend, in the same run, for Jetstream:

- baseline: a bare websocket client reading the same frames without appending (the
  ceiling any consumer can reach on this machine);
- throughput: the whole pre-generated stream published at once, read as fast as the
  consumer goes: events/s into the log (stored cursor reaches the newest event) and into
  the projections (every projection at the head);
- latency: lines offered at ``--rate`` events/s; for each new post, the delay from its
  publication to its row being readable in the read models (p50, p99).

For the firehose, on one forum written into a devnet PDS (every write a signed commit):

- baseline: the same frames decoded (frame, CAR slice, records) without any check;
- Jetstream: the same writes as Jetstream lines, through the Jetstream consumer;
- verified: every commit's blocks, signature and operations (undone to prevData) checked;
  all three into the log and into the projections, each on a fresh store;
- latency: posts written into the PDS at ``--rate`` writes/s, from the write to its row in
  the read models (p50, p99).

Targets (2 cores): >= 5,000/s SQLite, >= 3,000/s PostgreSQL; p99 < 1 s at 500/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from appview.bootstrap import Services, bootstrap
from appview.devnet.network import DevNetwork
from appview.devnet.scenario import ScenarioSize, build_scenario, scenario_to_jetstream_lines
from appview.devnet.seed import SeededForum
from appview.live import LiveIngest
from appview.settings import Settings

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def make_lines(events: int) -> tuple[str, list[str]]:
    topics = max(10, events // 9)
    size = ScenarioSize(members=max(20, events // 100), categories=4, boards=12,
                        topics=topics, replies_per_topic=6.0, days=30.0)
    scenario = build_scenario(7, size, real_dids=False)
    start = time.time_ns() // 1000 - 3_600_000_000
    lines = list(scenario_to_jetstream_lines(scenario, start_time_us=start, spacing_us=5))
    return scenario.forum.did, lines[:events]


def settings_for(backend: str, forum_did: str, tmp: Path,
                 **extra: Any) -> tuple[Settings, str | None]:
    if backend == "sqlite":
        return Settings(data_dir=tmp / uuid.uuid4().hex, forum_did=forum_did, **extra), None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    return Settings(data_dir=tmp / schema, database_url=PG_URL, database_schema=schema,
                    forum_did=forum_did, **extra), schema


def drop_schemas(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                            (schema + "%",)).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def raw_read_rate(url: str, count: int) -> float:
    started = time.perf_counter()
    received = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(
        url + "?wantedCollections=space.atbb.*&cursor=0", max_msg_size=16 << 20
    ) as ws:
        while received < count:
            message = await ws.receive(timeout=30)
            if message.type == aiohttp.WSMsgType.TEXT:
                received += 1
    return count / (time.perf_counter() - started)


def at_head(services: Services) -> bool:
    head = services.event_log.head()
    return all(p.position() == head for p in services.projections)


async def throughput(services: Services, url: str, newest: int, count: int,
                     verify: bool = True) -> tuple[float, float]:
    """Events/s into the log (the stored cursor reaches ``newest``) and into the
    projections, following ``url`` from its start."""
    live = LiveIngest(services, url=url, initial_cursor=0, poll_seconds=0.05,
                      verify=verify)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(live.run(stop))
    logged_at = None
    while True:
        await asyncio.sleep(0.01)
        if logged_at is None and (live.consumer.status.cursor or 0) >= newest:
            logged_at = time.perf_counter()
        if logged_at is not None and await asyncio.to_thread(at_head, services):
            projected_at = time.perf_counter()
            break
    stop.set()
    await task
    return count / (logged_at - started), count / (projected_at - started)


async def emission_to_visibility(services: Services, live: LiveIngest,
                                 emit: Callable[[int], str | None], count: int,
                                 rate: float) -> tuple[float, float, int]:
    """Run ``live`` while ``emit(index)`` publishes ``count`` events at ``rate``/s (the
    uri of a post it created, or None); p50 and p99 seconds from emission to the post's
    row in the read models, and how many posts were timed."""
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop))
    while not live.consumer.status.connected:
        await asyncio.sleep(0.01)
    emitted: dict[str, float] = {}
    delays: list[float] = []

    def visible(uris: list[str]) -> list[str]:
        marks = ", ".join("?" * len(uris))
        with services.read_models.read() as session:
            return [str(row[0]) for row in session.query(
                f"SELECT uri FROM posts WHERE uri IN ({marks})", uris)]

    async def watch() -> None:
        while not stop.is_set() or emitted:
            if emitted:
                for uri in await asyncio.to_thread(visible, list(emitted)):
                    delays.append(time.perf_counter() - emitted.pop(uri))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    started = time.perf_counter()
    for index in range(count):
        uri = emit(index)
        if uri is not None:
            emitted[uri] = time.perf_counter()
        wait = started + (index + 1) / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
    deadline = time.perf_counter() + 10
    while emitted and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    await asyncio.wait_for(watcher, 15)
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return statistics.median(delays), p99, len(delays)


async def latency(services: Services, network: DevNetwork, lines: list[str],
                  rate: float) -> tuple[float, float, int]:
    def emit(index: int) -> str | None:
        line = lines[index]
        data = json.loads(line)
        commit = data.get("commit") or {}
        network.jetstream.publish_raw(line)
        if commit.get("collection") == "space.atbb.post" and commit.get("operation") == "create":
            return f"at://{data['did']}/space.atbb.post/{commit['rkey']}"
        return None

    live = LiveIngest(services, url=network.jetstream_url, poll_seconds=0.05)
    return await emission_to_visibility(services, live, emit, len(lines), rate)


async def run(backend: str, events: int, rate: float, seconds: float) -> None:
    forum_did, lines = make_lines(events)
    newest = max(int(line.split('"time_us":', 1)[1].split(",", 1)[0]) for line in lines)
    with tempfile.TemporaryDirectory() as tmp:
        async with DevNetwork() as network:
            for line in lines:
                network.jetstream.publish_raw(line)
            raw = await raw_read_rate(network.jetstream_url, len(lines))
            settings, schema = settings_for(backend, forum_did, Path(tmp))
            services = bootstrap(settings)
            try:
                to_log, to_projections = await throughput(
                    services, network.jetstream_url, newest, len(lines))
            finally:
                services.close()
                if schema:
                    drop_schemas(schema)
        print(f"{backend}: {len(lines)} events; baseline raw websocket read {raw:,.0f}/s; "
              f"into the log {to_log:,.0f}/s; log + projections {to_projections:,.0f}/s")

        live_forum, live_lines = make_lines(int(rate * seconds) + 200)
        async with DevNetwork() as network:
            settings, schema = settings_for(backend, live_forum, Path(tmp))
            services = bootstrap(settings)
            try:
                p50, p99, samples = await latency(services, network, live_lines, rate)
            finally:
                services.close()
                if schema:
                    drop_schemas(schema)
        print(f"{backend}: offered {rate:.0f} events/s for {seconds:.0f}s: emission to "
              f"read-model visibility p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
              f"({samples} posts)")


def firehose_size(events: int) -> ScenarioSize:
    topics = max(10, events // 9)
    return ScenarioSize(members=max(20, events // 100), categories=4, boards=12,
                        topics=topics, replies_per_topic=6.0, days=30.0)


async def raw_firehose_rate(url: str, count: int) -> float:
    started = time.perf_counter()
    received = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(
        url + "?cursor=0", max_msg_size=16 << 20
    ) as ws:
        while received < count:
            message = await ws.receive(timeout=30)
            if message.type == aiohttp.WSMsgType.BINARY:
                received += 1
    return count / (time.perf_counter() - started)


async def firehose_latency(services: Services, network: DevNetwork, seeded: SeededForum,
                           rate: float, seconds: float) -> tuple[float, float, int]:
    pds = network.pds["pds1"]
    board = next(w for w in seeded.writes if "/space.atbb.forum.board/" in w.uri)
    members = [a for a in seeded.accounts if a.did != seeded.forum_did]

    def emit(index: int) -> str:
        member = members[index % len(members)]
        record = {"$type": "space.atbb.post", "title": f"bench {index}",
                  "text": f"post {index}", "createdAt": "2026-04-01T10:00:00.000Z",
                  "board": {"uri": board.uri, "cid": board.cid}}
        return pds.repo(member.did).create("space.atbb.post", record).uri

    live = LiveIngest(services, poll_seconds=0.05)
    return await emission_to_visibility(services, live, emit, int(rate * seconds), rate)


async def run_firehose(backend: str, events: int, rate: float, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with DevNetwork() as network:
            started = time.perf_counter()
            seeded = await network.seed(7, firehose_size(events), via="direct")
            pds = network.pds["pds1"]
            frames = len(pds.firehose.frames())
            newest_seq = pds.firehose.seq
            lines = network.jetstream.history()
            newest_us = max(e.time_us for e in lines)
            print(f"{backend}: firehose forum of {len(seeded.writes)} writes seeded in"
                  f" {time.perf_counter() - started:.1f}s ({frames} frames,"
                  f" {len(lines)} Jetstream lines)")
            raw_fh = await raw_firehose_rate(network.firehose_url(), frames)
            raw_js = await raw_read_rate(network.jetstream_url, len(lines))
            print(f"{backend}: raw websocket read: firehose {raw_fh:,.0f} frames/s,"
                  f" Jetstream {raw_js:,.0f} lines/s")
            runs = [("firehose, decoded without verification (baseline)", "firehose",
                     network.firehose_url(), newest_seq, frames, False),
                    ("Jetstream (the same writes)", "jetstream", network.jetstream_url,
                     newest_us, len(lines), True),
                    ("firehose, verified", "firehose", network.firehose_url(), newest_seq,
                     frames, True)]
            for label, source, url, newest, count, verify in runs:
                settings, schema = settings_for(
                    backend, seeded.forum_did, Path(tmp), ingest_source=source,
                    firehose_url=network.firehose_url(), plc_url=network.plc_url)
                services = bootstrap(settings)
                try:
                    to_log, to_projections = await throughput(services, url, newest, count,
                                                              verify=verify)
                finally:
                    services.close()
                    if schema:
                        drop_schemas(schema)
                print(f"{backend}: {label}: {count} frames; into the log {to_log:,.0f}/s;"
                      f" log + projections {to_projections:,.0f}/s")
            settings, schema = settings_for(
                backend, seeded.forum_did, Path(tmp), ingest_source="firehose",
                firehose_url=network.firehose_url(), plc_url=network.plc_url)
            services = bootstrap(settings)
            try:
                p50, p99, samples = await firehose_latency(services, network, seeded, rate,
                                                           seconds)
            finally:
                services.close()
                if schema:
                    drop_schemas(schema)
            print(f"{backend}: firehose, {rate:.0f} signed writes/s for {seconds:.0f}s:"
                  f" write to read-model visibility p50 {p50 * 1000:.0f} ms,"
                  f" p99 {p99 * 1000:.0f} ms ({samples} posts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--firehose-events", type=int, default=3000,
                        help="writes of the forum seeded into the devnet PDS")
    parser.add_argument("--firehose-rate", type=float, default=100.0,
                        help="signed writes/s offered for the firehose latency")
    parser.add_argument("--sources", default="jetstream,firehose")
    args = parser.parse_args()
    sources = {s.strip() for s in args.sources.split(",")}
    for backend in args.backends.split(","):
        if "jetstream" in sources:
            asyncio.run(run(backend.strip(), args.events, args.rate, args.seconds))
        if "firehose" in sources:
            asyncio.run(run_firehose(backend.strip(), args.firehose_events,
                                     args.firehose_rate, args.seconds))


if __name__ == "__main__":
    main()
