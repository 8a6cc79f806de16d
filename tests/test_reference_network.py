"""The appview against the AT Protocol's own reference PLC directory and PDS (installed
and started by tests/reference_network.py), both backends: a forum written through the
PDS's XRPC in the original atBB's record shapes, read back whole by full_sync (the Forum
account and every member), handles verified against the PDS and corrected after a change
made while the appview was away, and members on a second PDS found through a relay.

Under CI=true a reference network that cannot be installed or started fails these tests;
on a machine without npm they skip, saying so. See docs/reference-network.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from appview.bootstrap import Services, bootstrap
from appview.devnet.relay import Relay
from events import collections as c
from events.model import IdentityChanged
from tests.conftest import Backend
from tests.reference_network import PdsClient, RefAccount, ReferencePds
from tests.test_consumer import settings_for


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class WrittenForum:
    forum: RefAccount
    members: list[RefAccount]
    forum_ref: dict[str, str]
    board_ref: dict[str, str]
    topics: list[dict[str, str]] = field(default_factory=list)
    replies: list[dict[str, str]] = field(default_factory=list)
    # every record written, by DID: at-uri -> CID
    written: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def accounts(self) -> list[RefAccount]:
        return [self.forum, *self.members]


class ForumWriter:
    """Writes as the original atBB does: references wrapped in named objects with their
    ``$type`` (``{"forum": {"$type": "space.atbb.post#forumRef", "forum": {uri, cid}}}``),
    see the correction at the end of the spec's lexicons.md."""

    def __init__(self, client: PdsClient) -> None:
        self.client = client
        self.written: dict[str, dict[str, str]] = {}

    async def write(self, account: RefAccount, collection: str, record: dict[str, Any],
                    rkey: str | None = None) -> dict[str, str]:
        ref = await self.client.create_record(account, collection,
                                              {"$type": collection, **record}, rkey)
        self.written.setdefault(account.did, {})[ref["uri"]] = ref["cid"]
        return ref

    async def forum(self, forum_handle: str, member_handles: list[str],
                    pds_of_members: PdsClient | None = None) -> WrittenForum:
        forum = await self.client.create_account(forum_handle)
        member_client = pds_of_members or self.client
        members = [await member_client.create_account(h) for h in member_handles]
        forum_ref = await self.write(forum, c.FORUM, {
            "name": "Oak Workshop", "description": "Benches, joints and finishes.",
            "createdAt": now()}, rkey="self")
        category = await self.write(forum, c.CATEGORY, {
            "name": "Woodwork", "description": "Everything wood.", "slug": "woodwork",
            "sortOrder": 0, "createdAt": now()})
        board_ref = await self.write(forum, c.BOARD, {
            "name": "Joinery", "description": "Dovetails and mortises.", "slug": "joinery",
            "sortOrder": 0, "createdAt": now(),
            "category": {"$type": "space.atbb.forum.board#categoryRef",
                         "category": category}})
        written = WrittenForum(forum, members, forum_ref, board_ref)
        member_writer = self if pds_of_members is None else ForumWriter(pds_of_members)
        for member in members:
            await member_writer.write(member, c.MEMBERSHIP, {
                "forum": {"$type": "space.atbb.membership#forumRef", "forum": forum_ref},
                "createdAt": now()})
        wrapped_forum = {"$type": "space.atbb.post#forumRef", "forum": forum_ref}
        for index, author in enumerate(members[:2]):
            written.topics.append(await member_writer.write(author, c.POST, {
                "title": f"Topic {index + 1}", "text": f"Opening post {index + 1}.",
                "forum": wrapped_forum,
                "board": {"$type": "space.atbb.post#boardRef", "board": board_ref},
                "createdAt": now()}))
        topic = written.topics[0]
        parent = topic
        for author in (members[-1], members[0]):
            parent = await member_writer.write(author, c.POST, {
                "text": f"A reply by {author.handle}.", "forum": wrapped_forum,
                "reply": {"root": topic, "parent": parent}, "createdAt": now()})
            written.replies.append(parent)
        for reactor in members[1:]:
            await member_writer.write(reactor, c.REACTION, {
                "subject": topic, "reaction": "like", "createdAt": now()})
        for writer in {id(self): self, id(member_writer): member_writer}.values():
            for did, records in writer.written.items():
                written.written.setdefault(did, {}).update(records)
        return written


def appview(backend: Backend, name: str, forum_did: str, plc_url: str,
            pds: list[ReferencePds], **overrides: Any) -> Services:
    settings = dataclasses.replace(
        settings_for(backend, name, forum_did), plc_url=plc_url, backfill_rate_limit=0.0,
        handle_resolver_dev_urls=",".join(p.url for p in pds), **overrides)
    return bootstrap(settings)


async def full_sync(services: Services) -> Any:
    assert services.backfills is not None
    run = await asyncio.to_thread(services.backfills.run, "full_sync")
    assert run.status == "completed", run.error_message
    return run


