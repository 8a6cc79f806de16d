"""The devnet relay: crawls its PDS hosts over XRPC and answers listReposByCollection for
the whole network, paged; what changes after a crawl shows after the next one."""

from __future__ import annotations

from typing import Any

import aiohttp

from appview.devnet.network import DevNetwork
from events import collections as c


async def listed(session: aiohttp.ClientSession, relay_url: str, collection: str,
                 limit: int = 500) -> list[str]:
    dids: list[str] = []
    cursor = ""
    while True:
        params = {"collection": collection, "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        async with session.get(f"{relay_url}/xrpc/com.atproto.sync.listReposByCollection",
                               params=params) as response:
            assert response.status == 200, await response.text()
            page: dict[str, Any] = await response.json()
        dids += [repo["did"] for repo in page["repos"]]
        if "cursor" not in page:
            return dids
        assert len(page["repos"]) == limit
        cursor = page["cursor"]


async def test_the_relay_lists_the_holders_of_a_collection_across_hosts_paged() -> None:
    async with DevNetwork(pds_hosts=2) as network, aiohttp.ClientSession() as session:
        seeded = await network.seed(seed=4, size="small", via="direct")
        members = {a.did for a in seeded.accounts if a.did != seeded.forum_did}
        on_both = {a.pds_url for a in seeded.accounts}
        assert on_both == set(network.pds_urls.values())
        assert set(await listed(session, network.relay_url, c.MEMBERSHIP)) == members
        assert await listed(session, network.relay_url, c.FORUM) == [seeded.forum_did]
        paged = await listed(session, network.relay_url, c.MEMBERSHIP, limit=3)
        assert paged == sorted(members)  # every holder once, in DID order
        assert await listed(session, network.relay_url, "space.atbb.nothing") == []
        for query, status in (({"collection": c.POST, "limit": "0"}, 400),
                              ({"collection": c.POST, "limit": "x"}, 400), ({}, 400)):
            async with session.get(
                    f"{network.relay_url}/xrpc/com.atproto.sync.listReposByCollection",
                    params=query) as response:
                assert response.status == status
                assert (await response.json())["error"] == "InvalidRequest"


async def test_changes_show_after_the_next_crawl_and_inactive_repos_drop_out() -> None:
    async with DevNetwork() as network, aiohttp.ClientSession() as session:
        seeded = await network.seed(seed=4, size="small", via="direct")
        host = network.pds["pds1"]
        newcomer = host.create_account("newcomer.test", "password-1")
        host.repo(newcomer.did).create(c.MEMBERSHIP, {
            "$type": c.MEMBERSHIP, "createdAt": "2026-03-02T00:00:00.000Z",
            "forum": {"uri": f"at://{seeded.forum_did}/{c.FORUM}/self", "cid": "bafy"}})
        gone = seeded.accounts[1].did
        host.set_account_status(gone, "takendown")
        before = await listed(session, network.relay_url, c.MEMBERSHIP)
        assert newcomer.did not in before and gone in before
        await network.relay.crawl()
        after = await listed(session, network.relay_url, c.MEMBERSHIP)
        assert newcomer.did in after and gone not in after
        assert network.relay.collections_of(newcomer.did) == frozenset({c.MEMBERSHIP})
        async with session.get(f"{network.relay_url}/_devnet/status") as response:
            [status] = (await response.json())["hosts"]
        assert status["url"] == network.pds_urls["pds1"]
        assert status["crawls"] == 2 and status["lastError"] is None


async def test_request_crawl_adds_a_host_and_an_unreachable_one_keeps_its_error() -> None:
    async with DevNetwork(pds_hosts=["one"]) as network, \
            DevNetwork(pds_hosts=["two"]) as other, aiohttp.ClientSession() as session:
        account = other.pds["two"].create_account("far.test", "password-1")
        other.pds["two"].repo(account.did).create(c.POST, {
            "$type": c.POST, "text": "hi", "createdAt": "2026-03-02T00:00:00.000Z"})
        async with session.post(f"{network.relay_url}/xrpc/com.atproto.sync.requestCrawl",
                                json={"hostname": other.pds_urls["two"]}) as response:
            assert response.status == 200
        assert await listed(session, network.relay_url, c.POST) == [account.did]
        async with session.post(f"{network.relay_url}/xrpc/com.atproto.sync.requestCrawl",
                                json={"hostname": "127.0.0.1:9"}) as response:
            assert response.status == 200
        async with session.get(f"{network.relay_url}/_devnet/status") as response:
            hosts = {h["url"]: h for h in (await response.json())["hosts"]}
        assert "listRepos" in hosts["http://127.0.0.1:9"]["lastError"]
        assert hosts[other.pds_urls["two"]]["repos"] == 1
        async with session.post(f"{network.relay_url}/xrpc/com.atproto.sync.requestCrawl",
                                json={}) as response:
            assert response.status == 400
