"""Writes a scenario into running devnet PDS hosts through the real XRPC clients.

Accounts are created on the :class:`PdsHost` objects (with the scenario's key seeds, so
their DIDs are the ones the scenario's records already name); every record then goes
through the ``atproto`` SDK's ``AsyncClient``: ``login`` with the app password, then
``createRecord`` / ``putRecord`` / ``deleteRecord`` against the author's PDS URL, exactly
as the appview's own writes will. Each answer's CID is checked against the scenario's.

With a frozen :class:`DevClock` given as ``clock`` (the PDS hosts' clock) and writes one
at a time, the same seed also gives the same revs and repository bytes.

``via="direct"`` writes through the hosts' ``Repo`` objects instead (same records, CIDs,
revs and Jetstream events, no HTTP): an XRPC write answers with a freshly built and
signed commit, which makes a large forum take minutes instead of seconds.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from atproto_client import AsyncClient
from atproto_client.exceptions import AtProtocolError
from atproto_client.request import AsyncRequest

from appview.devnet.clock import DevClock
from appview.devnet.forum_summary import ForumSummary, summarize
from appview.devnet.pds import PdsHost
from appview.devnet.repo import RepoError
from appview.devnet.scenario import Operation, Scenario, ScenarioAccount

SEED_CLOCK_MARGIN_US = 1_000_000
# Direct writes between two returns to the event loop (about 0.1 s of them).
DIRECT_WRITES_PER_YIELD = 200


class SeedError(RuntimeError):
    """Seeding could not go on; the message says which write and why."""


@dataclass(frozen=True, slots=True)
class SeededAccount:
    alias: str
    did: str
    handle: str
    password: str
    app_password: str
    pds_url: str


@dataclass(frozen=True, slots=True)
class SeededWrite:
    """One write as the PDS answered it: the commit ``rev``, and the record's ``cid``
    (None for a delete)."""

    uri: str
    op: str
    cid: str | None
    rev: str


@dataclass(frozen=True)
class SeededForum:
    seed: int
    forum_did: str
    forum_handle: str
    forum_name: str
    accounts: tuple[SeededAccount, ...]  # the Forum account first
    writes: tuple[SeededWrite, ...]
    expected: ForumSummary

    @property
    def categories(self) -> int:
        return self.expected.categories

    @property
    def boards(self) -> int:
        return len(self.expected.boards)

    @property
    def topics(self) -> int:
        """Topics a reader sees (none is hidden or by a banned author in the story)."""
        return self.expected.visible_topics

    def visible_replies(self) -> dict[str, int]:
        """Visible replies per topic at-uri."""
        return {topic.uri: topic.visible_replies for topic in self.expected.topics}

    def account(self, alias_or_handle: str) -> SeededAccount:
        for account in self.accounts:
            if alias_or_handle in (account.alias, account.handle):
                return account
        raise KeyError(alias_or_handle)


def scenario_end_us(operations: list[Operation], start_us: int) -> int:
    """Where seeding freezes the PDS clock: just after the scenario's last write."""
    last = operations[-1].at_us if operations else start_us
    return last + SEED_CLOCK_MARGIN_US


