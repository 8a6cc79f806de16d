"""The devnet Jetstream v1 server, driven over real websockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import zstandard

from appview.devnet.clock import DevClock
from appview.devnet.faults import Disconnect, Malformed, Refuse, Resend, Stall
from appview.devnet.jetstream import JetstreamServer, QueryError, parse_subscription
from appview.devnet.sink import CommitOp
from tests.conftest import CAPTURE

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
DID_A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
DID_B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
POST = "space.atbb.post"
REV = "3mptbypluud2a"
CID = "bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i"


def expected_lines() -> list[str]:
    return (CAPTURE / "expected_v1.jsonl").read_text(encoding="utf-8").splitlines()


def create(collection: str = POST, rkey: str = "3mptbyplj5d2a", text: str = "hi") -> CommitOp:
    record = {"$type": collection, "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}
    return CommitOp("create", collection, rkey, record, CID)


@pytest.fixture
def server() -> JetstreamServer:
    return JetstreamServer(DevClock(frozen_us=START_US))


@pytest.fixture
async def client(aiohttp_client: Any, server: JetstreamServer) -> Any:
    return await aiohttp_client(server.app())


async def receive(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    frames = []
    for _ in range(count):
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frames.append(message.data)
    return frames


async def assert_silent(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.2) -> None:
    with pytest.raises(asyncio.TimeoutError):
        message = await ws.receive(timeout=seconds)
        pytest.fail(f"unexpected frame {message}")


def shape(value: Any) -> Any:
    """Keys (in order), nesting and JSON types, without the values."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return ["list"]
    return type(value).__name__


def first(kind: str, operation: str | None = None) -> dict[str, Any]:
    for line in expected_lines():
        event = json.loads(line)
        if event["kind"] != kind:
            continue
        if operation is not None and event["commit"]["operation"] != operation:
            continue
        return dict(event)
    raise AssertionError(f"no {kind} {operation} in the capture")


# --- the v1 shape -----------------------------------------------------------------------


async def test_every_kind_has_the_captured_v1_shape_key_by_key(client, server) -> None:
    ws = await client.ws_connect("/subscribe?cursor=0")
    server.commit(DID_A, REV, [create()])
    update = CommitOp("update", POST, "3mptbyplj5d2a", {"$type": POST, "text": "x"}, CID)
    server.commit(DID_A, REV, [update, CommitOp("delete", POST, "3mptbyplj5d2a", None, None)])
    server.identity(DID_A, None)
    server.account(DID_A, True, None)
    ours = [json.loads(line) for line in await receive(ws, 5)]
    theirs = [
        first("commit", "create"),
        first("commit", "update"),
        first("commit", "delete"),
        first("identity"),
        first("account"),
    ]
    for mine, captured in zip(ours, theirs, strict=True):
        if mine["kind"] == "commit" and "record" in mine["commit"]:
            mine["commit"]["record"] = captured["commit"]["record"] = {}
        assert shape(mine) == shape(captured)
    assert [event["time_us"] for event in ours] == list(range(START_US + 1, START_US + 6))
    assert ours[2]["commit"] == {
        "rev": REV, "operation": "delete", "collection": POST, "rkey": "3mptbyplj5d2a"
    }


async def test_identity_with_a_handle_and_account_with_a_status(client, server) -> None:
    ws = await client.ws_connect("/subscribe")
    server.identity(DID_A, "alice.test")
    server.account(DID_A, False, "takendown")
    identity, account = (json.loads(line) for line in await receive(ws, 2))
    assert list(identity["identity"]) == ["did", "handle", "seq", "time"]
    assert identity["identity"]["handle"] == "alice.test"
    assert list(account["account"]) == ["active", "did", "seq", "status", "time"]
    assert account["account"]["status"] == "takendown" and account["account"]["active"] is False
    assert account["account"]["seq"] == identity["identity"]["seq"] + 1
    assert identity["identity"]["time"] == "2026-01-01T00:00:00.000Z"


async def test_captured_lines_published_raw_arrive_unchanged(client, server) -> None:
    lines = expected_lines()
    for line in lines:
        server.publish_raw(line)
    ws = await client.ws_connect("/subscribe?cursor=0")
    assert await receive(ws, len(lines)) == lines
    await assert_silent(ws)


# --- cursor -----------------------------------------------------------------------------


async def test_no_cursor_is_live_only(client, server) -> None:
    server.commit(DID_A, REV, [create(text="old")])
    ws = await client.ws_connect("/subscribe")
    await assert_silent(ws)
    server.commit(DID_A, REV, [create(text="new")])
    [line] = await receive(ws, 1)
    assert json.loads(line)["commit"]["record"]["text"] == "new"


