"""The relay firehose (``com.atproto.sync.subscribeRepos``, of a relay or a PDS) as an
ingest source: signed commits, checked before anything is appended.

Everything after the frame is what Jetstream's lines go through (the appender's batches
with the cursor in the same transaction, the log's duplicate and stale rules, the
projections), and the connection loop is :class:`~appview.ingest.consumer.StreamConsumer`.
What is the firehose's own:

- the cursor is the stream's ``seq`` (cursor source ``firehose``, apart from Jetstream's
  ``time_us``): resuming asks for the frames after it, so nothing is re-read;
- a ``#commit`` with no ``space.atbb.*`` operation is dropped after its header fields
  are read, unless its repo is one the log knows (then only its rev and tree root are
  read, to follow the repo's chain of commits);
- a ``#commit`` with one is verified (``appview.repos.commit``): its CAR slice, each
  block against its CID, its signature against the ``#atproto`` key of the author's DID
  document (through the backfill resolver and its cache; a signature that fails with a
  cached key is tried once with the document fetched again), its operations against its
  tree and, with ``prevData``, undone back to ``prevData``. A commit that fails is kept
  as ``CommitRejected`` events with the reason and never applied;
- a verified commit of a followed repo whose ``since`` is not the last rev seen (a gap),
  or whose ``prevData`` is not the last tree (a fork), sends the repo to be read again
  from ``getRepo`` (``appview.backfill.resync``); so do a ``tooBig`` commit, a commit
  whose key cannot be had, and a ``#sync`` naming a commit other than the last seen;
- ``#identity`` (the handle, and the DID document read afresh next time), ``#account``,
  ``#info`` (``OutdatedCursor``: events were lost; a full_sync is asked for) and error
  frames (the server closes; ``FutureCursor`` makes the next connection start live).

The chain of each repo (its last rev and tree root) is kept in memory for the repos the
log knows and those that wrote a ``space.atbb.*`` record since the start: after a
restart each repo's first commit is checked on its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast
from urllib.parse import urlencode

import aiohttp

from appview.backfill.fetcher import PdsFetcher
from appview.backfill.progress import BackfillStore
from appview.backfill.resolver import DidNotResolved, DidResolver
from appview.backfill.resync import RepoResyncs
from appview.clock import Clock
from appview.ingest.appender import LineAppender, LineError
from appview.ingest.consumer import (
    FIREHOSE_CURSOR_SOURCE,
    WEBSOCKET_MAX_MESSAGE,
    ReconnectPolicy,
    StreamConsumer,
)
from appview.ingest.frames import (
    AccountFrame,
    CommitFrame,
    ErrorFrame,
    FrameError,
    IdentityFrame,
    InfoFrame,
    OtherFrame,
    SyncFrame,
    decode_frame,
)
from appview.repos.car import CarError, read_car_blocks
from appview.repos.cbor import CborError, Cid, decode_json
from appview.repos.commit import (
    CommitInvalid,
    RepoOp,
    SignedCommit,
    check_operations,
    read_commit,
    read_slice,
)
from appview.settings import Settings
from events.ids import DID, NSID, TID, Handle, RecordKey
from events.lexicon import LexiconValidator
from events.log import EventLog
from events.model import (
    ATBB_PREFIX,
    AccountStatus,
    AccountStatusChanged,
    CommitRejected,
    IdentityChanged,
    LogEvent,
    RecordEvent,
)

log = logging.getLogger(__name__)

MAX_FOLLOWED_REPOS = 200_000  # repos whose chain is kept; the least recently seen go
_STATUSES = frozenset({"active", "takendown", "suspended", "deleted", "deactivated",
                       "desynchronized", "throttled"})


@dataclass(slots=True)
class RepoChain:
    rev: str
    data: Cid


@dataclass
class FirehoseStats:
    """What the firehose's own checks saw (``ConsumerStatus`` has the rest)."""

    commits: int = 0
    dropped: int = 0  # commits with no space.atbb.* operation
    verified: int = 0
    rejected: int = 0
    resyncs: int = 0
    infos: Counter[str] = field(default_factory=Counter)
    last_rejection: str | None = None