async def seed_forum(
    scenario: Scenario,
    hosts: Mapping[str, PdsHost],
    *,
    clock: DevClock | None = None,
    concurrency: int = 1,
    via: Literal["xrpc", "direct"] = "xrpc",
) -> SeededForum:
    """Creates the scenario's accounts on ``hosts`` (by PDS name) and writes every
    operation through XRPC. ``clock``, if given, is frozen at the scenario's end while
    seeding (reproducible revs) and released afterwards. ``concurrency`` > 1 writes that
    many accounts' operations at once (each account's own order is kept): faster for a
    large forum, but revs then depend on timing. ``via`` chooses XRPC (the default) or
    direct repository writes."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if via not in ("xrpc", "direct"):
        raise ValueError(f"via must be 'xrpc' or 'direct', got {via!r}")
    if not scenario.real_dids:
        raise SeedError("the scenario was built with real_dids=False: its DIDs are not PLC DIDs")
    operations = scenario.operation_list()
    if clock is not None:
        clock.freeze(scenario_end_us(operations, scenario.start_us))
    clients: dict[str, AsyncClient] = {}
    # One TLS context for every client: building one per client costs ~0.1 s each (it
    # loads the CA bundle), although loopback devnet URLs never use TLS.
    tls = ssl.create_default_context()
    try:
        accounts = tuple(_create_account(account, hosts) for account in scenario.accounts)
        if via == "direct":
            pds = {account.did: hosts[account.pds] for account in scenario.accounts}
            direct: list[SeededWrite] = []
            for index, op in enumerate(operations, start=1):
                direct.append(_write_direct(op, pds[op.did]))
                if index % DIRECT_WRITES_PER_YIELD == 0:
                    # Seconds of writes in one go would hold off the network's requests
                    # and a stop (SIGTERM) until the whole forum is written.
                    await asyncio.sleep(0)
            writes = tuple(direct)
        else:
            for account in accounts:
                clients[account.alias] = await _login(account, tls)
            writes = await _write_all(operations, clients, concurrency)
    finally:
        for client in clients.values():
            await client.request.close()
        if clock is not None:
            clock.unfreeze()
    return SeededForum(
        seed=scenario.seed,
        forum_did=scenario.forum.did,
        forum_handle=scenario.forum.handle,
        forum_name=scenario.forum_name,
        accounts=accounts,
        writes=writes,
        expected=summarize(operations, scenario.forum.did),
    )


def _create_account(account: ScenarioAccount, hosts: Mapping[str, PdsHost]) -> SeededAccount:
    host = hosts.get(account.pds)
    if host is None:
        raise SeedError(
            f"{account.handle} belongs on PDS {account.pds!r}, which this network does not "
            f"run (it runs {', '.join(sorted(hosts)) or 'none'})"
        )
    try:
        created = host.create_account(account.handle, account.password, seed=account.key_seed)
    except ValueError as exc:
        raise SeedError(f"cannot create {account.handle} on {account.pds}: {exc}") from exc
    if created.did != account.did:
        raise SeedError(
            f"{account.handle} got {created.did} on {account.pds}, the scenario expected "
            f"{account.did}: was it built for other PDS host names?"
        )
    return SeededAccount(
        account.alias, created.did, created.handle, created.password, created.app_password,
        host.url,
    )


async def _login(account: SeededAccount, tls: ssl.SSLContext) -> AsyncClient:
    client = AsyncClient(base_url=account.pds_url, request=AsyncRequest(verify=tls))
    try:
        await client.login(account.handle, account.app_password, fetch_bsky_profile=False)
    except AtProtocolError as exc:
        await client.request.close()
        raise SeedError(f"login of {account.handle} at {account.pds_url} failed: {exc}") from exc
    return client


async def _write_all(
    operations: list[Operation],
    clients: Mapping[str, AsyncClient],
    concurrency: int,
) -> tuple[SeededWrite, ...]:
    if concurrency == 1:
        return tuple([await _write(op, clients[op.actor]) for op in operations])
    queues: dict[str, list[tuple[int, Operation]]] = {}
    for index, op in enumerate(operations):
        queues.setdefault(op.actor, []).append((index, op))
    results: list[SeededWrite | None] = [None] * len(operations)
    gate = asyncio.Semaphore(concurrency)

    async def run(actor: str, queue: list[tuple[int, Operation]]) -> None:
        async with gate:
            for index, op in queue:
                results[index] = await _write(op, clients[actor])

    await asyncio.gather(*(run(actor, queue) for actor, queue in queues.items()))
    return tuple(write for write in results if write is not None)


async def _write(op: Operation, client: AsyncClient) -> SeededWrite:
    repo = client.com.atproto.repo
    base: dict[str, Any] = {"repo": op.did, "collection": op.collection, "rkey": op.rkey}
    try:
        if op.op == "delete":
            deleted = await repo.delete_record(base)
            rev = deleted.commit.rev if deleted.commit is not None else ""
            return SeededWrite(op.uri, op.op, None, rev)
        data = {**base, "record": op.record, "validate": False}
        if op.op == "create":
            response: Any = await repo.create_record(data)
        else:
            response = await repo.put_record(data)
    except AtProtocolError as exc:
        raise SeedError(f"{op.op} of {op.uri} was refused: {exc}") from exc
    if response.cid != op.cid:
        raise SeedError(f"{op.uri}: the PDS computed CID {response.cid}, expected {op.cid}")
    return SeededWrite(op.uri, op.op, response.cid, response.commit.rev)


def _write_direct(op: Operation, host: PdsHost) -> SeededWrite:
    repo = host.repo(op.did)
    try:
        if op.op == "delete":
            deleted = repo.delete(op.collection, op.rkey)
            return SeededWrite(op.uri, op.op, None, deleted.rev if deleted else repo.rev)
        if op.record is None:
            raise SeedError(f"{op.op} of {op.uri} has no record")
        if op.op == "create":
            write = repo.create(op.collection, op.record, rkey=op.rkey)
        else:
            write = repo.put(op.collection, op.rkey, op.record)
    except RepoError as exc:
        raise SeedError(f"{op.op} of {op.uri} was refused: {exc}") from exc
    if write.op.cid != op.cid:
        raise SeedError(f"{op.uri}: the PDS computed CID {write.op.cid}, expected {op.cid}")
    return SeededWrite(op.uri, op.op, write.op.cid, write.rev)