async def test_cursor_is_inclusive_and_history_turns_live_without_a_seam(client, server) -> None:
    for index in range(5):
        server.commit(DID_A, REV, [create(text=f"h{index}")])
    third = server.history()[2].time_us
    ws = await client.ws_connect(f"/subscribe?cursor={third}")
    server.commit(DID_A, REV, [create(text="live")])
    texts = [json.loads(line)["commit"]["record"]["text"] for line in await receive(ws, 4)]
    assert texts == ["h2", "h3", "h4", "live"]
    await assert_silent(ws)


async def test_writes_racing_the_replay_are_each_delivered_once_in_order(client, server) -> None:
    for index in range(300):
        server.commit(DID_A, REV, [create(text=f"{index}")])

    async def keep_writing() -> None:
        for index in range(300, 600):
            server.commit(DID_A, REV, [create(text=f"{index}")])
            if index % 10 == 0:
                await asyncio.sleep(0)

    writer = asyncio.create_task(keep_writing())
    ws = await client.ws_connect("/subscribe?cursor=0")
    lines = await receive(ws, 600)
    await writer
    assert [json.loads(line)["commit"]["record"]["text"] for line in lines] == [
        str(index) for index in range(600)
    ]
    await assert_silent(ws)


# --- filters and compression ------------------------------------------------------------


async def test_wanted_collections_exact_and_prefix_let_identity_and_account_pass(
    client, server
) -> None:
    server.commit(DID_A, REV, [create(POST, "a"), create("app.bsky.feed.like", "b")])
    server.commit(DID_A, REV, [create("space.atbb.forum.board", "c")])
    server.identity(DID_A, "alice.test")
    server.account(DID_A, True, None)
    exact = await client.ws_connect(f"/subscribe?cursor=0&wantedCollections={POST}")
    prefix = await client.ws_connect("/subscribe?cursor=0&wantedCollections=space.atbb.*")
    both = await client.ws_connect(
        "/subscribe?cursor=0&wantedCollections=app.bsky.feed.like&wantedCollections=space.atbb.forum.*"
    )

    def seen(lines: list[str]) -> list[str]:
        events = [json.loads(line) for line in lines]
        return [event["commit"]["rkey"] if "commit" in event else event["kind"] for event in events]

    assert seen(await receive(exact, 3)) == ["a", "identity", "account"]
    assert seen(await receive(prefix, 4)) == ["a", "c", "identity", "account"]
    assert seen(await receive(both, 4)) == ["b", "c", "identity", "account"]
    for ws in (exact, prefix, both):
        await assert_silent(ws, 0.1)


async def test_wanted_dids_filters_every_kind(client, server) -> None:
    server.commit(DID_A, REV, [create(rkey="a")])
    server.commit(DID_B, REV, [create(rkey="b")])
    server.identity(DID_B, "bob.test")
    server.account(DID_A, True, None)
    ws = await client.ws_connect(f"/subscribe?cursor=0&wantedDids={DID_B}")
    events = [json.loads(line) for line in await receive(ws, 2)]
    assert [(event["did"], event["kind"]) for event in events] == [
        (DID_B, "commit"),
        (DID_B, "identity"),
    ]
    await assert_silent(ws)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("cursor=yesterday", "cursor must be unix microseconds"),
        ("wantedCollections=not a collection", "neither an NSID"),
        ("wantedDids=alice", "is not a DID"),
        ("&".join(f"wantedCollections=a.b.c{i}" for i in range(101)), "at most 100"),
    ],
)
async def test_bad_queries_are_refused_with_the_reason(client, query, reason) -> None:
    response = await client.get(f"/subscribe?{query}")
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "InvalidRequest" and reason in body["message"]


def test_parse_subscription_keeps_prefixes_with_their_dot() -> None:
    from multidict import MultiDict

    parsed = parse_subscription(
        MultiDict([("wantedCollections", "space.atbb.*"), ("wantedCollections", "a.b.c")])
    )
    assert parsed.prefixes == ("space.atbb.",) and parsed.collections == frozenset({"a.b.c"})
    with pytest.raises(QueryError):
        parse_subscription(MultiDict([("wantedCollections", "*")]))


async def test_compress_sends_zstd_binary_frames_of_the_same_lines(client, server) -> None:
    lines = expected_lines()[:20]
    for line in lines:
        server.publish_raw(line)
    ws = await client.ws_connect("/subscribe?cursor=0&compress=true")
    decompressor = zstandard.ZstdDecompressor()
    received = []
    for _ in lines:
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.BINARY
        received.append(decompressor.decompress(message.data).decode("utf-8"))
    assert received == lines


# --- retention --------------------------------------------------------------------------


async def test_retention_drops_old_events_and_clamps_an_older_cursor(aiohttp_client) -> None:
    clock = DevClock(frozen_us=START_US)
    server = JetstreamServer(clock, retention_us=3_600_000_000)
    own = await aiohttp_client(server.app())
    server.commit(DID_A, REV, [create(text="old")])
    clock.advance(7200)
    server.commit(DID_A, REV, [create(text="new")])
    [kept] = server.history()
    assert json.loads(kept.line)["commit"]["record"]["text"] == "new"
    ws = await own.ws_connect(f"/subscribe?cursor={START_US}")
    assert await receive(ws, 1) == [kept.line]
    await assert_silent(ws)
    clock.advance(7200)
    assert server.prune() == 1 and server.history() == []


