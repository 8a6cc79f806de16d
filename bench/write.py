"""Members writing through the appview: submit → the author sees it, → another reader sees it.

    python -m bench.write [--members 20] [--seconds 60] [--backends sqlite,postgresql]

Per backend: a development network (PLC, a PDS, Jetstream) in this process; the real
`atbb serve` (live ingest from the network's Jetstream) in a process of its own; the
Forum account writes its forum (a board, the Member role) to its repo, which reaches the
appview through Jetstream; ``--members`` members sign in at the appview with app
passwords (cookie sessions, CSRF tokens: the web's own path) and, for ``--seconds``,
each writes a topic, then replies to the topics written so far (one topic in five),
pausing ``--think`` seconds on average between writes (0: as fast as it can, which
measures the saturated process rather than a write).

For every write:

- baseline: the bare ``com.atproto.repo.createRecord`` round trip to the same PDS (the
  member's own app-password session, a record of another collection), measured in the
  same loop just before the write;
- author: from submitting ``POST /api/topics`` or ``/api/posts`` to the author's next
  page (the post's permalink, followed to its topic page) holding the post;
- another reader: from the same submit to an anonymous reader's page holding it.

Targets: the author's p99 at most 50 ms above the baseline's p99; another reader's p99
within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from appview.devnet.network import DevNetwork
from appview.devnet.pds import Account, PdsHost
from bench.ingest import PG_URL, _drop_schemas
from bench.web import free_port, wait_up
from events import collections as c
from events.records import (
    StrongRef,
    board_record,
    category_record,
    forum_record,
    role_record,
)
from projections.ids import post_id, record_id

AUTHOR_OVER_BASELINE_MS = 50.0
READER_P99_MS = 1000.0
POSTING = ("space.atbb.permission.createTopics", "space.atbb.permission.createPosts",
           "space.atbb.permission.react")
CREATED = "2026-01-01T00:00:00.000Z"


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Results:
    baseline: list[float] = field(default_factory=list)
    submit: list[float] = field(default_factory=list)  # the POST alone
    author: list[float] = field(default_factory=list)
    reader: list[float] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)  # at-uris
    errors: list[str] = field(default_factory=list)


async def xrpc(http: aiohttp.ClientSession, pds: str, nsid: str, body: dict[str, Any],
               token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{pds}/xrpc/{nsid}", json=body, headers=headers) as answer:
        data: dict[str, Any] = await answer.json()
        if answer.status != 200:
            raise RuntimeError(f"{nsid}: {answer.status} {data}")
        return data


async def write_forum(http: aiohttp.ClientSession, pds: PdsHost, owner: Account) -> str:
    """The forum, a category, a board and the Member role, written by the Forum account
    straight to its PDS (the appview reads them from Jetstream); the board's at-uri."""
    session = await xrpc(http, pds.url, "com.atproto.server.createSession",
                         {"identifier": owner.handle, "password": owner.app_password})
    token = session["accessJwt"]

    async def create(collection: str, record: dict[str, Any], rkey: str | None = None,
                     ) -> StrongRef:
        body = {"repo": owner.did, "collection": collection, "record": record}
        if rkey:
            body["rkey"] = rkey
        made = await xrpc(http, pds.url, "com.atproto.repo.createRecord", body, token)
        return StrongRef(made["uri"], made["cid"])

    await create(c.FORUM, forum_record("Bench forum", created_at=CREATED), "self")
    category = await create(c.CATEGORY, category_record("General", created_at=CREATED))
    board = await create(c.BOARD, board_record("Talk", category, created_at=CREATED))
    await create(c.ROLE, role_record("Member", POSTING, 30, created_at=CREATED))
    return board.uri