def firehose_time_us(text: str) -> int | None:
    """Unix µs of a frame's ``time`` (ISO 8601), None when it is not one."""
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1_000_000)
    except ValueError:
        return None


class FirehoseConsumer(StreamConsumer):
    name = "firehose"

    def __init__(
        self,
        *,
        url: str,
        settings: Settings,
        event_log: EventLog,
        appender: LineAppender,
        validator: LexiconValidator,
        clock: Clock,
        batch_size: int = 500,
        batch_seconds: float = 0.25,
        heartbeat: float | None = 10.0,
        policy: ReconnectPolicy | None = None,
        rng: random.Random | None = None,
        on_batch: Callable[[], None] | None = None,
        on_outdated_cursor: Callable[[], None] | None = None,
        initial_cursor: int | None = None,
        verify: bool = True,
    ) -> None:
        super().__init__(url=url, event_log=event_log, appender=appender, clock=clock,
                         batch_size=batch_size, batch_seconds=batch_seconds,
                         heartbeat=heartbeat, policy=policy, rng=rng, on_batch=on_batch,
                         initial_cursor=initial_cursor)
        self._settings = settings
        self._validator = validator
        self._forum_did = settings.forum_did
        # False only to measure decoding alone (bench.live_ingest): nothing is checked
        self._verify = verify
        self._on_outdated_cursor = on_outdated_cursor
        self._chains: OrderedDict[str, RepoChain] = OrderedDict()
        self._resolver: DidResolver | None = None
        self._resyncs: RepoResyncs | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_stop = asyncio.Event()
        self._live_only = False  # after FutureCursor: the host's seq went back
        self.stats = FirehoseStats()

    @property
    def resyncs(self) -> RepoResyncs | None:
        return self._resyncs

    def subscribe_url(self, cursor: int | None) -> str:
        if cursor is None:
            return self._url
        separator = "&" if "?" in self._url else "?"
        return f"{self._url}{separator}{urlencode({'cursor': str(cursor)})}"

    async def resume_cursor(self) -> int | None:
        if self._live_only:
            return None
        state = await asyncio.to_thread(self._log.cursor, FIREHOSE_CURSOR_SOURCE)
        if state is None:
            return self._initial_cursor
        self._note_cursor(state.value)
        return state.value

    async def _started(self, session: aiohttp.ClientSession) -> None:
        settings = self._settings
        self._resolver = DidResolver(settings, session)
        fetcher = PdsFetcher(session, rate=settings.backfill_rate_limit)
        store = await asyncio.to_thread(BackfillStore, settings, self._clock)
        self._resyncs = RepoResyncs(settings, self._log, self._validator, self._clock,
                                    self._resolver, fetcher, store)
        self._resync_stop.clear()
        self._resync_task = asyncio.create_task(self._resyncs.run(self._resync_stop))

    async def _stopped(self) -> None:
        self._resync_stop.set()
        if self._resync_task is not None:
            try:
                await asyncio.wait_for(self._resync_task, timeout=30)
            except TimeoutError:
                log.error("a repo re-read did not finish within 30s of stopping")
            except Exception:  # its failures are its runs'; the stream has stopped anyway
                log.exception("the repo re-reads ended with an error")
        if self._resolver is not None:
            await self._resolver.flush()

    # --- frames -----------------------------------------------------------------------

    async def _handle_message(self, message: aiohttp.WSMessage) -> None:
        self._line_number += 1
        self.status.frames += 1
        received = self.status.last_received_at = self._clock.now_us()
        if message.type != aiohttp.WSMsgType.BINARY:
            self._bad(f"{message.type.name.lower()} frame: the firehose sends binary frames")
            return
        try:
            frame = decode_frame(message.data)
        except FrameError as exc:
            self._bad(str(exc))
            return
        if isinstance(frame, ErrorFrame):
            if frame.error == "FutureCursor":
                # the stored seq is ahead of this host's: it was reset or replaced
                log.error("the firehose host has no seq as high as ours (%s); following it"
                          " live from now on", frame.message)
                self._live_only = True
            raise aiohttp.ClientConnectionError(
                f"error frame: {frame.error}" + (f": {frame.message}" if frame.message else ""))
        if isinstance(frame, InfoFrame):
            self.stats.infos[frame.name] += 1
            log.warning("firehose info %s: %s", frame.name, frame.message)
            if frame.name == "OutdatedCursor" and self._on_outdated_cursor is not None:
                self._on_outdated_cursor()
            return
        if isinstance(frame, OtherFrame):
            self._appender.stats.by_kind[frame.kind] += 1
            self._appender.stats.ignored += 1
            if frame.seq is not None:
                self._appender.advance(frame.seq)
            return
        time_us = firehose_time_us(frame.time)
        if time_us is not None:
            self._note_event_time(time_us, received)
        if isinstance(frame, CommitFrame):
            await self._commit(frame)
        elif isinstance(frame, IdentityFrame):
            self._identity(frame)
        elif isinstance(frame, AccountFrame):
            self._account(frame)
        else:
            await self._sync(frame)
        self._appender.advance(frame.seq)

    def _bad(self, reason: str) -> None:
        self.status.bad_frames[reason.split(":")[0]] += 1
        self._appender.note_error(LineError(self._line_number, reason))

    def _identity(self, frame: IdentityFrame) -> None:
        stats = self._appender.stats
        stats.by_kind["identity"] += 1
        if not DID.is_valid(frame.did):
            self._bad(f"#identity did: not a DID: {frame.did[:80]!r}")
            return
        handle = frame.handle
        if handle is not None and not Handle.is_valid(handle):
            self._bad(f"#identity handle: not a handle: {handle[:80]!r}")
            return
        if self._resolver is not None:
            self._resolver.forget(frame.did)  # its document (and key) may have changed
        self._appender.add(IdentityChanged(frame.did, handle, frame.seq, frame.time,
                                           "firehose", frame.seq, self._clock.now_us()),
                           self._line_number)

    def _account(self, frame: AccountFrame) -> None:
        self._appender.stats.by_kind["account"] += 1
        if not DID.is_valid(frame.did):
            self._bad(f"#account did: not a DID: {frame.did[:80]!r}")
            return
        if frame.status is not None and frame.status not in _STATUSES:
            self._bad(f"#account status: unknown status {frame.status[:40]!r}")
            return
        status = cast(AccountStatus | None, frame.status)
        self._appender.add(AccountStatusChanged(frame.did, frame.active, status, frame.seq,
                                                frame.time, "firehose", frame.seq,
                                                self._clock.now_us()),
                           self._line_number)

    async def _sync(self, frame: SyncFrame) -> None:
        """The repo's current commit: if it is not the one we last saw, read it again."""
        self._appender.stats.by_kind["sync"] += 1
        chain = self._chains.get(frame.did)
        if chain is None and not self._appender.knows(frame.did):
            return
        try:
            root, blocks = read_slice(frame.blocks)
            commit = read_commit(blocks, root)
            if commit.did != frame.did:
                raise CommitInvalid(f"the commit is {commit.did}'s, not {frame.did}'s")
            if self._verify:
                await self._check_signature(commit)
        except CommitInvalid as exc:
            self._bad(f"#sync of {frame.did}: {exc}")
            return
        except DidNotResolved as exc:
            self._bad(f"#sync of {frame.did}: no signing key: {exc}")
            return
        if chain is None or chain.rev != commit.rev or chain.data != commit.data:
            self._resync(frame.did, f"#sync at rev {commit.rev}"
                         + ("" if chain is None else f" (last seen {chain.rev})"))
        self._follow(frame.did, RepoChain(commit.rev, commit.data))

    # --- commits ----------------------------------------------------------------------

    async def _commit(self, frame: CommitFrame) -> None:
        stats = self.stats
        stats.commits += 1
        ours = [op for op in frame.ops if op.path.startswith(ATBB_PREFIX)]
        self._appender.stats.by_kind["commit"] += 1
        if not ours:
            stats.dropped += 1
            self._appender.stats.ignored += 1
            if frame.repo in self._chains or self._appender.knows(frame.repo):
                self._follow_unverified(frame)
            return
        if not self._verify:
            self._append_records(frame, ours, _blocks_unchecked(frame.blocks))
            return
        if frame.too_big:
            self._reject(frame, ours, "the commit is too big to carry its blocks")
            self._resync(frame.repo, f"tooBig commit at rev {frame.rev}")
            return
        try:
            commit, blocks = await self._verified(frame)
        except CommitInvalid as exc:
            self._reject(frame, ours, str(exc))
            return
        except DidNotResolved as exc:
            self._reject(frame, ours, f"no signing key to check the commit with: {exc}")
            self._resync(frame.repo, f"commit at rev {frame.rev} could not be checked: {exc}")
            return
        stats.verified += 1
        self._check_chain(frame, commit)
        self._append_records(frame, ours, blocks)

    async def _verified(self, frame: CommitFrame) -> tuple[SignedCommit, dict[Cid, bytes]]:
        for name, value, check in (("repo", frame.repo, DID), ("rev", frame.rev, TID)):
            if not check.is_valid(value):
                raise CommitInvalid(f"{name} {value[:80]!r} is not a valid {check.__name__}")
        root, blocks = read_slice(frame.blocks)
        if root != frame.commit:
            raise CommitInvalid(f"the CAR slice's root {root} is not the commit {frame.commit}")
        commit = read_commit(blocks, frame.commit)
        if commit.did != frame.repo:
            raise CommitInvalid(f"the commit is {commit.did}'s, not {frame.repo}'s")
        if commit.rev != frame.rev:
            raise CommitInvalid(f"the commit's rev {commit.rev} is not the frame's {frame.rev}")
        await self._check_signature(commit)
        check_operations(commit, frame.ops, blocks, frame.prev_data)
        return commit, blocks

    async def _check_signature(self, commit: SignedCommit) -> None:
        assert self._resolver is not None
        key = await self._resolver.signing_key(commit.did)
        if commit.signed_by(key):
            return
        # the key may have been rotated since it was cached
        fresh = await self._resolver.signing_key(commit.did, fresh=True)
        if fresh.did_key == key.did_key or not commit.signed_by(fresh):
            raise CommitInvalid(f"the signature does not verify with the #atproto key of"
                                f" {commit.did}'s DID document ({fresh.did_key})")

    def _check_chain(self, frame: CommitFrame, commit: SignedCommit) -> None:
        chain = self._chains.get(frame.repo)
        if chain is not None and commit.rev > chain.rev:
            if frame.since != chain.rev:
                self._resync(frame.repo, f"rev jump: the last commit seen was {chain.rev},"
                             f" this one ({commit.rev}) follows {frame.since}")
            elif frame.prev_data is not None and frame.prev_data != chain.data:
                self._resync(frame.repo, f"prevData {frame.prev_data} of rev {commit.rev} is"
                             f" not the tree {chain.data} of rev {chain.rev}")
        if chain is None or commit.rev > chain.rev:
            self._follow(frame.repo, RepoChain(commit.rev, commit.data))

    def _follow_unverified(self, frame: CommitFrame) -> None:
        """A commit of a followed repo that touches nothing of ours: only its place in
        the repo's chain is read (a forged one costs a re-read at most)."""
        try:
            _root, blocks = read_car_blocks(frame.blocks, verify=False)
            commit = read_commit(blocks, frame.commit)
        except (CarError, CommitInvalid):
            return
        if commit.did == frame.repo and commit.rev == frame.rev:
            self._check_chain(frame, commit)

    def _follow(self, did: str, chain: RepoChain) -> None:
        self._chains[did] = chain
        self._chains.move_to_end(did)
        if len(self._chains) > MAX_FOLLOWED_REPOS:
            self._chains.popitem(last=False)

    def _resync(self, did: str, reason: str) -> None:
        self.stats.resyncs += 1
        if self._resyncs is not None:
            self._resyncs.request(did, reason)

    def _reject(self, frame: CommitFrame, ours: list[RepoOp], reason: str) -> None:
        self.stats.rejected += 1
        self.stats.last_rejection = f"{frame.repo} rev {frame.rev}: {reason}"
        now = self._clock.now_us()
        for op in ours:
            collection, _, rkey = op.path.partition("/")
            self._appender.add(CommitRejected(
                frame.repo, collection, rkey, op.action, None if op.cid is None else str(op.cid),
                frame.rev, frame.seq, reason, "firehose", frame.seq, now), self._line_number)

    def _append_records(self, frame: CommitFrame, ours: list[RepoOp],
                        blocks: dict[Cid, bytes]) -> None:
        now = self._clock.now_us()
        events: list[LogEvent] = []
        did, rev = frame.repo, frame.rev
        try:
            if not DID.is_valid(did) or not TID.is_valid(rev):
                raise CommitInvalid(f"repo {did[:80]!r} or rev {rev[:20]!r} is malformed")
            for op in ours:
                collection, _, rkey = op.path.partition("/")
                if collection not in self._validator.collections and \
                        not NSID.is_valid(collection):
                    raise CommitInvalid(f"{op.path}: the collection is not an NSID")
                if not RecordKey.is_valid(rkey):
                    raise CommitInvalid(f"{op.path}: not a record key")
                if op.action == "delete":
                    verdict = self._validator.validate_delete(collection, rkey, did=did,
                                                              forum_did=self._forum_did)
                    events.append(RecordEvent("delete", did, collection, rkey, rev, None, None,
                                              verdict.valid, verdict.reason, "firehose",
                                              frame.seq, now))
                    continue
                assert op.cid is not None
                block = blocks.get(op.cid)
                if block is None:
                    raise CommitInvalid(f"the record block {op.cid} of {op.path} is not in"
                                        f" the CAR slice")
                try:
                    record = decode_json(block)
                except CborError as exc:
                    raise CommitInvalid(f"the record {op.path} is not DAG-CBOR: {exc}") \
                        from exc
                if not isinstance(record, dict):
                    raise CommitInvalid(f"the record {op.path} is not a map")
                verdict = self._validator.validate(collection, rkey, record, did=did,
                                                   forum_did=self._forum_did)
                events.append(RecordEvent(op.action, did, collection, rkey, rev, str(op.cid),
                                          record, verdict.valid, verdict.reason, "firehose",
                                          frame.seq, now))
        except CommitInvalid as exc:
            self._reject(frame, ours, str(exc))
            return
        for event in events:
            self._appender.add(event, self._line_number)


def _blocks_unchecked(car: bytes) -> dict[Cid, bytes]:
    try:
        return read_car_blocks(car, verify=False)[1]
    except CarError:
        return {}



async def latest_seq(url: str, wait: float = 3.0) -> int | None:
    """The seq of the first frame a live connection to ``url`` receives within ``wait``
    seconds (a relay sends one at once; a quiet PDS may send none): None if none came or
    the host could not be reached."""
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, max_msg_size=WEBSOCKET_MAX_MESSAGE) as ws:
            async with asyncio.timeout(wait):
                while True:
                    message = await ws.receive()
                    if message.type != aiohttp.WSMsgType.BINARY:
                        return None
                    try:
                        frame = decode_frame(message.data)
                    except FrameError:
                        continue
                    seq = getattr(frame, "seq", None)
                    if isinstance(seq, int):
                        return seq
    except (TimeoutError, aiohttp.ClientError, OSError):
        return None
