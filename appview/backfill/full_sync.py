"""full_sync: every known repo read from its PDS, compared with what the log says it
holds, the differences appended as ``backfill`` events.

Known repos are the Forum account (first, alone: forum-owned collections before anything
that refers to them) and every DID the log holds a space.atbb.* record of (members,
authors, reactors), plus those discovered: the repos a relay lists as holding
memberships or posts (``RELAY_URL``), and those on the known repos' PDS hosts
(``listRepos``) that ``describeRepo`` does not show to be without space.atbb.* records.
A record the repo has and the log lacks is a create; a different CID is an update; a
record the log holds and the repo no longer has is a delete. Every event carries the
repo's commit rev, so the store's per-record rule (an older rev is never applied over a
newer one) settles any race with live events of the same repo: a live write newer than
the snapshot wins whichever is appended first (ADR 0004).

Handles: each repo's DID document claim is verified both ways (``appview.handles``)
before it replaces the handle the log holds; a refuted claim leaves the member without
a handle (pages show the DID).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from appview.backfill.fetcher import FetchError, PdsFetcher, RepoSnapshot, RepoUnavailable
from appview.backfill.progress import BackfillStore
from appview.backfill.resolver import DidResolver
from appview.clock import Clock
from appview.handle_claims import identity_to_log
from appview.handles import HandleResolver
from events import collections as c
from events.lexicon import LexiconValidator
from events.log import EventLog, RecordHead
from events.model import (
    ATBB_PREFIX,
    IdentityChanged,
    LogEvent,
    RecordEvent,
    RecordOperation,
    at_uri,
    int_to_tid,
)

log = logging.getLogger(__name__)

# What a relay is asked for: every forum member holds a membership, every author a post.
DISCOVERY_COLLECTIONS = (c.MEMBERSHIP, c.POST)


def known_repos(event_log: EventLog, forum_did: str) -> list[str]:
    """The Forum account first, then every other DID the log knows, in order."""
    others = sorted(d for d in event_log.known_dids() if d != forum_did)
    return ([forum_did] if forum_did else []) + others


def differences(snapshot: RepoSnapshot, heads: dict[str, RecordHead], *,
                validator: LexiconValidator, forum_did: str, observed_at: int,
                fallback_rev: str) -> list[RecordEvent]:
    """The events that bring the log's view of one repo to ``snapshot``."""
    did = snapshot.did
    rev = snapshot.rev or fallback_rev
    events: list[RecordEvent] = []
    present: set[str] = set()
    for record in snapshot.records:
        uri = at_uri(did, record.collection, record.rkey)
        present.add(uri)
        head = heads.get(uri)
        if head is not None and not head.deleted and head.cid == record.cid:
            continue
        operation: RecordOperation = "create" if head is None or head.deleted else "update"
        verdict = validator.validate(record.collection, record.rkey, record.value, did=did,
                                     forum_did=forum_did)
        events.append(RecordEvent(operation, did, record.collection, record.rkey, rev,
                                  record.cid, record.value, verdict.valid, verdict.reason,
                                  "backfill", None, observed_at))
    for uri, head in sorted(heads.items()):
        if head.deleted or uri in present:
            continue
        _, _, path = uri.removeprefix("at://").partition("/")
        collection, _, rkey = path.partition("/")
        if not collection.startswith(ATBB_PREFIX):
            continue
        verdict = validator.validate_delete(collection, rkey, did=did, forum_did=forum_did)
        events.append(RecordEvent("delete", did, collection, rkey, rev, None, None,
                                  verdict.valid, verdict.reason, "backfill", None,
                                  observed_at))
    return events


class ForumRepoUnreadable(RuntimeError):
    """The Forum account's repo could not be read: the sync fails."""


@dataclass
class _Finished:
    did: str
    events: list[LogEvent]
    failed: bool
    done: asyncio.Future[None]


