"""The firehose consumer against the devnet PDS's subscribeRepos, on both backends: live
writes, forged commits kept invalid and never shown, a rev jump re-read from getRepo,
the real relay capture, disconnects and restarts resuming from the stored seq, and the
same read models as Jetstream gives."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import struct
from contextlib import AbstractAsyncContextManager
from typing import Any

import zstandard

from appview.backfill.progress import REPO_SYNC, BackfillStore
from appview.bootstrap import Services, bootstrap
from appview.devnet.clock import DevClock
from appview.devnet.faults import Disconnect, Malformed, Resend
from appview.devnet.keys import SigningKey
from appview.devnet.network import DevNetwork
from appview.devnet.repo import Repo
from appview.devnet.sink import CommitOp, RepoCommit, RepoOpEvent
from appview.devnet.tid import TidClock
from appview.ingest.consumer import FIREHOSE_CURSOR_SOURCE
from appview.ingest.firehose import FirehoseConsumer
from appview.ingest.frames import CommitFrame, decode_frame
from appview.live import LiveIngest
from appview.repos.car import read_car_blocks, write_car
from appview.settings import Settings
from events.model import CommitRejected, RecordEvent
from tests.conftest import CAPTURE, Backend
from tests.test_consumer import FAST_RETRY, FixedClock, dump, ingest_all, running, wait_for

POST = "space.atbb.post"


def firehose_settings(backend: Backend, name: str, network: DevNetwork,
                      forum_did: str) -> Settings:
    data_dir = backend.tmp / name
    common: dict[str, Any] = dict(data_dir=data_dir, forum_did=forum_did,
                                  ingest_source="firehose", plc_url=network.plc_url,
                                  firehose_url=network.firehose_url(),
                                  backfill_rate_limit=1000.0)
    if backend.name == "postgresql":
        common.update(database_url=backend.url, database_schema=f"{backend.schema}_{name}")
    return Settings(**common)


def following(services: Services,
              **options: Any) -> AbstractAsyncContextManager[LiveIngest]:
    return running(services, stop_within=30, **options)


def at_seq(services: Services, live: LiveIngest, seq: int) -> bool:
    cursor = live.consumer.status.cursor
    head = services.event_log.head()
    return cursor is not None and cursor >= seq and \
        all(p.position() == head for p in services.projections)


def post_record(text: str, board: str, board_cid: str | None) -> dict[str, Any]:
    return {"$type": POST, "title": text, "text": text, "createdAt": "2026-03-20T10:00:00.000Z",
            "board": {"uri": board, "cid": board_cid}}


def shown(services: Services, uri: str) -> bool:
    with services.read_models.read() as session:
        return bool(session.query("SELECT uri FROM posts WHERE uri = ?", [uri]))


class Captured:
    """The commits a scratch repo makes (its RepoEvents)."""

    def __init__(self) -> None:
        self.commits: list[RepoCommit] = []

    def repo_commit(self, commit: RepoCommit) -> None:
        self.commits.append(commit)


class NoJetstream:
    def commit(self, did: str, rev: str, ops: list[CommitOp]) -> None:
        return None

    def identity(self, did: str, handle: str | None) -> None:
        return None

    def account(self, did: str, active: bool, status: str | None) -> None:
        return None


async def test_live_writes_on_the_pds_are_shown_through_the_firehose(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        services = bootstrap(firehose_settings(backend, "live", network, seeded.forum_did))
        try:
            async with following(services) as live:
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                assert isinstance(live.consumer, FirehoseConsumer)
                stats = live.consumer.stats
                assert stats.verified > 400 and stats.rejected == 0
                board = next(w for w in seeded.writes if "/space.atbb.forum.board/" in w.uri)
                member = seeded.accounts[1]
                loop = asyncio.get_running_loop()
                for n in range(3):
                    started = loop.time()
                    write = pds.repo(member.did).create(
                        POST, post_record(f"live {n}", board.uri, board.cid))
                    await wait_for(lambda w=write: shown(services, w.uri), timeout=5)
                    assert loop.time() - started < 1.0
                state = services.event_log.cursor(FIREHOSE_CURSOR_SOURCE)
                assert state is not None and state.value == pds.firehose.seq
                assert services.event_log.cursor("jetstream") is None
        finally:
            services.close()


async def test_forged_commits_are_kept_invalid_with_their_reason_and_never_shown(
    backend: Backend,
) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        board = next(w for w in seeded.writes if "/space.atbb.forum.board/" in w.uri)
        member = pds.account(seeded.accounts[1].did)
        assert member is not None
        services = bootstrap(firehose_settings(backend, "forged", network, seeded.forum_did))
        try:
            async with following(services) as live:
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                captured = Captured()
                tids = TidClock(network.pds_clock, clock_id=7)
                # 1: signed by a key that is not the one the DID document names
                impostor = Repo(member.did, SigningKey.from_seed(b"impostor"), tids,
                                NoJetstream(), captured)
                impostor.create(POST, post_record("forged signature", board.uri, board.cid),
                                rkey="3zzzzzzzzzzz2")
                # 2 and 3: signed with the member's own key, then altered on the way
                genuine = Repo(member.did, member.key, tids, NoJetstream(), captured)
                genuine.create(POST, post_record("swapped block", board.uri, board.cid),
                               rkey="3zzzzzzzzzzz3")
                genuine.create(POST, post_record("moved op", board.uri, board.cid),
                               rkey="3zzzzzzzzzzz4")
                forged_signature, to_swap, to_move = captured.commits
                root, blocks = read_car_blocks(to_swap.blocks)
                record_cid = to_swap.ops[0].cid
                assert record_cid is not None
                swapped = {cid: (block.replace(b"swapped block", b"swapped BLOCK")
                                 if cid == record_cid else block)
                           for cid, block in blocks.items()}
                swapped_block = dataclasses.replace(
                    to_swap, blocks=write_car([root], swapped.items()))
                moved_op = dataclasses.replace(to_move, ops=(RepoOpEvent(
                    "create", f"{POST}/3zzzzzzzzzzz5", to_move.ops[0].cid, None),))
                for commit in (forged_signature, swapped_block, moved_op):
                    pds.firehose.repo_commit(commit)
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                assert isinstance(live.consumer, FirehoseConsumer)
                assert live.consumer.stats.rejected == 3
        finally:
            services.close()
        rejected = [logged.event for logged in services_log(backend, network, seeded.forum_did)
                    if isinstance(logged.event, CommitRejected)]
        reasons = {event.rkey: event.reason for event in rejected}
        assert "signature does not verify" in reasons["3zzzzzzzzzzz2"]
        assert "does not match its CID" in reasons["3zzzzzzzzzzz3"]
        assert "is not in the commit's tree" in reasons["3zzzzzzzzzzz5"]
        assert all(event.source == "firehose" for event in rejected)


def services_log(backend: Backend, network: DevNetwork, forum_did: str) -> list[Any]:
    services = bootstrap(firehose_settings(backend, "forged", network, forum_did))
    try:
        records = list(services.event_log.iter_from(0))
        with services.read_models.read() as session:
            titles = [row[0] for row in session.query("SELECT title FROM posts", [])]
            reasons = [row[0] for row in session.query("SELECT reason FROM rejected", [])]
        assert not any(t and ("forged" in t or "swapped" in t or "moved op" in t)
                       for t in titles)
        assert not any(isinstance(logged.event, RecordEvent)
                       and logged.event.rkey.startswith("3zzzzzzzzzzz") for logged in records)
        assert sum("signature does not verify" in reason for reason in reasons) == 1
        return records
    finally:
        services.close()


async def test_a_rev_jump_is_read_again_from_get_repo_and_recorded(backend: Backend) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        board = next(w for w in seeded.writes if "/space.atbb.forum.board/" in w.uri)
        member = seeded.accounts[2]
        settings = firehose_settings(backend, "jump", network, seeded.forum_did)
        services = bootstrap(settings)
        try:
            async with following(services) as live:
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                pds.firehose.lose_next(1)  # the host never sends this write
                lost = pds.repo(member.did).create(POST, post_record("lost", board.uri,
                                                                     board.cid))
                seen = pds.repo(member.did).create(POST, post_record("seen", board.uri,
                                                                     board.cid))
                await wait_for(lambda: shown(services, seen.uri), timeout=10)
                await wait_for(lambda: shown(services, lost.uri), timeout=15)
                assert isinstance(live.consumer, FirehoseConsumer)
                assert live.consumer.stats.resyncs == 1
            store = BackfillStore(settings, services.clock)
            runs = [run for run in store.recent() if run.type == REPO_SYNC]
            assert len(runs) == 1 and runs[0].status == "completed"
            assert store.repos(runs[0].id) == [member.did]
            reason = store.reason(runs[0].id)
            assert reason is not None and "rev jump" in reason
            # the backfill manager neither resumes nor fails a repo_sync as its own
            assert store.unfinished() == []
        finally:
            services.close()


async def test_a_commit_whose_prev_data_is_not_the_last_tree_seen_is_read_again(
    backend: Backend,
) -> None:
    """A genuine, consistent commit that follows the last rev seen but not the last tree
    (a fork of the repo): applied, and the repo read again from its PDS."""
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        board = next(w for w in seeded.writes if "/space.atbb.forum.board/" in w.uri)
        member = pds.account(seeded.accounts[3].did)
        assert member is not None
        settings = firehose_settings(backend, "fork", network, seeded.forum_did)
        services = bootstrap(settings)
        try:
            async with following(services) as live:
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                last_rev = pds.repo(member.did).rev
                captured = Captured()
                later = DevClock(offset_us=3_600_000_000)
                fork = Repo(member.did, member.key, TidClock(later, clock_id=9),
                            NoJetstream(), captured)
                fork.create(POST, post_record("forked", board.uri, board.cid),
                            rkey="3zzzzzzzzzzz6")
                commit = captured.commits[-1]
                assert commit.rev > last_rev and commit.prev_data is not None
                pds.firehose.repo_commit(dataclasses.replace(commit, since=last_rev))
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                assert isinstance(live.consumer, FirehoseConsumer)
                assert live.consumer.stats.rejected == 0
                assert live.consumer.stats.resyncs == 1
                resyncs = live.consumer.resyncs
                assert resyncs is not None
                await wait_for(lambda: resyncs.status.completed == 1, timeout=15)
                assert "is not the tree" in resyncs.status.last[-1]
        finally:
            services.close()


async def test_a_sync_frame_naming_another_commit_reads_the_repo_again(
    backend: Backend,
) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(2, "small", via="direct")
        pds = network.pds["pds1"]
        member = pds.account(seeded.accounts[2].did)
        assert member is not None
        services = bootstrap(firehose_settings(backend, "sync", network, seeded.forum_did))
        try:
            async with following(services) as live:
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                assert isinstance(live.consumer, FirehoseConsumer)
                repo = pds.repo(member.did)
                current = repo.commit()
                # the repo's own current commit: nothing to do
                pds.firehose.publish("#sync", {"did": member.did, "rev": current.rev,
                                               "blocks": write_car([current.cid], [
                                                   (current.cid, current.block)]),
                                               "time": "2026-07-01T00:00:00.000Z"})
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                assert live.consumer.stats.resyncs == 0
                captured = Captured()
                other = Repo(member.did, member.key,
                             TidClock(DevClock(offset_us=3_600_000_000), clock_id=9),
                             NoJetstream(), captured)
                other.create(POST, {"$type": POST, "text": "elsewhere",
                                    "createdAt": "2026-03-20T10:00:00.000Z"})
                stated = other.commit()
                pds.firehose.publish("#sync", {"did": member.did, "rev": stated.rev,
                                               "blocks": write_car([stated.cid], [
                                                   (stated.cid, stated.block)]),
                                               "time": "2026-07-01T00:00:00.000Z"})
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                assert live.consumer.stats.resyncs == 1
                assert live.consumer.appender.stats.by_kind["sync"] == 2
        finally:
            services.close()


def captured_frames() -> list[bytes]:
    data = zstandard.ZstdDecompressor().decompress(
        (CAPTURE / "frames.bin.zst").read_bytes(), max_output_size=1 << 26)
    frames, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        frames.append(data[pos + 4:pos + 4 + length])
        pos += 4 + length
    return frames


async def test_the_captured_relay_frames_are_read_and_their_commits_dropped_cheaply(
    backend: Backend,
) -> None:
    """Real traffic of other applications: every frame decodes, nothing is stored, the
    cursor reaches the capture's last seq."""
    frames = captured_frames()
    async with DevNetwork() as network:
        for index, frame in enumerate(frames):
            network.pds["pds1"].firehose.publish_raw(frame, 31527015322 + index)
        services = bootstrap(firehose_settings(backend, "capture", network, "did:plc:forum"))
        try:
            async with following(services) as live:
                await wait_for(lambda: live.consumer.status.cursor == 31527015471)
                assert isinstance(live.consumer, FirehoseConsumer)
                assert live.consumer.status.bad_frames == {}
                assert live.consumer.stats.commits == 148
                assert live.consumer.stats.dropped == 148
                assert live.consumer.appender.stats.by_kind["identity"] == 1
                assert live.consumer.appender.stats.by_kind["account"] == 1
            assert services.event_log.count() == 0
        finally:
            services.close()


