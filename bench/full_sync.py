"""full_sync throughput, and the per-host request rate under the default limits.

    python -m bench.full_sync [--repos 1000] [--records 50] [--limited-repos 60]
                              [--backend sqlite|postgresql] [--verify-handles]

Starts a devnet with four PDS hosts in a child process of its own (the PDSes a real
full_sync reads are other machines: their work must not share this process's interpreter
lock), creates ``--repos`` member repos of ``--records`` space.atbb.* records each (a
membership and posts written straight into the repos), then on the embedded SQLite
default (or PostgreSQL, in schemas of its own that it drops at the end):

- full_sync with rate limits off (BACKFILL_RATE_LIMIT=0, concurrency 10): records/s and
  repos/s over the whole run, beside a same-run baseline: fetching and parsing every
  repo's CAR alone (what any full_sync must do, without the log or the rebuild);
- full_sync of ``--limited-repos`` fresh repos with the default limits (10 requests/s per
  host): the highest number of requests any host received in any one-second window.

``--verify-handles`` verifies every member's handle against the devnet's PDS hosts
(HANDLE_RESOLVER_DEV_URLS: each host asked in turn, the handle in the Host header);
without it the ``.test`` handles are refused without a request.

Targets (2 cores): >= 5,000 records/s and >= 100 repos/s; the limited run never above the
configured rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from appview.backfill.fetcher import PdsFetcher, snapshot_from_car
from appview.backfill.progress import BackfillRun
from appview.bootstrap import bootstrap
from appview.devnet.network import DevNetwork
from appview.settings import Settings
from bench.ingest import PG_URL, _drop_schemas
from events import collections as c
from events.model import RecordEvent

TARGET_RECORDS = 5_000
TARGET_REPOS = 100

def populate(network: DevNetwork, forum: str, repos: int, records: int,
             prefix: str) -> tuple[list[str], list[RecordEvent]]:
    """Member repos, and the membership events a firehose would have told the log."""
    hosts = list(network.pds.values())
    forum_ref = {"uri": f"at://{forum}/{c.FORUM}/self",
                 "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}
    board_ref = {"uri": f"at://{forum}/{c.BOARD}/3kboard2222222",
                 "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}
    dids, known = [], []
    for index in range(repos):
        host = hosts[index % len(hosts)]
        account = host.create_account(f"{prefix}{index}.test", "password-123")
        repo = host.repo(account.did)
        membership = {"$type": c.MEMBERSHIP, "forum": forum_ref,
                      "createdAt": "2026-11-01T00:00:00.000Z"}
        write = repo.create(c.MEMBERSHIP, membership)
        rkey = write.uri.rsplit("/", 1)[-1]
        stored = repo.get(c.MEMBERSHIP, rkey)
        assert stored is not None
        known.append(RecordEvent("create", account.did, c.MEMBERSHIP, rkey, write.rev,
                                 stored.cid, membership, True, None, "jetstream", None, 0))
        for n in range(records - 1):
            repo.create(c.POST, {"$type": c.POST, "title": f"Topic {n}",
                                 "text": f"Post {n} of member {index}. " * 8,
                                 "forum": forum_ref, "board": board_ref,
                                 "createdAt": "2026-11-02T00:00:00.000Z"})
        dids.append(account.did)
    return dids, known


async def baseline(urls: dict[str, str]) -> float:
    """Seconds to fetch and parse every repo's CAR, 10 at a time (``urls``: DID -> PDS)."""
    gate = asyncio.Semaphore(10)
    async with aiohttp.ClientSession() as session:
        async def one(did: str) -> None:
            async with gate, session.get(
                    f"{urls[did]}/xrpc/com.atproto.sync.getRepo", params={"did": did}) as r:
                snapshot_from_car(did, await r.read())

        started = time.perf_counter()
        await asyncio.gather(*(one(did) for did in urls))
        return time.perf_counter() - started


async def serve_devnet(repos: int, records: int, limited: int) -> None:
    """The child: a devnet with the repos, described in one JSON line on stdout, served
    until stdin closes."""
    async with DevNetwork(pds_hosts=4) as network:
        started = time.perf_counter()
        forum = network.pds["pds1"].create_account("forum.test", "password-123").did
        dids, known = await asyncio.to_thread(populate, network, forum, repos, records, "m")
        _, limited_known = await asyncio.to_thread(populate, network, forum, limited, 5, "l")
        urls = {did: host.url for host in network.pds.values() for did in dids
                if host.account(did) is not None}
        description = {
            "forum": forum, "plc_url": network.plc_url, "urls": urls,
            "seconds": time.perf_counter() - started,
            "known": [_event_json(e) for e in known],
            "limited_known": [_event_json(e) for e in limited_known],
        }
        sys.stdout.write(json.dumps(description) + "\n")
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def _event_json(event: RecordEvent) -> list[object]:
    return [event.did, event.collection, event.rkey, event.rev, event.cid, event.record]


def _event(item: list[object]) -> RecordEvent:
    did, collection, rkey, rev, cid, record = item
    assert isinstance(record, dict)
    return RecordEvent("create", str(did), str(collection), str(rkey), str(rev), str(cid),
                       record, True, None, "jetstream", None, 0)


