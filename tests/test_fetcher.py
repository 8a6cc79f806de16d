"""Reading repos from a PDS: the CAR walked through its MST, the listRecords fallback,
per-host spacing, Retry-After, and the errors that end a repo."""

from __future__ import annotations

import time

import aiohttp
import pytest

from appview.backfill.fetcher import (
    FetchError,
    PdsFetcher,
    RepoUnavailable,
    snapshot_from_car,
)
from appview.devnet.network import DevNetwork
from appview.repos.car import CarError
from tests.conftest import CAPTURE


def test_the_real_captured_repo_has_no_forum_records_and_reads_cleanly() -> None:
    data = (CAPTURE / "repo.car").read_bytes()
    commit = (CAPTURE / "car_expected_commit.txt").read_text()
    did = next(line.split(": ", 1)[1] for line in commit.splitlines()
               if line.startswith("DID:"))
    snapshot = snapshot_from_car(did, data)
    assert snapshot.records == [] and snapshot.rev == "3migo7fijwi2k"
    with pytest.raises(CarError, match="commit"):
        snapshot_from_car("did:plc:someoneelse22222222222", data)
    with pytest.raises(CarError):
        snapshot_from_car(did, data[:200])


async def test_a_seeded_repo_reads_the_same_by_car_and_by_listing() -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=2, size="small", via="direct")
        forum = seeded.accounts[0]
        async with aiohttp.ClientSession() as session:
            fetcher = PdsFetcher(session, rate=0)
            by_car = await fetcher.fetch_repo(forum.pds_url, forum.did)
            assert by_car.via == "getRepo" and by_car.records
            assert all(r.collection.startswith("space.atbb.") for r in by_car.records)
            # forum-owned collections come first
            assert by_car.records[0].collection.startswith("space.atbb.forum.")
            for host in network.pds.values():
                host.serve_get_repo = False
            listed = await fetcher.fetch_repo(forum.pds_url, forum.did)
            assert listed.via.startswith("listRecords") and "501" in listed.via
            key = lambda r: (r.collection, r.rkey)  # noqa: E731
            assert sorted(listed.records, key=key) == sorted(by_car.records, key=key)
            assert listed.rev == by_car.rev


async def test_a_taken_down_repo_is_unavailable() -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=2, size="small", via="direct")
        member = seeded.accounts[1]
        host = next(h for h in network.pds.values() if h.account(member.did) is not None)
        host.set_account_status(member.did, "takendown")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(RepoUnavailable, match="RepoTakendown"):
                await PdsFetcher(session, rate=0).fetch_repo(member.pds_url, member.did)


async def test_requests_to_one_host_are_spaced_by_the_rate() -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(seed=2, size="small", via="direct")
        async with aiohttp.ClientSession() as session:
            fetcher = PdsFetcher(session, rate=20)
            for account in seeded.accounts[:6]:
                await fetcher.fetch_repo(account.pds_url, account.did)
            [limiter] = fetcher.limiters.values()
            gaps = [b - a for a, b in zip(limiter.sent, limiter.sent[1:], strict=False)]
            assert len(gaps) >= 5 and min(gaps) >= 1 / 20 - 0.002


async def test_ratelimit_remaining_zero_pauses_before_any_429() -> None:
    async with DevNetwork(rate_limit=3, rate_window_s=1.0) as network:
        seeded = await network.seed(seed=2, size="small", via="direct", crawl_relay=False)
        async with aiohttp.ClientSession() as session:
            fetcher = PdsFetcher(session, rate=0)
            started = time.monotonic()
            for account in seeded.accounts[:5]:
                snapshot = await fetcher.fetch_repo(account.pds_url, account.did)
                assert snapshot.did == account.did
            assert fetcher.rate_limited == 0  # it stopped when told none were left
            assert time.monotonic() - started >= 0.5


async def test_a_429_is_waited_out_with_retry_after_and_then_succeeds() -> None:
    async with DevNetwork(rate_limit=2, rate_window_s=1.0) as network:
        seeded = await network.seed(seed=2, size="small", via="direct", crawl_relay=False)
        account = seeded.accounts[0]
        url = f"{account.pds_url}/xrpc/com.atproto.sync.getLatestCommit"
        async with aiohttp.ClientSession() as session:
            for _ in range(3):  # someone else used up the window
                async with session.get(url, params={"did": account.did}):
                    pass
            fetcher = PdsFetcher(session, rate=0)
            started = time.monotonic()
            snapshot = await fetcher.fetch_repo(account.pds_url, account.did)
            assert snapshot.records and fetcher.rate_limited >= 1
            assert time.monotonic() - started >= 0.3


async def test_an_unreachable_host_fails_after_its_retries() -> None:
    async with aiohttp.ClientSession() as session:
        fetcher = PdsFetcher(session, rate=0, attempts=2)
        with pytest.raises(FetchError, match="after 2 attempts"):
            await fetcher.fetch_repo("http://127.0.0.1:9", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
