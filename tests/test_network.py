"""The whole devnet on loopback: several PDS hosts, PLC, Jetstream, and `atbb devnet`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from atproto_client import AsyncClient
from atproto_client.exceptions import BadRequestError
from atproto_identity.resolver import AsyncIdResolver

from appview.devnet.network import DevNetwork
from appview.devnet.scenario import ScenarioSize

ROOT = Path(__file__).resolve().parent.parent
TINY = ScenarioSize(members=6, categories=2, boards=3, topics=6, replies_per_topic=2.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_two_pds_hosts_each_serve_their_own_accounts() -> None:
    async with DevNetwork(pds_hosts=2) as network:
        seeded = await network.seed(4, TINY)
        urls = network.pds_urls
        assert set(urls) == {"pds1", "pds2"} and len(set(urls.values())) == 2
        by_host = {name: [a for a in seeded.accounts if a.pds_url == url]
                   for name, url in urls.items()}
        assert all(by_host.values())
        resolver = AsyncIdResolver(plc_url=network.plc_url)
        for account in seeded.accounts:
            data = await resolver.did.resolve_atproto_data(account.did)
            assert (data.pds, data.handle) == (account.pds_url, account.handle)
        here, there = by_host["pds2"][0], by_host["pds1"][0]
        client = AsyncClient(base_url=urls["pds2"])
        try:
            described = await client.com.atproto.repo.describe_repo({"repo": here.did})
            assert described.handle == here.handle
            with pytest.raises(BadRequestError) as missing:
                await client.com.atproto.repo.describe_repo({"repo": there.did})
            assert missing.value.response.content.error == "RepoNotFound"
        finally:
            await client.request.close()


async def test_a_consumer_replays_every_write_of_both_hosts_then_follows_live() -> None:
    async with DevNetwork(pds_hosts=2) as network:
        seeded = await network.seed(4, TINY)
        url = f"{network.jetstream_url}?cursor=0&wantedCollections=space.atbb.*"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            events = []
            expected = len(seeded.writes) + 2 * len(seeded.accounts)
            for _ in range(expected):
                events.append(json.loads((await ws.receive(timeout=5)).data))
            commits = [e for e in events if e["kind"] == "commit"]
            assert len(commits) == len(seeded.writes)
            assert {e["did"] for e in commits} == {a.did for a in seeded.accounts}
            member = seeded.accounts[1]
            network.pds["pds2" if member.pds_url == network.pds_urls["pds2"] else "pds1"] \
                .set_account_status(member.did, "takendown")
            live = json.loads((await ws.receive(timeout=5)).data)
            assert live["kind"] == "account" and live["account"]["status"] == "takendown"


async def test_given_ports_are_used_and_released_on_stop() -> None:
    plc, pds, jetstream, relay = free_port(), free_port(), free_port(), free_port()
    network = DevNetwork(plc_port=plc, pds_ports=[pds], jetstream_port=jetstream,
                         relay_port=relay)
    with pytest.raises(RuntimeError, match="not running"):
        _ = network.plc_url
    async with network:
        assert network.plc_url == f"http://127.0.0.1:{plc}"
        assert network.pds_urls == {"pds1": f"http://127.0.0.1:{pds}"}
        assert network.jetstream_url == f"ws://127.0.0.1:{jetstream}/subscribe"
        assert network.relay_url == f"http://127.0.0.1:{relay}"
        assert network.relay.hosts() == [f"http://127.0.0.1:{pds}"]
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(network.jetstream_url)  # stop must not wait on it
            status = await session.get(f"{network.jetstream_admin_url}/_devnet/status")
            assert (await status.json())["connections"] == 1
            await network.stop()
            assert (await ws.receive(timeout=5)).type in (
                aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED
            )
    for port in (plc, pds, jetstream, relay):
        with socket.socket() as sock:
            # REUSEADDR tolerates closed connections in TIME_WAIT, not a live listener.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()


def test_bad_host_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct"):
        DevNetwork(pds_hosts=["a", "a"])
    with pytest.raises(ValueError, match="PDS ports"):
        DevNetwork(pds_hosts=2, pds_ports=[1])


async def read_until(stream: asyncio.StreamReader, marker: str, lines: list[str]) -> None:
    while True:
        raw = await asyncio.wait_for(stream.readline(), timeout=60)
        if not raw:
            raise AssertionError("devnet exited early:\n" + "".join(lines))
        lines.append(raw.decode())
        if marker in lines[-1]:
            return


async def start_devnet(code: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", code,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def test_run_devnet_prints_credentials_takes_faults_over_http_and_stops_on_sigint() -> None:
    process = await start_devnet(
        "from appview.devnet.network import run_devnet\n"
        "from appview.devnet.scenario import ScenarioSize\n"
        "run_devnet(seed=4, size=ScenarioSize(members=6, categories=2, boards=3, topics=6,"
        " replies_per_topic=2.0))\n"
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        await read_until(process.stdout, "Ctrl-C stops the network.", lines)
        output = "".join(lines)
        assert "FORUM_DID=did:plc:" in output and "PLC directory  http://127.0.0.1:" in output
        relay = next(line.split("=", 1)[1] for line in lines if "RELAY_URL=" in line)
        assert "HANDLE_RESOLVER_DEV_URLS=http://127.0.0.1:" in output
        admin = next(line.split()[-1] for line in lines if "fault admin" in line)
        jetstream = next(line.split()[-1] for line in lines if "Jetstream" in line)
        handles = [line.split()[0] for line in lines if line.startswith("  ") and ".test " in line]
        assert len(handles) == 7
        async with aiohttp.ClientSession() as session:
            # the relay crawled the seeded forum: every member is listed
            async with session.get(
                    f"{relay.strip()}/xrpc/com.atproto.sync.listReposByCollection",
                    params={"collection": "space.atbb.membership"}) as listing:
                assert len((await listing.json())["repos"]) == 6
            armed = await session.post(admin, json={"fault": "disconnect", "after": 3})
            assert armed.status == 200
            async with session.ws_connect(f"{jetstream}?cursor=0") as ws:
                frames = [await ws.receive(timeout=5) for _ in range(4)]
            assert [f.type for f in frames[:3]] == [aiohttp.WSMsgType.TEXT] * 3
            assert frames[3].type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
        rest = (await process.stdout.read()).decode()
        assert "stopping the devnet" in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_empty_devnet_stops_on_sigterm() -> None:
    process = await start_devnet(
        "from appview.devnet.network import run_devnet\nrun_devnet(seed=None, pds_hosts=2)\n"
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        await read_until(process.stdout, "Ctrl-C stops the network.", lines)
        assert sum("PDS pds" in line for line in lines) == 2
        assert not any("FORUM_DID" in line for line in lines)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
