"""Handles and DIDs as the sign-in sees them: handles through the one handle resolver
(on a development network its HANDLE_RESOLVER_DEV_URLS), DIDs cached or fresh."""

from __future__ import annotations

import aiohttp
import pytest

from appview.auth.errors import IdentityError
from appview.auth.identity import NetworkIdentity, is_did, normalise_handle
from appview.handles import HandleResolver
from tests.auth_support import auth_settings, start_net
from tests.conftest import Backend


def test_inputs_are_recognised() -> None:
    assert normalise_handle(" @Alice.Example.COM ") == "alice.example.com"
    assert normalise_handle("not a handle") is None and normalise_handle("nodot") is None
    assert is_did("did:plc:" + "a" * 24) and is_did("did:web:forum.example")
    assert not is_did("did:plc:short") and not is_did("did:key:z6Mk")


async def test_handles_resolve_through_the_services_and_dids_fresh_or_cached(
        backend: Backend, aiohttp_server) -> None:
    net = await start_net(aiohttp_server)
    other = await start_net(aiohttp_server, name="pds2", plc=net.plc, plc_url=net.plc_url)
    settings = auth_settings(backend, net, other.pds_url)
    async with aiohttp.ClientSession() as http:
        identity = NetworkIdentity(settings, http, HandleResolver(settings, http))
        assert await identity.resolve_handle(net.alice.handle) == net.alice.did
        assert await identity.resolve_handle(other.bob.handle) == other.bob.did
        with pytest.raises(IdentityError, match="does not resolve"):
            await identity.resolve_handle("carol.pds1.test")
        cached = await identity.resolve_did(net.alice.did, fresh=False)
        assert (cached.pds_url, cached.handle) == (net.pds_url, net.alice.handle)
        net.plc.update_pds(net.alice.did, other.pds_url)  # the account moved
        assert (await identity.resolve_did(net.alice.did, fresh=False)).pds_url == net.pds_url
        assert (await identity.resolve_did(net.alice.did, fresh=True)).pds_url == other.pds_url
        with pytest.raises(IdentityError, match="HTTP 404"):
            await identity.resolve_did("did:plc:" + "z" * 24, fresh=True)
        with pytest.raises(IdentityError, match="not a did"):
            await identity.resolve_did("did:key:z6Mk", fresh=True)