async def test_disconnects_and_restarts_resume_from_the_stored_seq_losing_and_doubling_nothing(
    backend: Backend,
) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(3, "small", via="direct")
        pds = network.pds["pds1"]
        expected = await firehose_ingest_all(backend, "calm", network, seeded.forum_did)
        settings = firehose_settings(backend, "rough", network, seeded.forum_did)
        services = bootstrap(settings, clock=FixedClock())
        try:
            pds.firehose.inject(Disconnect(after=60, times=3))
            pds.firehose.inject(Resend(last=20, times=2))
            pds.firehose.inject(Malformed(payload="not cbor"))
            # Restarted once every member has written: identity and account events of a
            # DID not yet known are parked in memory until its first record (see
            # docs/ingest.md), and a new process starts with none parked.
            restart_at = last_first_commit(pds.firehose.frames())
            assert restart_at < pds.firehose.seq - 50
            async with following(services, policy=FAST_RETRY) as live:
                await wait_for(lambda: (live.consumer.status.cursor or 0) > restart_at)
                assert live.consumer.status.connects >= 2
                bad = sum(live.consumer.status.bad_frames.values())
            # a restart: the stored seq is where the next process starts
            stored = services.event_log.cursor(FIREHOSE_CURSOR_SOURCE)
            assert stored is not None
            resumed = LiveIngest(services, initial_cursor=0)
            assert await resumed.consumer.resume_cursor() == stored.value
            assert resumed.consumer.subscribe_url(stored.value).endswith(
                f"?cursor={stored.value}")
            async with following(services, policy=FAST_RETRY) as live:
                await wait_for(lambda: at_seq(services, live, pds.firehose.seq))
                bad += sum(live.consumer.status.bad_frames.values())
            assert bad == 1  # the malformed frame, counted and skipped
            assert dump(services) == expected
            count = services.event_log.count()
        finally:
            services.close()
        calm = bootstrap(firehose_settings(backend, "calm", network, seeded.forum_did))
        try:
            assert calm.event_log.count() == count
        finally:
            calm.close()