async def sign_in(base: str, member: Account) -> tuple[aiohttp.ClientSession, str]:
    """A browser-like client signed in at the appview with the member's app password,
    and its CSRF token."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    for _attempt in range(50):
        async with http.get(f"{base}/signin") as page:
            token = _csrf(await page.text())
        async with http.post(f"{base}/signin/password", allow_redirects=False, data={
                "identifier": member.handle, "password": member.app_password,
                "csrf_token": token}) as answer:
            if answer.status == 303:
                break
        await asyncio.sleep(0.2)  # the handle may not resolve yet
    else:
        raise RuntimeError(f"{member.handle} could not sign in")
    async with http.get(f"{base}/signin") as page:
        return http, _csrf(await page.text())


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


async def shows(http: aiohttp.ClientSession, base: str, pid: str) -> bool:
    async with http.get(f"{base}/p/{pid}") as page:
        return page.status == 200 and f'id="p-{pid}"' in await page.text()


async def until_shown(http: aiohttp.ClientSession, base: str, pid: str, started: float,
                      pause: float) -> float:
    deadline = started + 10
    while time.perf_counter() < deadline:
        if await shows(http, base, pid):
            return (time.perf_counter() - started) * 1000
        await asyncio.sleep(pause)
    raise RuntimeError(f"{pid} not shown within 10 s")


async def member_loop(base: str, pds: PdsHost, member: Account, board_uri: str,
                      until: float, results: Results, rng: random.Random,
                      think: float) -> None:
    http, csrf = await sign_in(base, member)
    reader = aiohttp.ClientSession()
    direct = aiohttp.ClientSession()
    try:
        session = await xrpc(direct, pds.url, "com.atproto.server.createSession",
                             {"identifier": member.handle, "password": member.app_password})
        token = session["accessJwt"]
        written = 0
        while time.perf_counter() < until:
            started = time.perf_counter()
            await xrpc(direct, pds.url, "com.atproto.repo.createRecord", {
                "repo": member.did, "collection": "app.bench.ping",
                "record": {"$type": "app.bench.ping", "n": written}}, token)
            results.baseline.append((time.perf_counter() - started) * 1000)
            if written == 0 or not results.topics or rng.random() < 0.2:
                path, body = "/api/topics", {"title": f"{member.handle} #{written}",
                                             "text": "A topic from the bench.",
                                             "boardUri": board_uri}
            else:
                root = rng.choice(results.topics)
                path, body = "/api/posts", {"text": f"Reply {written} by {member.handle}.",
                                            "rootPostId": root, "parentPostId": root}
            started = time.perf_counter()
            async with http.post(base + path, json=body,
                                 headers={"X-CSRF-Token": csrf}) as answer:
                made = await answer.json()
                if answer.status != 201:
                    results.errors.append(f"{answer.status} {made}")
                    continue
            results.submit.append((time.perf_counter() - started) * 1000)
            pid = post_id(made["uri"])
            other = asyncio.create_task(until_shown(reader, base, pid, started, 0.01))
            results.author.append(await until_shown(http, base, pid, started, 0.005))
            results.reader.append(await other)
            if path == "/api/topics":
                results.topics.append(made["uri"])
            written += 1
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))
    finally:
        for client in (http, reader, direct):
            await client.close()


async def run_backend(backend: str, args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-write-"))
    schema = f"bench_{uuid.uuid4().hex[:12]}" if backend == "postgresql" else None
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with DevNetwork() as network, aiohttp.ClientSession() as http:
        pds = network.pds["pds1"]
        owner = pds.create_account("forum.pds1.test", "forum-pw")
        env = {**os.environ, "DATA_DIR": str(tmp / "data"), "FORUM_DID": owner.did,
               "JETSTREAM_URL": network.jetstream_url, "PLC_URL": network.plc_url,
               "HANDLE_RESOLVER_DEV_URLS": pds.url, "WRITES_PER_MINUTE": "1000000",
               "LOG_LEVEL": "WARNING", "PORT": str(port)}
        if schema is not None:
            env.update(DATABASE_URL=PG_URL, DATABASE_SCHEMA=schema)
        else:
            env.pop("DATABASE_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "web", "serve", "--no-backfill",
                                   "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_up(base + "/api/health")
            await asyncio.sleep(1.0)  # the consumer connects to Jetstream
            board_uri = await write_forum(http, pds, owner)
            board_path = f"/api/boards/{record_id(board_uri)}"
            for _ in range(300):
                async with http.get(base + board_path) as answer:
                    if answer.status == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the board never reached the appview")
            members = [pds.create_account(f"member{n}.pds1.test", f"member{n}-pw")
                       for n in range(args.members)]
            results = Results()
            rng = random.Random(7)
            until = time.perf_counter() + args.seconds
            await asyncio.gather(*(member_loop(base, pds, member, board_uri, until,
                                               results, random.Random(rng.random()),
                                               args.think)
                                   for member in members))
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)
            if schema is not None:
                _drop_schemas(schema)
    return report(backend, args, results)


def report(backend: str, args: argparse.Namespace, results: Results) -> int:
    writes = len(results.author)
    b50, b99 = pct(results.baseline, 50), pct(results.baseline, 99)
    a50, a99 = pct(results.author, 50), pct(results.author, 99)
    r50, r99 = pct(results.reader, 50), pct(results.reader, 99)
    author_ok = a99 - b99 <= AUTHOR_OVER_BASELINE_MS
    reader_ok = r99 <= READER_P99_MS
    print(f"{backend}: {args.members} members, {args.seconds:g} s, think {args.think:g} s,"
          f" {writes} writes"
          f" ({writes / args.seconds:.1f}/s), {len(results.errors)} errors")
    print(f"  baseline createRecord        p50 {b50:7.1f} ms  p99 {b99:7.1f} ms")
    s50, s99 = pct(results.submit, 50), pct(results.submit, 99)
    print(f"  the POST alone (write, log)  p50 {s50:7.1f} ms  p99 {s99:7.1f} ms")
    print(f"  submit → author sees it      p50 {a50:7.1f} ms  p99 {a99:7.1f} ms"
          f"  (+{a99 - b99:.1f} ms over the baseline's p99) "
          f"{'ok' if author_ok else 'MISSED'}")
    print(f"  submit → another reader      p50 {r50:7.1f} ms  p99 {r99:7.1f} ms"
          f"  {'ok' if reader_ok else 'MISSED'}")
    for error in results.errors[:5]:
        print(f"  error: {error}")
    return int(not author_ok) + int(not reader_ok) + int(bool(results.errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds each member pauses between writes (on average)")
    args = parser.parse_args(argv)
    failures = 0
    for backend in args.backends.split(","):
        failures += asyncio.run(run_backend(backend.strip(), args))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
