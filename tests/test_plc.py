"""The devnet PLC directory, resolved by the SDK's own IdResolver."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestServer
from atproto_core.did_doc import DidDocument
from atproto_identity.resolver import AsyncIdResolver

from appview.devnet.keys import SigningKey
from appview.devnet.plc import PlcDirectory, genesis_did

PDS_URL = "http://127.0.0.1:2583"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(b"alice")


@pytest.fixture
def plc(key: SigningKey) -> PlcDirectory:
    directory = PlcDirectory()
    directory.register(genesis_did(key, "alice.test", "pds1"), "alice.test", key.multibase, PDS_URL)
    return directory


def plc_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def test_genesis_dids_are_deterministic_and_shaped_like_plc(key: SigningKey) -> None:
    did = genesis_did(key, "alice.test", "pds1")
    assert re.fullmatch(r"did:plc:[a-z2-7]{24}", did)
    assert did == genesis_did(SigningKey.from_seed(b"alice"), "alice.test", "pds1")
    assert did != genesis_did(key, "bob.test", "pds1")
    assert did != genesis_did(key, "alice.test", "pds2")
    assert did != genesis_did(SigningKey.from_seed(b"bob"), "alice.test", "pds1")


def test_the_document_has_handle_key_and_pds(plc: PlcDirectory, key: SigningKey) -> None:
    [did] = plc.dids()
    document = plc.document(did)
    assert document is not None
    assert document["alsoKnownAs"] == ["at://alice.test"]
    [method] = document["verificationMethod"]
    assert method == {
        "id": f"{did}#atproto",
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": key.multibase,
    }
    assert document["service"] == [
        {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": PDS_URL}
    ]
    parsed = DidDocument.from_dict(document)
    assert parsed.get_did_key() == key.did_key and parsed.get_pds_endpoint() == PDS_URL


async def test_the_sdk_resolves_did_to_handle_pds_and_key(
    aiohttp_server, plc: PlcDirectory, key: SigningKey
) -> None:
    server = await aiohttp_server(plc.app())
    [did] = plc.dids()
    resolver = AsyncIdResolver(plc_url=plc_url(server))
    data = await resolver.did.resolve_atproto_data(did)
    assert (data.did, data.handle, data.pds, data.signing_key) == (
        did,
        "alice.test",
        PDS_URL,
        key.did_key,
    )
    assert await resolver.did.resolve_atproto_key(did) == key.did_key


async def test_handle_and_endpoint_updates_are_served(aiohttp_server, plc: PlcDirectory) -> None:
    server = await aiohttp_server(plc.app())
    [did] = plc.dids()
    plc.update_handle(did, "alice2.test")
    plc.update_pds(did, "http://127.0.0.1:9999")
    data = await AsyncIdResolver(plc_url=plc_url(server)).did.resolve_atproto_data(did)
    assert (data.handle, data.pds) == ("alice2.test", "http://127.0.0.1:9999")


async def test_unknown_dids_are_404_with_a_message(aiohttp_server, aiohttp_client, plc) -> None:
    server = await aiohttp_server(plc.app())
    client = await aiohttp_client(server)
    response = await client.get("/did:plc:unknownunknownunknown00")
    assert response.status == 404
    assert await response.json() == {"message": "DID not registered"}
    resolver = AsyncIdResolver(plc_url=plc_url(server))
    assert await resolver.did.resolve("did:plc:unknownunknownunknown00") is None


async def test_plc_data_and_health_endpoints(aiohttp_client, plc: PlcDirectory, key) -> None:
    client = await aiohttp_client(plc.app())
    [did] = plc.dids()
    data = await (await client.get(f"/{did}/data")).json()
    assert data["verificationMethods"] == {"atproto": key.did_key}
    assert data["services"]["atproto_pds"]["endpoint"] == PDS_URL
    assert (await client.get("/_health")).status == 200


def test_bad_registrations_and_updates_are_refused(plc: PlcDirectory) -> None:
    with pytest.raises(ValueError, match="not a did:plc"):
        plc.register("did:web:example.com", "x.test", "zQ3s", PDS_URL)
    with pytest.raises(ValueError, match="DID not registered"):
        plc.update_handle("did:plc:unknownunknownunknown00", "x.test")
