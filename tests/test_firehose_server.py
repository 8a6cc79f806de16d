"""The devnet PDS's subscribeRepos: every write a signed commit whose CAR slice proves its
operation back to prevData, identity and account frames, cursors, lost history, a cursor
from the future, lost frames and faults over HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp

from appview.devnet.clock import DevClock
from appview.devnet.firehose import FirehoseServer
from appview.devnet.network import DevNetwork
from appview.devnet.plc import did_document
from appview.ingest.frames import (
    AccountFrame,
    CommitFrame,
    ErrorFrame,
    Frame,
    IdentityFrame,
    InfoFrame,
    decode_frame,
)
from appview.repos.commit import check_operations, read_commit, read_slice
from appview.repos.signing import signing_key_of

POST = {"$type": "space.atbb.post", "text": "hi", "createdAt": "2026-01-01T00:00:00Z"}


async def read(url: str, count: int, timeout: float = 5.0) -> list[Frame]:
    frames: list[Frame] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while len(frames) < count:
            message = await ws.receive(timeout=timeout)
            if message.type != aiohttp.WSMsgType.BINARY:
                break
            frames.append(decode_frame(message.data))
    return frames


async def test_writes_are_signed_commits_that_undo_to_their_prev_data() -> None:
    async with DevNetwork() as network:
        pds = network.pds["pds1"]
        alice = pds.create_account("alice.test", "pw", seed=b"alice")
        repo = pds.repo(alice.did)
        for n in range(30):  # a tree of several layers
            repo.create("space.atbb.post", dict(POST, text=f"post {n}"))
        write = repo.create("space.atbb.post", POST)
        rkey = write.uri.rsplit("/", 1)[1]
        repo.put("space.atbb.post", rkey, dict(POST, text="edited"))
        repo.delete("space.atbb.post", rkey)
        pds.set_account_status(alice.did, "deactivated")
        pds.update_handle(alice.did, "alice2.test")
        frames = await read(network.firehose_url() + "?cursor=0", 37)
        assert [type(f).__name__ for f in frames[:2]] == ["IdentityFrame", "AccountFrame"]
        assert isinstance(frames[-2], AccountFrame) and frames[-2].status == "deactivated"
        assert isinstance(frames[-1], IdentityFrame) and frames[-1].handle == "alice2.test"
        entry = network.plc.entry(alice.did)
        assert entry is not None
        key = signing_key_of(did_document(entry))
        assert key is not None
        commits = [f for f in frames if isinstance(f, CommitFrame)]
        assert [c.ops[0].action for c in commits[-3:]] == ["create", "update", "delete"]
        previous_rev = None
        for frame in commits:
            root, blocks = read_slice(frame.blocks)
            commit = read_commit(blocks, root)
            assert commit.signed_by(key)
            assert check_operations(commit, frame.ops, blocks, frame.prev_data) is True
            if previous_rev is not None:
                assert frame.since == previous_rev
            previous_rev = frame.rev
        assert [getattr(f, "seq", None) for f in frames] == list(range(1, 38))


async def test_cursors_replay_after_the_seq_and_report_lost_and_future_history() -> None:
    clock = DevClock()
    async with DevNetwork(clock=clock) as network:
        pds = network.pds["pds1"]
        for n in range(5):
            pds.create_account(f"u{n}.test", "pw", seed=bytes([n]))
        url = network.firehose_url()
        after = await read(url + "?cursor=7", 3)
        assert [getattr(f, "seq", None) for f in after] == [8, 9, 10]
        future = await read(url + "?cursor=99", 1)
        assert isinstance(future[0], ErrorFrame) and future[0].error == "FutureCursor"


async def test_a_host_keeping_little_says_the_cursor_is_outdated_and_lost_frames_never_come(
) -> None:
    server = FirehoseServer(DevClock(), keep=3)
    for n in range(6):
        server.identity(f"did:plc:{n:024d}", None)
    server.lose_next(1)
    server.identity("did:plc:lost", None)
    server.identity("did:plc:kept", None)
    assert server.seq == 8
    assert [frame.seq for frame in server.frames()] == [5, 6, 8]
    app = aiohttp.web.Application()
    server.add_routes(app)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        frames = await read(f"ws://127.0.0.1:{port}/xrpc/com.atproto.sync.subscribeRepos"
                            "?cursor=1", 4)
        assert isinstance(frames[0], InfoFrame) and frames[0].name == "OutdatedCursor"
        seqs: list[Any] = [getattr(f, "seq", None) for f in frames[1:]]
        assert seqs == [5, 6, 8]
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/_devnet/firehose/faults",
                                    json={"fault": "refuse", "times": 1}) as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/xrpc/com.atproto.sync."
                                   "subscribeRepos") as response:
                assert response.status == 503
            async with session.post(f"http://127.0.0.1:{port}/_devnet/firehose/faults",
                                    json={"fault": "nope"}) as response:
                assert response.status == 400
    finally:
        await runner.cleanup()