def table(services: Services, sql: str) -> list[dict[str, Any]]:
    with services.read_models.read() as session:
        return session.query_dicts(sql)


def handles(services: Services) -> dict[str, str | None]:
    """The members' handles, as the pages show them (None: the DID is shown)."""
    return {row["did"]: row["handle"]
            for row in table(services, "SELECT did, handle FROM members")}


def assert_the_forum_is_shown(services: Services, forum: WrittenForum) -> None:
    """What the pages show once the original's shapes are read."""
    [board] = table(services, "SELECT * FROM boards")
    assert board["listed"] == 1
    assert board["topic_count"] == len(forum.topics)
    assert board["post_count"] == len(forum.topics) + len(forum.replies)
    posts = {row["uri"]: row for row in table(services, "SELECT * FROM posts")}
    for ref in forum.topics + forum.replies:
        assert posts[ref["uri"]]["counted"] == 1, posts[ref["uri"]]
    assert posts[forum.topics[0]["uri"]]["reply_count"] == len(forum.replies)
    members = {row["did"]: row for row in table(services, "SELECT * FROM members")}
    for member in forum.members:
        assert members[member.did]["is_member"] == 1
    [likes] = table(services, "SELECT * FROM reaction_counts")
    assert likes["post_uri"] == forum.topics[0]["uri"]
    assert likes["count"] == len(forum.members) - 1


async def test_full_sync_reads_the_forum_account_and_every_member(
        backend: Backend, reference_plc: Any, reference_pds: ReferencePds) -> None:
    async with aiohttp.ClientSession() as session:
        client = PdsClient(session, reference_pds)
        forum = await ForumWriter(client).forum(
            "oak-forum.test", ["alice.test", "bob.test", "carol.test"])
        services = appview(backend, "reference", forum.forum.did, reference_plc.url,
                           [reference_pds])
        try:
            assert services.backfills is not None
            assert services.backfills.detect() == "full_sync"
            run = await full_sync(services)
            assert run.error_count == 0, services.backfills.errors(run.id)
            assert run.dids_total == run.dids_processed == len(forum.accounts)
            for account in forum.accounts:  # every record, as the PDS stored it
                heads = services.event_log.repo_heads(account.did)
                assert {uri: head.cid for uri, head in heads.items()} == \
                    forum.written[account.did]
            [shown] = table(services, "SELECT name FROM forum")
            assert shown["name"] == "Oak Workshop"
            shown_handles = handles(services)
            for account in forum.accounts:  # verified against the PDS's well-known path
                assert shown_handles[account.did] == account.handle
            assert_the_forum_is_shown(services, forum)
        finally:
            services.close()


async def test_a_handle_changed_while_the_appview_was_away_is_corrected(
        backend: Backend, reference_plc: Any, reference_pds: ReferencePds) -> None:
    async with aiohttp.ClientSession() as session:
        client = PdsClient(session, reference_pds)
        forum = await ForumWriter(client).forum("maple-forum.test",
                                                ["dora.test", "edgar.test"])
        services = appview(backend, "handles", forum.forum.did, reference_plc.url,
                           [reference_pds])
        try:
            await full_sync(services)
            dora = forum.members[0]
            assert handles(services)[dora.did] == "dora.test"
            await client.update_handle(dora, "dora-renamed.test")
            assert await client.well_known_did("dora.test") is None
            assert await client.well_known_did("dora-renamed.test") == dora.did
            again = await full_sync(services)
            assert again.error_count == 0
            assert handles(services)[dora.did] == "dora-renamed.test"
            identities = [logged.event for logged in
                          services.event_log.history(f"identity:{dora.did}")]
            assert [(e.handle, e.seq) for e in identities
                    if isinstance(e, IdentityChanged)] == \
                [("dora.test", 0), ("dora-renamed.test", 1)]
        finally:
            services.close()


async def test_members_on_a_second_pds_are_found_through_a_relay(
        backend: Backend, reference_plc: Any, reference_pds: ReferencePds,
        tmp_path: Path) -> None:
    """The Forum account on one reference PDS, its members on another the appview has
    never heard of: the devnet relay crawls both and lists the members."""
    second = ReferencePds(reference_plc.url, tmp_path / "second")
    relay = Relay([reference_pds.url, second.url])
    runner = web.AppRunner(relay.app())
    services = None
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        relay_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            forum = await ForumWriter(PdsClient(session, reference_pds)).forum(
                "elm-forum.test", ["fay.test", "gus.test"],
                pds_of_members=PdsClient(session, second))
        await relay.crawl()
        services = appview(backend, "relay", forum.forum.did, reference_plc.url,
                           [reference_pds, second], relay_url=relay_url)
        run = await full_sync(services)
        assert run.error_count == 0
        assert run.dids_total == run.dids_processed == len(forum.accounts)
        for member in forum.members:
            assert services.event_log.repo_heads(member.did).keys() == \
                forum.written[member.did].keys()
    finally:
        if services is not None:
            services.close()
        await runner.cleanup()
        second.stop()
