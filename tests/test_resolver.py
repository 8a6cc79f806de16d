"""DID -> PDS resolution: the directory asked once, the cache that outlives the process,
prefetching a run's DIDs, and yesterday's answer when the directory is down."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest

from appview.backfill.resolver import DidNotResolved, DidResolver
from appview.bootstrap import bootstrap
from appview.devnet.network import DevNetwork
from appview.settings import Settings
from appview.side_db import side_transaction
from tests.conftest import Backend
from tests.test_consumer import settings_for

NOWHERE = "http://127.0.0.1:9"  # the discard port: connection refused


def resolver_settings(backend: Backend, plc_url: str) -> Settings:
    """The event-log database of a test of its own (the cache lives there)."""
    settings = dataclasses.replace(settings_for(backend, "resolver", "did:plc:forum"),
                                   plc_url=plc_url)
    bootstrap(settings).close()
    return settings


async def resolved_once(backend: Backend, network: DevNetwork,
                        handle: str) -> tuple[Settings, str, str]:
    """An account on pds1, resolved once through the directory: (settings, did, pds)."""
    host = network.pds["pds1"]
    account = host.create_account(handle, "password-123")
    settings = resolver_settings(backend, network.plc_url)
    async with aiohttp.ClientSession() as session:
        resolver = DidResolver(settings, session)
        assert await resolver.pds(account.did) == host.url
        assert resolver.handle(account.did) == handle
        await resolver.flush()
    return settings, account.did, host.url


async def test_a_did_resolves_to_its_pds_and_is_remembered_across_resolvers(
        backend: Backend) -> None:
    async with DevNetwork() as network:
        settings, did, pds = await resolved_once(backend, network, "alice.test")
    # a later run, the directory unreachable: the day-old cache still answers, prefetched
    offline = dataclasses.replace(settings, plc_url=NOWHERE)
    async with aiohttp.ClientSession() as session:
        later = DidResolver(offline, session)
        await asyncio.to_thread(later.prefetch, [did, "did:plc:unknownunknown22"])
        assert await later.pds(did) == pds
        assert later.handle(did) == "alice.test"
        with pytest.raises(DidNotResolved):
            await later.pds("did:plc:unknownunknown22")


async def test_a_stale_entry_is_refreshed_and_answers_only_when_the_directory_fails(
        backend: Backend) -> None:
    async with DevNetwork() as network:
        settings, did, pds = await resolved_once(backend, network, "bob.test")
        with side_transaction(settings) as execute:
            execute("UPDATE did_cache SET pds = ?, fetched_at = 0", ("http://old.example",))
        async with aiohttp.ClientSession() as session:
            offline = DidResolver(dataclasses.replace(settings, plc_url=NOWHERE), session)
            assert await offline.pds(did) == "http://old.example"
            online = DidResolver(settings, session)
            await asyncio.to_thread(online.prefetch, [did])
            assert await online.pds(did) == pds  # asked again, and kept
            await online.flush()
        with side_transaction(settings) as execute:
            rows = execute("SELECT pds FROM did_cache WHERE did = ?", (did,))
        assert rows == [(pds,)]


async def test_answers_reach_the_cache_when_flushed_in_one_group(backend: Backend) -> None:
    async with DevNetwork() as network:
        host = network.pds["pds1"]
        dids = [host.create_account(f"m{i}.test", "password-123").did for i in range(3)]
        settings = resolver_settings(backend, network.plc_url)
        async with aiohttp.ClientSession() as session:
            resolver = DidResolver(settings, session)
            for did in dids:
                assert await resolver.pds(did) == host.url
            with side_transaction(settings) as execute:
                assert execute("SELECT count(*) FROM did_cache", ()) == [(0,)]
            await resolver.flush()
            await resolver.flush()  # nothing left: writes nothing twice
    with side_transaction(settings) as execute:
        rows = execute("SELECT did, pds FROM did_cache ORDER BY did", ())
    assert rows == sorted((did, host.url) for did in dids)