# --- faults -----------------------------------------------------------------------------


async def test_disconnect_after_n_events_then_the_next_connection_is_fine(client, server) -> None:
    for index in range(5):
        server.commit(DID_A, REV, [create(text=f"{index}")])
    server.inject(Disconnect(after=2))
    ws = await client.ws_connect("/subscribe?cursor=0")
    assert len(await receive(ws, 2)) == 2
    closing = await ws.receive(timeout=3)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    again = await client.ws_connect("/subscribe?cursor=0")
    assert len(await receive(again, 5)) == 5


async def test_a_counted_disconnect_fires_on_that_many_connections(client, server) -> None:
    server.commit(DID_A, REV, [create()])
    server.inject(Disconnect(after=0, times=2))
    for _ in range(2):
        ws = await client.ws_connect("/subscribe?cursor=0")
        message = await ws.receive(timeout=3)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    ws = await client.ws_connect("/subscribe?cursor=0")
    assert len(await receive(ws, 1)) == 1
    assert server.faults.armed() == []


async def test_resend_last_events_duplicates_them(client, server) -> None:
    ws = await client.ws_connect("/subscribe")
    for index in range(3):
        server.commit(DID_A, REV, [create(text=f"{index}")])
    lines = await receive(ws, 3)
    server.inject(Resend(last=2))
    assert await receive(ws, 2) == lines[1:]
    await assert_silent(ws)


async def test_resend_a_time_range_of_history(client, server) -> None:
    for index in range(4):
        server.commit(DID_A, REV, [create(text=f"{index}")])
    history = server.history()
    ws = await client.ws_connect("/subscribe")
    server.inject(Resend(from_us=history[1].time_us, to_us=history[2].time_us))
    assert await receive(ws, 2) == [history[1].line, history[2].line]


async def test_malformed_text_and_binary_frames(client, server) -> None:
    ws = await client.ws_connect("/subscribe")
    server.inject(Malformed(payload="{not json"))
    message = await ws.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.TEXT and message.data == "{not json"
    server.inject(Malformed(binary=True))
    message = await ws.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.BINARY
    with pytest.raises(zstandard.ZstdError):
        zstandard.ZstdDecompressor().decompress(message.data)
    server.commit(DID_A, REV, [create()])
    assert len(await receive(ws, 1)) == 1


async def test_stall_holds_frames_without_closing(client, server) -> None:
    ws = await client.ws_connect("/subscribe")
    server.inject(Stall(seconds=0.6))
    await asyncio.sleep(0.05)
    server.commit(DID_A, REV, [create()])
    await assert_silent(ws, 0.3)
    assert len(await receive(ws, 1)) == 1
    assert not ws.closed


async def test_refuse_for_a_while_answers_503_then_accepts(client, server) -> None:
    server.inject(Refuse(seconds=0.3))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/subscribe")
    assert refused.value.status == 503
    await asyncio.sleep(0.35)
    ws = await client.ws_connect("/subscribe")
    assert not ws.closed


async def test_refuse_a_counted_number_of_attempts(client, server) -> None:
    server.inject(Refuse(times=2))
    for _ in range(2):
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await client.ws_connect("/subscribe")
    await client.ws_connect("/subscribe")


async def test_faults_over_http_arm_list_refuse_bad_ones_and_clear(client, server) -> None:
    armed = await client.post(
        "/_devnet/faults",
        json=[{"fault": "disconnect", "after": 3}, {"fault": "stall", "seconds": 1.5, "times": 2}],
    )
    assert armed.status == 200
    listed = await (await client.get("/_devnet/faults")).json()
    assert [(item["fault"], item["remaining"]) for item in listed["armed"]] == [
        ("disconnect", 1),
        ("stall", 2),
    ]
    bad = await client.post("/_devnet/faults", json={"fault": "stall"})
    assert bad.status == 400
    assert (await bad.json())["message"] == "stall needs 'seconds'"
    garbage = await client.post("/_devnet/faults", data=b"{")
    assert garbage.status == 400
    await client.delete("/_devnet/faults")
    assert server.faults.armed() == []


async def test_a_fault_armed_over_http_hits_a_live_connection(client, server) -> None:
    ws = await client.ws_connect("/subscribe")
    response = await client.post("/_devnet/faults", json={"fault": "malformed", "payload": "!"})
    assert response.status == 200
    message = await ws.receive(timeout=3)
    assert message.data == "!"
    status = await (await client.get("/_devnet/status")).json()
    assert status["connections"] == 1
