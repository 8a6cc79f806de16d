"""A devnet PLC + PDS on loopback, driven only through the SDK's own clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from atproto_client import AsyncClient
from atproto_client.exceptions import BadRequestError, RateLimitExceededError, UnauthorizedError
from atproto_core.car import CAR
from atproto_crypto.verify import verify_signature
from atproto_identity.resolver import AsyncIdResolver

from appview.devnet.clock import DevClock
from appview.devnet.pds import Account, PdsHost
from appview.devnet.plc import PlcDirectory
from appview.repos import mst
from appview.repos.cbor import Cid, encode, record_cid
from tests.recording_sink import RecordingSink

POST = "space.atbb.post"
FROZEN_US = 1_735_689_600_000_000


@dataclass
class Devnet:
    clock: DevClock
    sink: RecordingSink
    plc: PlcDirectory
    pds: PdsHost
    plc_url: str
    pds_url: str
    alice: Account
    bob: Account


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def start(aiohttp_server, *, rate_limit: int | None = None) -> Devnet:
    clock, sink, plc = DevClock(), RecordingSink(), PlcDirectory()
    pds = PdsHost("pds1", clock=clock, sink=sink, plc=plc, rate_limit=rate_limit, rate_window_s=60)
    alice = pds.create_account("alice.test", "alice-pw", seed=b"alice")
    plc_server = await aiohttp_server(plc.app())
    pds_server = await aiohttp_server(pds.app())
    pds.set_url(url_of(pds_server))
    bob = pds.create_account("bob.test", "bob-pw", seed=b"bob")
    return Devnet(clock, sink, plc, pds, url_of(plc_server), url_of(pds_server), alice, bob)


@pytest.fixture
async def devnet(aiohttp_server) -> Devnet:
    return await start(aiohttp_server)


@pytest.fixture
async def clients() -> AsyncIterator[list[AsyncClient]]:
    made: list[AsyncClient] = []
    yield made
    for client in made:
        await client.request.close()


async def login(devnet: Devnet, clients: list[AsyncClient], who: Account) -> AsyncClient:
    client = AsyncClient(base_url=devnet.pds_url)
    clients.append(client)
    await client.login(who.handle, who.app_password, fetch_bsky_profile=False)
    return client


def post(text: str) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2025-01-01T00:00:00.000Z"}


def error_of(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.response.content.error)


# --- sessions ---------------------------------------------------------------------------


async def test_login_with_password_or_app_password_and_session_calls(devnet, clients) -> None:
    client = AsyncClient(base_url=devnet.pds_url)
    clients.append(client)
    await client.login("alice.test", "alice-pw", fetch_bsky_profile=False)
    assert client.me is None
    session = await client.com.atproto.server.get_session()
    assert (session.did, session.handle, session.active) == (devnet.alice.did, "alice.test", True)
    app = await login(devnet, clients, devnet.alice)
    refreshed = await app.com.atproto.server.refresh_session(
        headers={"Authorization": f"Bearer {app._session.refresh_jwt}"}
    )
    assert refreshed.did == devnet.alice.did and refreshed.access_jwt
    server = await app.com.atproto.server.describe_server()
    assert server.did == "did:web:pds1" and server.available_user_domains == [".test"]


async def test_wrong_password_and_missing_tokens_are_refused(devnet, clients) -> None:
    client = AsyncClient(base_url=devnet.pds_url)
    clients.append(client)
    with pytest.raises(UnauthorizedError) as refused:
        await client.login("alice.test", "nope", fetch_bsky_profile=False)
    assert error_of(refused) == "AuthenticationRequired"
    with pytest.raises(UnauthorizedError):
        await client.com.atproto.repo.create_record(
            {"repo": devnet.alice.did, "collection": POST, "record": post("anonymous")}
        )


# --- repo writes and reads --------------------------------------------------------------


async def test_create_put_delete_get_through_the_sdk_reach_the_sink(devnet, clients) -> None:
    client = await login(devnet, clients, devnet.alice)
    did = devnet.alice.did
    created = await client.com.atproto.repo.create_record(
        {"repo": did, "collection": POST, "record": post("hello"), "validate": False}
    )
    rkey = created.uri.rsplit("/", 1)[1]
    assert created.cid == record_cid(post("hello"))
    assert created.commit.rev == devnet.pds.repo(did).rev
    got = await client.com.atproto.repo.get_record({"repo": did, "collection": POST, "rkey": rkey})
    assert got.value["text"] == "hello" and got.cid == created.cid
    put = await client.com.atproto.repo.put_record(
        {
            "repo": "alice.test",
            "collection": POST,
            "rkey": rkey,
            "record": post("edited"),
            "swap_record": created.cid,
        }
    )
    deleted = await client.com.atproto.repo.delete_record(
        {"repo": did, "collection": POST, "rkey": rkey, "swap_commit": put.commit.cid}
    )
    assert deleted.commit.rev > put.commit.rev > created.commit.rev
    ops = [(d, rev, op.operation, op.rkey, op.cid) for d, rev, [op] in devnet.sink.commits]
    assert ops == [
        (did, created.commit.rev, "create", rkey, created.cid),
        (did, put.commit.rev, "update", rkey, put.cid),
        (did, deleted.commit.rev, "delete", rkey, None),
    ]
    with pytest.raises(BadRequestError) as missing:
        await client.com.atproto.repo.get_record({"repo": did, "collection": POST, "rkey": rkey})
    assert error_of(missing) == "RecordNotFound"


async def test_swaps_writes_to_other_repos_and_bad_records_are_refused(devnet, clients) -> None:
    client = await login(devnet, clients, devnet.alice)
    did = devnet.alice.did
    await client.com.atproto.repo.put_record(
        {"repo": did, "collection": POST, "rkey": "self", "record": post("x")}
    )
    with pytest.raises(BadRequestError) as swap:
        await client.com.atproto.repo.put_record(
            {
                "repo": did,
                "collection": POST,
                "rkey": "self",
                "record": post("y"),
                "swap_record": record_cid(post("not it")),
            }
        )
    assert error_of(swap) == "InvalidSwap"
    with pytest.raises(UnauthorizedError):
        await client.com.atproto.repo.create_record(
            {"repo": devnet.bob.did, "collection": POST, "record": post("intruder")}
        )
    with pytest.raises(BadRequestError) as bad:
        await client.com.atproto.repo.create_record(
            {"repo": did, "collection": POST, "record": {"$type": "other.thing.here", "a": 1}}
        )
    assert error_of(bad) == "InvalidRequest" and "$type" in bad.value.response.content.message
    assert devnet.pds.repo(devnet.bob.did).count() == 0
    assert devnet.pds.repo(did).count() == 1


async def test_list_records_orders_paginates_and_reverses(devnet, clients, aiohttp_client) -> None:
    client = await login(devnet, clients, devnet.alice)
    did = devnet.alice.did
    for i in range(7):
        await client.com.atproto.repo.create_record(
            {"repo": did, "collection": POST, "record": post(f"n{i}")}
        )
    expected = sorted(r.rkey for r in devnet.pds.repo(did).list_records(POST, limit=100))

    async def pages(reverse: bool) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            page = await client.com.atproto.repo.list_records(
                {"repo": did, "collection": POST, "limit": 3, "cursor": cursor, "reverse": reverse}
            )
            seen += [record.uri.rsplit("/", 1)[1] for record in page.records]
            if not page.records or not page.cursor:
                return seen
            cursor = page.cursor

    assert await pages(reverse=False) == expected[::-1]
    assert await pages(reverse=True) == expected
    # The SDK checks limit 1-100 itself, so the server's own check is probed over raw HTTP.
    raw = await aiohttp_client(devnet.pds.app())
    for limit in ("0", "101", "ten"):
        response = await raw.get(
            "/xrpc/com.atproto.repo.listRecords",
            params={"repo": did, "collection": POST, "limit": limit},
        )
        assert response.status == 400
        assert (await response.json())["error"] == "InvalidRequest"
    described = await client.com.atproto.repo.describe_repo({"repo": "alice.test"})
    assert described.collections == [POST] and described.did == did
    assert described.handle_is_correct


# --- sync and identity ------------------------------------------------------------------


async def test_get_repo_car_walks_to_the_records_and_its_signature_verifies(
    devnet, clients
) -> None:
    client = await login(devnet, clients, devnet.alice)
    did = devnet.alice.did
    for i in range(30):
        await client.com.atproto.repo.create_record(
            {
                "repo": did,
                "collection": POST if i % 4 else "space.atbb.reaction",
                "record": {
                    "$type": POST if i % 4 else "space.atbb.reaction",
                    "n": i,
                    "createdAt": "2025-01-01T00:00:00.000Z",
                },
            }
        )
    car = CAR.from_bytes(await client.com.atproto.sync.get_repo({"did": did}))
    commit = car.blocks[car.root]
    listed = {
        key: str(cid) for key, cid in mst.walk(commit["data"], lambda c: car.blocks.get(str(c)))
    }
    expected: dict[str, str] = {}
    for collection in ("space.atbb.reaction", POST):
        page = await client.com.atproto.repo.list_records(
            {"repo": did, "collection": collection, "limit": 100}
        )
        expected |= {r.uri.split("/", 3)[3]: r.cid for r in page.records}
    assert listed == expected and len(listed) == 30

    signing_key = await AsyncIdResolver(plc_url=devnet.plc_url).did.resolve_atproto_key(did)
    unsigned = {k: v for k, v in commit.items() if k != "sig"}
    unsigned["data"] = Cid.coerce(unsigned["data"])
    assert verify_signature(signing_key, encode(unsigned), commit["sig"])

    latest = await client.com.atproto.sync.get_latest_commit({"did": did})
    assert (latest.cid, latest.rev) == (str(car.root), commit["rev"])
    repos = await client.com.atproto.sync.list_repos()
    heads = {repo.did: (repo.head, repo.active) for repo in repos.repos}
    assert heads[did] == (str(car.root), True) and devnet.bob.did in heads


async def test_the_sdk_resolves_accounts_and_handles_follow_updates(devnet, clients) -> None:
    resolver = AsyncIdResolver(plc_url=devnet.plc_url)
    data = await resolver.did.resolve_atproto_data(devnet.alice.did)
    assert (data.handle, data.pds, data.signing_key) == (
        "alice.test",
        devnet.pds_url,
        devnet.alice.key.did_key,
    )
    client = await login(devnet, clients, devnet.bob)
    assert client._session.pds_endpoint == devnet.pds_url  # taken from the session's didDoc
    devnet.pds.update_handle(devnet.alice.did, "alice-renamed.test")
    resolved = await client.com.atproto.identity.resolve_handle({"handle": "alice-renamed.test"})
    assert resolved.did == devnet.alice.did
    with pytest.raises(BadRequestError):
        await client.com.atproto.identity.resolve_handle({"handle": "alice.test"})
    data = await resolver.did.resolve_atproto_data(devnet.alice.did, force_refresh=True)
    assert data.handle == "alice-renamed.test"
    assert devnet.sink.identities[-1] == (devnet.alice.did, "alice-renamed.test")


async def test_the_well_known_path_answers_the_did_of_the_handle_in_the_host_header(
        devnet) -> None:
    async def ask(host: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(
                f"{devnet.pds_url}/.well-known/atproto-did", headers={"Host": host}) as answer:
            return answer.status, await answer.text()

    assert await ask("alice.test") == (200, devnet.alice.did)
    assert await ask("Bob.Test:8080") == (200, devnet.bob.did)
    assert await ask("nobody.test") == (404, "User not found")
    devnet.pds.update_handle(devnet.alice.did, "alice-renamed.test")
    assert await ask("alice.test") == (404, "User not found")
    assert await ask("alice-renamed.test") == (200, devnet.alice.did)
    devnet.pds.set_account_status(devnet.bob.did, "deleted")
    assert (await ask("bob.test"))[0] == 404


async def test_describe_repo_can_fail_as_the_reference_pds_does_on_loopback(devnet) -> None:
    devnet.pds.serve_describe_repo = False
    async with aiohttp.ClientSession() as session, session.get(
            f"{devnet.pds_url}/xrpc/com.atproto.repo.describeRepo",
            params={"repo": devnet.alice.did}) as answer:
        assert answer.status == 400
        assert (await answer.json())["error"] == "InvalidRequest"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("takendown", "RepoTakendown"),
        ("suspended", "RepoSuspended"),
        ("deactivated", "RepoDeactivated"),
        ("deleted", "RepoNotFound"),
    ],
)
async def test_account_states_answer_with_the_real_error_names(
    devnet, clients, status, error
) -> None:
    client = await login(devnet, clients, devnet.alice)
    did = devnet.alice.did
    await client.com.atproto.repo.put_record(
        {"repo": did, "collection": POST, "rkey": "self", "record": post("x")}
    )
    devnet.pds.set_account_status(did, status)
    assert devnet.sink.accounts[-1] == (did, False, status)
    reader = await login(devnet, clients, devnet.bob)
    calls = [
        reader.com.atproto.repo.get_record({"repo": did, "collection": POST, "rkey": "self"}),
        reader.com.atproto.repo.list_records({"repo": did, "collection": POST}),
        reader.com.atproto.repo.describe_repo({"repo": did}),
        reader.com.atproto.sync.get_repo({"did": did}),
        reader.com.atproto.sync.get_latest_commit({"did": did}),
        client.com.atproto.repo.create_record(
            {"repo": did, "collection": POST, "record": post("while refused")}
        ),
    ]
    for call in calls:
        with pytest.raises(BadRequestError) as refused:
            await call
        assert error_of(refused) == error
    listed = {r.did for r in (await reader.com.atproto.sync.list_repos()).repos}
    assert (did in listed) == (status != "deleted")

    devnet.pds.set_account_status(did, "active")
    assert devnet.sink.accounts[-1] == (did, True, None)
    got = await reader.com.atproto.repo.get_record(
        {"repo": did, "collection": POST, "rkey": "self"}
    )
    assert got.value["text"] == "x"


async def test_takendown_accounts_cannot_log_in(devnet, clients) -> None:
    devnet.pds.set_account_status(devnet.alice.did, "takendown")
    client = AsyncClient(base_url=devnet.pds_url)
    clients.append(client)
    with pytest.raises(UnauthorizedError) as refused:
        await client.login("alice.test", devnet.alice.password, fetch_bsky_profile=False)
    assert error_of(refused) == "AccountTakedown"


async def test_unknown_repos_methods_and_bodies(devnet, clients, aiohttp_client) -> None:
    client = await login(devnet, clients, devnet.alice)
    with pytest.raises(BadRequestError) as unknown:
        await client.com.atproto.sync.get_repo({"did": "did:plc:unknownunknownunknown00"})
    assert error_of(unknown) == "RepoNotFound"
    raw = await aiohttp_client(devnet.pds.app())
    response = await raw.post(
        "/xrpc/com.atproto.repo.createRecord",
        data=b"{not json",
        headers={"Authorization": f"Bearer {client._session.access_jwt}"},
    )
    assert response.status == 400 and (await response.json())["error"] == "InvalidRequest"
    response = await raw.get("/xrpc/com.atproto.repo.listRecords", params={"repo": "alice.test"})
    body = await response.json()
    assert response.status == 400 and "collection" in body["message"]
    response = await raw.get("/xrpc/app.bsky.actor.getProfile")
    assert response.status == 501 and (await response.json())["error"] == "MethodNotImplemented"


# --- rate limits ------------------------------------------------------------------------


async def test_rate_limit_headers_and_429_with_retry_after(aiohttp_server, clients) -> None:
    devnet = await start(aiohttp_server, rate_limit=4)
    client = AsyncClient(base_url=devnet.pds_url)
    clients.append(client)
    await client.login("alice.test", "alice-pw", fetch_bsky_profile=False)  # request 1
    for _ in range(3):
        await client.com.atproto.repo.describe_repo({"repo": "alice.test"})
    with pytest.raises(RateLimitExceededError) as limited:
        await client.com.atproto.repo.describe_repo({"repo": "alice.test"})
    assert limited.value.response.status_code == 429
    assert error_of(limited) == "RateLimitExceeded"
    assert (limited.value.limit, limited.value.remaining) == (4, 0)
    assert 0 < limited.value.retry_after <= 60
    assert limited.value.policy == "4;w=60"
    assert limited.value.reset_at is not None
    devnet.clock.advance(61)
    described = await client.com.atproto.repo.describe_repo({"repo": "alice.test"})
    assert described.did == devnet.alice.did


# --- determinism ------------------------------------------------------------------------


def seeded_network() -> tuple[list[str], list[str], bytes]:
    clock, sink, plc = DevClock(frozen_us=FROZEN_US), RecordingSink(), PlcDirectory()
    pds = PdsHost("pds1", clock=clock, sink=sink, plc=plc)
    accounts = [pds.create_account(f"user{i}.test", "pw", seed=b"user%d" % i) for i in range(3)]
    for account in accounts:
        for n in range(5):
            pds.repo(account.did).create(POST, post(f"{account.handle} says {n}"))
    pds.set_url("http://127.0.0.1:1")  # ports differ between runs; nothing seeded may depend on it
    cids = [op.cid or "" for _, _, ops in sink.commits for op in ops]
    return (
        [a.did + a.key.did_key + a.app_password for a in accounts],
        cids,
        b"".join(pds.repo(a.did).export_car() for a in accounts),
    )


def test_same_seed_same_dids_keys_records_and_cars() -> None:
    first, second = seeded_network(), seeded_network()
    assert first == second
    assert len(first[1]) == 15


async def test_blobs_are_uploaded_named_by_a_profile_and_served_as_uploaded(
        devnet, clients) -> None:
    alice = await login(devnet, clients, devnet.alice)
    image = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    uploaded = await alice.com.atproto.repo.upload_blob(image)
    cid = str(uploaded.blob.cid)
    assert cid == str(Cid.for_raw(image)) and uploaded.blob.size == len(image)
    # from Python: any bytes under any declared type, as a PDS keeps what it was sent
    html = b"<html><script>alert(1)</script></html>"
    ref = devnet.pds.upload_blob(devnet.alice.did, html, "image/jpeg")
    assert ref == {"$type": "blob", "ref": {"$link": str(Cid.for_raw(html))},
                   "mimeType": "image/jpeg", "size": len(html)}
    devnet.pds.repo(devnet.alice.did).put("app.bsky.actor.profile", "self", {
        "$type": "app.bsky.actor.profile", "avatar": ref})
    profile = await alice.com.atproto.repo.get_record({
        "repo": devnet.alice.did, "collection": "app.bsky.actor.profile", "rkey": "self"})
    assert str(profile.value.avatar.cid) == ref["ref"]["$link"]
    async with aiohttp.ClientSession() as http:
        url = f"{devnet.pds_url}/xrpc/com.atproto.sync.getBlob"
        async with http.get(url, params={"did": devnet.alice.did, "cid": cid}) as answer:
            assert answer.status == 200 and await answer.read() == image
        async with http.get(url, params={"did": devnet.alice.did,
                                         "cid": ref["ref"]["$link"]}) as answer:
            assert answer.headers["Content-Type"] == "image/jpeg"
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert await answer.read() == html
        async with http.get(url, params={"did": devnet.bob.did, "cid": cid}) as answer:
            assert answer.status == 400
            assert (await answer.json())["error"] == "BlobNotFound"
