"""Live ingest end to end: a devnet Jetstream, the consumer, the log and the projections.

    python -m bench.live_ingest [--events 20000] [--backends sqlite,postgresql] [--rate 500]

Per backend, in the same run:

- baseline: a bare websocket client reading the same frames without appending (the
  ceiling any consumer can reach on this machine);
- throughput: the whole pre-generated stream published at once, read as fast as the
  consumer goes: events/s into the log (stored cursor reaches the newest event) and into
  the projections (every projection at the head);
- latency: lines offered at ``--rate`` events/s; for each new post, the delay from its
  publication to its row being readable in the read models (p50, p99).

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
from pathlib import Path

import aiohttp

from appview.bootstrap import Services, bootstrap
from appview.devnet.network import DevNetwork
from appview.devnet.scenario import ScenarioSize, build_scenario, scenario_to_jetstream_lines
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


def settings_for(backend: str, forum_did: str, tmp: Path) -> tuple[Settings, str | None]:
    if backend == "sqlite":
        return Settings(data_dir=tmp / uuid.uuid4().hex, forum_did=forum_did), None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    return Settings(data_dir=tmp / schema, database_url=PG_URL, database_schema=schema,
                    forum_did=forum_did), schema


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


async def throughput(services: Services, url: str, newest: int, count: int) -> tuple[float, float]:
    live = LiveIngest(services, jetstream_url=url, initial_cursor=0, poll_seconds=0.05)
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


async def latency(services: Services, network: DevNetwork, lines: list[str],
                  rate: float) -> tuple[float, float, int]:
    live = LiveIngest(services, jetstream_url=network.jetstream_url, poll_seconds=0.05)
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
    for index, line in enumerate(lines):
        data = json.loads(line)
        commit = data.get("commit") or {}
        network.jetstream.publish_raw(line)
        if commit.get("collection") == "space.atbb.post" and commit.get("operation") == "create":
            emitted[f"at://{data['did']}/space.atbb.post/{commit['rkey']}"] = time.perf_counter()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        asyncio.run(run(backend.strip(), args.events, args.rate, args.seconds))


if __name__ == "__main__":
    main()
