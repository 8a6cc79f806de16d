"""Seeding a running devnet through the SDK's XRPC client."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from atproto_client import AsyncClient

from appview.devnet.clock import DevClock
from appview.devnet.network import DevNetwork
from appview.devnet.scenario import ScenarioSize, build_scenario
from appview.devnet.seed import SeedError, seed_forum

TINY = ScenarioSize(members=6, categories=2, boards=3, topics=6, replies_per_topic=2.0)


async def seeded_network(size=TINY, seed: int = 8):
    network = DevNetwork(pds_clock=DevClock())
    await network.start()
    return network, await network.seed(seed, size)


async def test_jetstream_events_carry_each_writes_real_cid_and_rev() -> None:
    network, seeded = await seeded_network("small", seed=1)
    try:
        commits = {}
        for event in network.jetstream.history():
            data = json.loads(event.line)
            if data["kind"] == "commit":
                commit = data["commit"]
                uri = f"at://{data['did']}/{commit['collection']}/{commit['rkey']}"
                commits[uri, commit["rev"]] = (commit["operation"], commit.get("cid"))
        assert len(seeded.writes) == len(commits) > 400
        for write in seeded.writes:
            operation, cid = commits[write.uri, write.rev]
            assert cid == write.cid
            assert operation == {"create": "create", "put": "update", "delete": "delete"}[
                write.op
            ]
        forum = seeded.account("forum")
        client = AsyncClient(base_url=forum.pds_url)
        try:
            boards = await client.com.atproto.repo.list_records(
                {"repo": forum.did, "collection": "space.atbb.forum.board", "limit": 100}
            )
            assert len(boards.records) == seeded.boards == 6
            latest = {w.uri: w.cid for w in seeded.writes}
            assert all(record.cid == latest[record.uri] for record in boards.records)
        finally:
            await client.request.close()
        assert seeded.categories == 3 and seeded.topics == 40
        assert sum(seeded.visible_replies().values()) > 150
    finally:
        await network.stop()


async def test_same_seed_same_records_cids_and_revs_on_a_fresh_network() -> None:
    first, one = await seeded_network()
    second, two = await seeded_network()
    try:
        assert one.writes == two.writes
        assert [(a.did, a.app_password) for a in one.accounts] == [
            (a.did, a.app_password) for a in two.accounts
        ]
        did = one.forum_did
        assert first.pds["pds1"].repo(did).export_car() == second.pds["pds1"].repo(
            did
        ).export_car()
    finally:
        await first.stop()
        await second.stop()
    _, other = await seeded_network(seed=9)
    await _.stop()
    assert [w.cid for w in other.writes] != [w.cid for w in one.writes]


async def test_the_pds_holds_what_the_summary_expects() -> None:
    network, seeded = await seeded_network()
    try:
        host = network.pds["pds1"]
        repo_posts: Counter[str] = Counter()
        for account in seeded.accounts:
            for record in host.repo(account.did).list_records(
                "space.atbb.post", limit=1000, cursor=None, reverse=False
            ):
                repo_posts["reply" if "reply" in record.value else "topic"] += 1
        expected = seeded.expected
        assert repo_posts["topic"] == len(expected.topics)
        assert repo_posts["reply"] == sum(t.replies for t in expected.topics)
        assert repo_posts["topic"] + repo_posts["reply"] == expected.posts
    finally:
        await network.stop()


async def test_concurrent_seeding_writes_the_same_records() -> None:
    network = DevNetwork()
    await network.start()
    try:
        seeded = await network.seed(8, TINY, concurrency=4)
        _, sequential = await seeded_network()
        await _.stop()
        assert sorted((w.uri, w.op, w.cid) for w in seeded.writes) == sorted(
            (w.uri, w.op, w.cid) for w in sequential.writes
        )
    finally:
        await network.stop()


async def test_direct_repo_writes_equal_the_xrpc_ones() -> None:
    network = DevNetwork()
    await network.start()
    try:
        direct = await network.seed(8, TINY, via="direct")
        _, xrpc = await seeded_network()
        await _.stop()
        assert direct.writes == xrpc.writes
        assert len(network.jetstream.history()) == 2 * len(direct.accounts) + len(direct.writes)
    finally:
        await network.stop()


async def test_refusals_say_why() -> None:
    network = DevNetwork(pds_hosts=["elsewhere"])
    await network.start()
    try:
        with pytest.raises(SeedError, match="does not run"):
            await seed_forum(build_scenario(1, TINY), network.pds)
        with pytest.raises(SeedError, match="real_dids=False"):
            await seed_forum(build_scenario(1, TINY, real_dids=False), network.pds)
        with pytest.raises(ValueError, match="concurrency"):
            await seed_forum(build_scenario(1, TINY), network.pds, concurrency=0)
        with pytest.raises(ValueError, match="via"):
            await seed_forum(
                build_scenario(1, TINY), network.pds, via="carrier-pigeon"  # type: ignore[arg-type]
            )
    finally:
        await network.stop()
