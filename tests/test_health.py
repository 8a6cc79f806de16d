"""`GET /api/health`: the public answer names what fails, never where the insides are
(URLs, hosts, addresses and paths are redacted from its error texts; the operator's page
keeps them); a process that ingests, one that follows another process's ingest, and one
whose projection cannot write, on both backends."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from appview.bootstrap import bootstrap
from appview.devnet.network import DevNetwork
from appview.leader import LeaderLock
from appview.live import LiveIngest, ProjectorBackoff
from tests.admin_support import admin_app
from tests.conftest import Backend
from tests.test_consumer import FAST_RETRY, scenario_lines, settings_for, wait_for
from tests.test_firehose import firehose_settings
from tests.test_live import _refuse_writes
from web import urls
from web.api.health import public_error
from web.app import create_app

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
HOSTS = st.builds(lambda labels, tld: ".".join([*labels, tld]),
                  st.lists(_LABEL, min_size=1, max_size=3),
                  st.from_regex(r"[a-z]{2,6}", fullmatch=True))
ADDRESSES = st.one_of(st.ip_addresses(v=4).map(str),
                      st.ip_addresses(v=6).filter(lambda a: int(a) > 1).map(str))
PORTS = st.integers(1, 65535)
SCHEMES = st.sampled_from(["ws", "wss", "http", "https", "postgresql", "sqlite"])
AROUND = st.sampled_from([("", ""), (" ", " "), ("'", "'"), ('"', '"'), ("(", ")"),
                          ("host ", " ssl:default"), ("url='", "'"), ("[", "]:443")])


def _shown(secret: str, text: str) -> bool:
    return secret.lower() in text.lower()


@given(HOSTS, PORTS, AROUND)
def test_host_names_and_ports_are_redacted(host: str, port: int,
                                           around: tuple[str, str]) -> None:
    for secret in (host, f"{host}:{port}"):
        text = public_error(f"ClientConnectorError: Cannot connect to {around[0]}{secret}"
                            f"{around[1]} [Name or service not known]")
        assert text is not None and not _shown(host, text), text
        assert text.startswith("ClientConnectorError: Cannot connect to")


@given(ADDRESSES, PORTS, AROUND)
def test_addresses_are_redacted(address: str, port: int, around: tuple[str, str]) -> None:
    bracketed = f"[{address}]" if ":" in address else address
    for secret in (address, f"{bracketed}:{port}"):
        text = public_error(f"OSError: Connect call failed {around[0]}{secret}{around[1]}")
        assert text is not None and not _shown(address, text), text
        expanded = ipaddress.ip_address(address).exploded
        assert not _shown(expanded, text)


@given(SCHEMES, HOSTS, PORTS, st.from_regex(r"(/[\w.?=&*-]{0,12}){0,3}", fullmatch=True),
       AROUND)
def test_urls_are_redacted(scheme: str, host: str, port: int, path: str,
                           around: tuple[str, str]) -> None:
    url = f"{scheme}://user:pw@{host}:{port}{path}"
    text = public_error(f"WSServerHandshakeError: 502, message='Invalid response status', "
                        f"url={around[0]}{url}{around[1]}")
    assert text is not None and not _shown(host, text) and "pw" not in text, text
    assert "Invalid response status" in text  # what went wrong stays


def test_what_went_wrong_stays() -> None:
    assert public_error(None) is None
    for plain in ("ServerDisconnectedError: Server disconnected", "TimeoutError: ",
                  "no frame for 30 s", "database: OperationalError: disk I/O error",
                  "WSServerHandshakeError: 502, message='Invalid response status'"):
        assert public_error(plain) == plain
    assert public_error("database: unable to open database file /var/lib/atbb/x.sqlite3") \
        == "database: unable to open database file <path>"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_health_hides_the_jetstream_url_the_admin_page_shows_it(
        backend: Backend) -> None:
    jetstream = f"ws://127.0.0.1:{_closed_port()}/subscribe"
    async with admin_app(backend) as app:
        live = LiveIngest(app.services, jetstream_url=jetstream)
        async with TestClient(TestServer(create_app(app.services, live=live))) as client:
            firehose: dict[str, object] = {}
            for _ in range(100):
                health = await (await client.get(urls.api_health())).json()
                firehose = health["services"]["firehose"]
                if firehose["last_error"]:
                    break
                await asyncio.sleep(0.1)
            error = str(firehose["last_error"])
            assert "ClientConnectorError" in error or "Error" in error, firehose
            assert "127.0.0.1" not in error and jetstream not in error, error
            admin = await client.get(urls.admin(), headers=app.bearer(app.operator))
            assert "127.0.0.1" in await admin.text()  # the operator sees where


async def _health(client: TestClient[Any, Any]) -> Any:
    response = await client.get("/api/health")
    assert response.status == 200
    return await response.json()


async def test_a_follower_says_another_process_ingests_and_takes_over_when_it_goes(
        backend: Backend) -> None:
    forum_did, _ = scenario_lines()
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "follow", forum_did))
        other = LeaderLock(services.settings)  # `atbb ingest` in another process
        assert other.acquire()
        try:
            live = LiveIngest(services, jetstream_url=network.jetstream_url,
                              policy=FAST_RETRY, rng=random.Random(1),
                              leader=LeaderLock(services.settings, poll_seconds=0.05))
            async with TestClient(TestServer(create_app(services, live=live))) as client:
                await wait_for(lambda: live.role == "follower")
                health = await _health(client)
                assert health["status"] == "healthy"
                assert health["services"]["firehose"]["status"] == "follower"
                await asyncio.to_thread(other.release)
                await wait_for(lambda: live.consumer.status.connected, timeout=10)
                health = await _health(client)
                firehose = health["services"]["firehose"]
                assert (firehose["status"], firehose["role"]) == ("connected", "leader")
        finally:
            other.release()
            services.close()


async def test_a_projection_that_cannot_write_is_named_in_health(backend: Backend) -> None:
    forum_did, lines = scenario_lines()
    async with DevNetwork() as network:
        services = bootstrap(settings_for(backend, "stuck", forum_did))
        try:
            _refuse_writes(services, backend, on=True)
            live = LiveIngest(services, jetstream_url=network.jetstream_url,
                              initial_cursor=0, poll_seconds=0.05,
                              projector_backoff=ProjectorBackoff(0.05, 0.2))
            async with TestClient(TestServer(create_app(services, live=live))) as client:
                for line in lines:
                    network.jetstream.publish_raw(line)
                await wait_for(lambda: live.projector.failures_in_a_row >= 2)
                health = await _health(client)
                assert health["status"] == "degraded"
                projector = health["services"]["projector"]
                assert projector["status"] == "failing"
                assert "disk I/O error" in projector["error"]
                assert projector["failures_in_a_row"] >= 2
                assert projector["retry_in_seconds"] > 0
                assert any(p["lag_events"] > 0
                           for p in health["services"]["projections"].values())
        finally:
            services.close()


async def test_a_firehose_leader_reports_its_checks(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        settings = firehose_settings(backend, "health", network, seeded.forum_did)
        services = bootstrap(settings)
        try:
            live = LiveIngest(services, initial_cursor=0, poll_seconds=0.05)
            async with TestClient(TestServer(create_app(services, live=live))) as client:
                await wait_for(lambda: (live.consumer.status.cursor or 0) >= pds.firehose.seq)
                firehose = (await _health(client))["services"]["firehose"]
                assert firehose["source"] == "firehose"
                assert firehose["cursor"] == str(pds.firehose.seq)
                checks = firehose["verification"]
                assert checks["verified"] == checks["commits"] > 400
                assert (checks["rejected"], checks["repo_resyncs"]) == (0, 0)
        finally:
            services.close()