def last_first_commit(frames: list[Any]) -> int:
    """The seq of the last frame that is some repo's first commit."""
    first: dict[str, int] = {}
    for frame in frames:
        decoded = decode_frame(frame.data)
        if isinstance(decoded, CommitFrame):
            first.setdefault(decoded.repo, decoded.seq)
    return max(first.values())


async def firehose_ingest_all(backend: Backend, name: str, network: DevNetwork,
                              forum_did: str) -> dict[str, list[str]]:
    services = bootstrap(firehose_settings(backend, name, network, forum_did),
                         clock=FixedClock())
    try:
        async with following(services) as live:
            await wait_for(lambda: at_seq(services, live, network.pds["pds1"].firehose.seq))
        return dump(services)
    finally:
        services.close()


async def test_the_read_models_after_the_firehose_equal_those_after_jetstream(
    backend: Backend,
) -> None:
    async with DevNetwork() as network:
        seeded = await network.seed(4, "small", via="direct")
        pds = network.pds["pds1"]
        member = seeded.accounts[3]
        pds.update_handle(member.did, "renamed.test")
        pds.set_account_status(seeded.accounts[4].did, "deactivated")
        by_jetstream = await ingest_all(backend, "by_jetstream", network, seeded.forum_did)
        by_firehose = await firehose_ingest_all(backend, "by_firehose", network,
                                                seeded.forum_did)
        assert sum(len(rows) for rows in by_firehose.values()) > 400
        # Identity and account events keep their stream's seq: the relay's on both in
        # production (Jetstream copies it), but the devnet's Jetstream numbers its own
        assert without_seqs(by_firehose) == without_seqs(by_jetstream)
        assert by_firehose["members"] != by_jetstream["members"]


def without_seqs(tables: dict[str, list[str]]) -> dict[str, list[str]]:
    out = dict(tables)
    rows = [json.loads(row) for row in tables["members"]]
    for row in rows:
        assert row.pop("handle_seq", None) is not None or row["handle"] is None
        row.pop("account_seq", None)
    out["members"] = sorted(json.dumps(row, sort_keys=True) for row in rows)
    return out