def max_per_second(fetcher: PdsFetcher) -> int:
    worst = 0
    for limiter in fetcher.limiters.values():
        sent, start = limiter.sent, 0
        for end, moment in enumerate(sent):
            while moment - sent[start] >= 1.0:
                start += 1
            worst = max(worst, end - start + 1)
    return worst


async def run(args: argparse.Namespace, workdir: Path) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.full_sync", "--serve-devnet", "--repos", str(args.repos),
        "--records", str(args.records), "--limited-repos", str(args.limited_repos),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 30)
    assert child.stdin is not None and child.stdout is not None
    try:
        described = json.loads(await child.stdout.readline())
        return await measure(args, workdir, described)
    finally:
        child.stdin.close()
        await child.wait()


async def measure(args: argparse.Namespace, workdir: Path, described: dict[str, Any]) -> int:
    forum, plc_url, urls = described["forum"], described["plc_url"], described["urls"]
    known = [_event(item) for item in described["known"]]
    print(f"created {len(urls):,} repos x {args.records} records in "
          f"{described['seconds']:.0f}s (devnet in its own process)")
    base_seconds = await baseline(urls)

    dev_urls = ",".join(sorted(set(urls.values()))) if args.verify_handles else ""
    settings = _settings(args, workdir / "unlimited", forum=forum, plc_url=plc_url,
                         backfill_rate_limit=0.0, backfill_concurrency=10,
                         handle_resolver_dev_urls=dev_urls)
    services = bootstrap(settings)
    try:
        # the log knows the members (as it would from the firehose): sync them all
        services.event_log.append(known)
        assert services.backfills is not None
        last_repo: list[float] = []

        def note(run: BackfillRun) -> None:
            if run.dids_total and run.dids_processed == run.dids_total and not last_repo:
                last_repo.append(time.perf_counter())

        started = time.perf_counter()
        result = await asyncio.to_thread(services.backfills.run, "full_sync",
                                         on_progress=note)
        seconds = time.perf_counter() - started
        assert services.rebuilds is not None
        rebuilt = services.rebuilds.recent(1)[0]
        assert rebuilt.finished_at is not None
        rebuild_seconds = (datetime.fromisoformat(rebuilt.finished_at)
                           - datetime.fromisoformat(rebuilt.started_at)).total_seconds()
        sync_seconds = last_repo[0] - started
    finally:
        services.close()
    records = result.records_indexed + len(known)  # the memberships were compared too
    failures = 0
    record_rate, repo_rate = records / seconds, result.dids_processed / seconds
    print(f"\nfull_sync on {args.backend}, limits off: {result.dids_processed:,} repos, "
          f"{records:,} records in {seconds:.1f}s ({result.error_count} errors)")
    print(f"  records/s {record_rate:>9,.0f}  target {TARGET_RECORDS:,}  "
          f"{'ok' if record_rate >= TARGET_RECORDS else 'MISSED'}")
    print(f"  repos/s   {repo_rate:>9,.1f}  target {TARGET_REPOS}  "
          f"{'ok' if repo_rate >= TARGET_REPOS else 'MISSED'}")
    print(f"  the repos read in {sync_seconds:.1f}s ({result.dids_processed / sync_seconds:,.1f}"
          f" repos/s); the rebuild ({rebuilt.events_total:,} events) took"
          f" {rebuild_seconds:.0f}s, {seconds - sync_seconds:.1f}s of it after the last"
          " repo")
    print(f"  baseline fetch+parse every CAR: {len(urls) / base_seconds:,.0f} repos/s "
          f"(full_sync/baseline {repo_rate / (len(urls) / base_seconds):.2f})")
    failures += (record_rate < TARGET_RECORDS) + (repo_rate < TARGET_REPOS)

    settings = _settings(args, workdir / "limited", forum=forum, plc_url=plc_url)
    services = bootstrap(settings)
    try:
        services.event_log.append([_event(item) for item in described["limited_known"]])
        assert services.backfills is not None
        await asyncio.to_thread(services.backfills.run, "full_sync")
        fetcher = services.backfills.last_fetcher
        assert fetcher is not None
        worst = max_per_second(fetcher)
    finally:
        services.close()
    rate = settings.backfill_rate_limit
    print(f"\nfull_sync, default limits ({rate:.0f} requests/s per host): "
          f"{fetcher.requests} requests to {len(fetcher.limiters)} hosts, at most "
          f"{worst} to one host in any second  {'ok' if worst <= rate else 'EXCEEDED'}")
    failures += worst > rate
    return 1 if failures else 0


def _settings(args: argparse.Namespace, data_dir: Path, *, forum: str, plc_url: str,
              **limits: Any) -> Settings:
    settings = Settings(data_dir=data_dir, forum_did=forum, plc_url=plc_url, **limits)
    if args.backend == "postgresql":
        settings = settings.with_overrides(database_url=PG_URL,
                                           database_schema=f"{args.schema}_{data_dir.name}")
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--limited-repos", type=int, default=60)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--verify-handles", action="store_true")
    parser.add_argument("--serve-devnet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_devnet:
        asyncio.run(serve_devnet(args.repos, args.records, args.limited_repos))
        return 0
    args.schema = f"bench_sync_{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory(prefix="atbb-bench-sync-") as tmp:
            return asyncio.run(run(args, Path(tmp)))
    finally:
        if args.backend == "postgresql":
            _drop_schemas(args.schema)


if __name__ == "__main__":
    sys.exit(main())