class RepoWriter:
    """Writes finished repos in groups: the events of every repo that finished while the
    previous group was being written go into the log in one transaction, then those
    repos are marked done in one more. Concurrent repos otherwise queue for the database
    lock a commit at a time (measured on SQLite: about 80 ms per repo between its append
    and its progress update, most of it waiting for the lock).
    A repo is marked done only after its events are in the log, so a resumed run never
    skips one."""

    MAX_EVENTS = 5_000  # per log transaction, so one group never holds memory for long

    def __init__(self, event_log: EventLog, store: BackfillStore, run_id: str) -> None:
        self._log = event_log
        self._store = store
        self._run_id = run_id
        self._queue: asyncio.Queue[_Finished] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def finish(self, did: str, events: list[LogEvent], *, failed: bool) -> None:
        """Return once ``did``'s events are in the log and the repo is marked done;
        raises what the write raised (the repo is then not marked)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_groups())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Finished(did, events, failed, done))
        await done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _write_groups(self) -> None:
        while True:
            group = [await self._queue.get()]
            size = len(group[0].events)
            while not self._queue.empty() and size < self.MAX_EVENTS:
                group.append(self._queue.get_nowait())
                size += len(group[-1].events)
            try:
                await asyncio.to_thread(self._write, group)
            except Exception as exc:  # every repo of the group reports it
                for item in group:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            for item in group:
                if not item.done.done():
                    item.done.set_result(None)

    def _write(self, group: list[_Finished]) -> None:
        events = [event for item in group for event in item.events]
        appended = self._log.append(events).appended if events else 0
        self._store.repos_done(self._run_id, [(item.did, item.failed) for item in group],
                               records=appended)


@dataclass
class FullSync:
    event_log: EventLog
    validator: LexiconValidator
    forum_did: str
    store: BackfillStore
    resolver: DidResolver
    fetcher: PdsFetcher
    clock: Clock
    concurrency: int
    # None: handles are not checked and the log's stay as they are
    handles: HandleResolver | None = None
    relay_url: str = ""
    # told of each durable step: "listed" (the run's repos are recorded), "repo" (one
    # more repo is written and marked)
    on_step: Callable[[str], None] | None = None
    discover_limit: int = 10_000  # repos listed per PDS host when looking for new ones

    async def run(self, run_id: str) -> None:
        """Sync every repo of the run not yet done, listing them first unless a run
        killed earlier already did. Raises ``ForumRepoUnreadable`` when the Forum
        account's repo could not be read: without the forum's structure the sync is no
        baseline, and gap detection must try again."""
        if not await asyncio.to_thread(self.store.listed, run_id):
            known = await asyncio.to_thread(known_repos, self.event_log, self.forum_did)
            found = await self.discover(run_id, known)
            await asyncio.to_thread(self.store.add_repos, run_id, known + found)
            self._step("listed")
        pending = await asyncio.to_thread(self.store.pending_repos, run_id)
        await asyncio.to_thread(self.resolver.prefetch, pending)
        writer = RepoWriter(self.event_log, self.store, run_id)
        try:
            if self.forum_did in pending:  # the forum's structure before what refers to it
                error = await self.sync_repo(run_id, self.forum_did, writer)
                if error is not None:
                    raise ForumRepoUnreadable(
                        f"the Forum account's repo ({self.forum_did}) could not be read:"
                        f" {error}")
                pending.remove(self.forum_did)
            gate = asyncio.Semaphore(self.concurrency)

            async def one(did: str) -> None:
                async with gate:
                    await self.sync_repo(run_id, did, writer)

            await asyncio.gather(*(one(did) for did in pending))
        finally:
            await writer.close()
            await self.resolver.flush()

    def _step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)

    async def discover(self, run_id: str, known: list[str]) -> list[str]:
        """Repos the log has never seen that hold space.atbb.* records (members who
        joined while the appview was away, past the firehose's retention, or on PDS
        hosts it never heard of): what the relay lists, and the known repos' PDS hosts'
        ``listRepos``. ``describeRepo`` is only a hint there: a repo it answers for
        without space.atbb.* collections is left out, one it fails on is synced (the sync
        then tells). A relay or a host that cannot list is one error row; what it listed
        before failing is kept, and the rest goes on."""
        seen = set(known)
        found: list[str] = []
        if self.relay_url:
            for collection in DISCOVERY_COLLECTIONS:
                try:
                    async for page in self.fetcher.repos_by_collection(self.relay_url,
                                                                       collection):
                        found += [did for did in page if did not in seen]
                        seen.update(page)
                except FetchError as exc:
                    await asyncio.to_thread(
                        self.store.add_error, run_id, self.forum_did or "(relay)", collection,
                        f"could not list the repos holding {collection} at the relay"
                        f" {self.relay_url}: {exc}")
        hosts: dict[str, str] = {}  # host url -> a DID it serves, for the error note
        await asyncio.to_thread(self.resolver.prefetch, known)
        gate = asyncio.Semaphore(self.concurrency)

        async def host_of(did: str) -> str | None:
            async with gate:
                try:
                    return await self.resolver.pds(did)
                except FetchError:
                    return None  # sync_repo records it

        # resolved side by side: one at a time, the directory's round trips add up
        for did, host in zip(known, await asyncio.gather(*map(host_of, known)), strict=True):
            if host is not None:
                hosts.setdefault(host, did)

        async def worth_syncing(host: str, did: str) -> bool:
            async with gate:
                try:
                    return await self.fetcher.has_forum_records(host, did)
                except RepoUnavailable:
                    return False  # not readable now: nothing of it to sync
                except FetchError as exc:
                    log.info("describeRepo of %s failed (%s): syncing it to find out", did, exc)
                    return True

        for host, via in sorted(hosts.items()):
            try:
                async for page in self.fetcher.hosted_repos(host, limit=self.discover_limit):
                    fresh = [did for did in page if did not in seen]
                    seen.update(page)
                    hints = await asyncio.gather(*(worth_syncing(host, d) for d in fresh))
                    found += [did for did, hint in zip(fresh, hints, strict=True) if hint]
            except FetchError as exc:
                await asyncio.to_thread(self.store.add_error, run_id, via, None,
                                        f"could not list the repos of {host}: {exc}")
        return sorted(found)

    async def identity_event(self, did: str, now: int) -> IdentityChanged | None:
        """The handle the log should hold for ``did``, when it holds another: the one its
        DID document claims once verified both ways, or None (no handle: pages show the
        DID) when the claim is refuted. An inconclusive check changes nothing."""
        if self.handles is None:
            return None
        verdict = await self.handles.verify(did, self.resolver.handle(did))
        if verdict.outcome == "refuted" and await self.resolver.refresh(did):
            # the cached document may predate a handle change: ask the directory again
            verdict = await self.handles.verify(did, self.resolver.handle(did))
        if verdict.outcome == "unknown":
            log.info("the handle of %s was not checked: %s", did, verdict.reason)
            return None
        if verdict.outcome == "refuted":
            log.info("the handle of %s is not shown: %s", did, verdict.reason)
        return await asyncio.to_thread(identity_to_log, self.event_log, did, verdict.handle,
                                       source="backfill", now=now)

    async def sync_repo(self, run_id: str, did: str, writer: RepoWriter) -> str | None:
        """Read one repo and write what the log lacks; returns why it failed (the error
        row says it too), None when its events are in the log."""
        events: list[LogEvent] = []
        error: str | None = None
        handle_check: asyncio.Task[IdentityChanged | None] | None = None
        try:
            pds = await self.resolver.pds(did)
            now = self.clock.now_us()
            # the handle is checked while the repo is read: both mostly wait on the network
            handle_check = asyncio.create_task(self.identity_event(did, now))
            snapshot = await self.fetcher.fetch_repo(pds, did)
            heads = await asyncio.to_thread(self.event_log.repo_heads, did)
            events = list(differences(
                snapshot, heads, validator=self.validator, forum_did=self.forum_did,
                observed_at=now, fallback_rev=int_to_tid(now << 10)))
            try:
                identity = await handle_check
            except Exception:  # the repo's records still count without its handle
                log.exception("checking the handle of %s failed", did)
                identity = None
            if identity is not None:
                events.append(identity)
        except FetchError as exc:
            error = str(exc)
        except Exception as exc:  # one repo's surprise must not end the run
            log.exception("full_sync of %s failed", did)
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            if handle_check is not None and not handle_check.done():
                handle_check.cancel()
                await asyncio.gather(handle_check, return_exceptions=True)
            await asyncio.to_thread(self.store.add_error, run_id, did, None, error)
        try:
            await writer.finish(did, [] if error is not None else events,
                                failed=error is not None)
        except Exception as exc:  # the log refused the write: the repo failed, say why
            log.exception("writing the full_sync of %s failed", did)
            error = f"{type(exc).__name__}: {exc}"
            await asyncio.to_thread(self.store.add_error, run_id, did, None, error)
            await writer.finish(did, [], failed=True)
        self._step("repo")
        return error
