"""`GET /api/admin/events`: the log streamed as export lines to a manageForum token
(401/403/400 otherwise), its public view leaking nothing private, and `atbb events
pull`'s client over real HTTP on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from appview.pull import pull
from events.export import parse_header, parse_line, to_line
from events.model import CommitRejected, IdentityChanged, RecordEvent
from events.public import WITHHELD
from events.store import open_event_log
from tests.admin_support import admin_app
from tests.conftest import Backend
from web import urls
from web.app import create_app

SECRET = "internal-check-7f3a"
DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def private_events() -> tuple[RecordEvent, CommitRejected, IdentityChanged]:
    """An invalid record whose reason names an internal detail, a rejected commit and an
    identity with a source cursor."""
    invalid = RecordEvent("create", DID, "space.atbb.post", "3kaaaaaaaaaa2", "3kaaaaaaaaaa2",
                          "bafyinvalid", {"$type": "space.atbb.post", "text": "hi"}, False,
                          f"forum ownership: {SECRET}", "jetstream", 991_001, 1_790_000_000)
    rejected = CommitRejected(DID, "space.atbb.post", "3kaaaaaaaaaa3", "create", "bafyx",
                              "3kaaaaaaaaaa3", 7, f"bad signature {SECRET}", "firehose",
                              991_002, 1_790_000_001)
    identity = IdentityChanged(DID, "alice.test", 8, None, "jetstream", 991_003,
                               1_790_000_002)
    return invalid, rejected, identity


async def test_only_a_manage_forum_token_reads_the_stream(backend: Backend) -> None:
    async with admin_app(backend, topics=3) as app:
        url = urls.api_admin_events()
        assert (await app.client.get(url)).status == 401
        assert (await app.client.get(url, headers=app.bearer("not-a-token"))).status == 401
        assert (await app.client.get(url, headers=app.bearer(app.nobody))).status == 403
        for bad in ("?after=-1", "?limit=0", "?after=x", "?public=maybe"):
            answer = await app.client.get(urls.API_ADMIN_EVENTS + bad,
                                          headers=app.bearer(app.operator))
            assert answer.status == 400, bad
            assert (await answer.json())["error"] == "InvalidRequest"


async def test_the_stream_is_the_export_page_by_page(backend: Backend) -> None:
    async with admin_app(backend, topics=3) as app:
        log = app.services.event_log
        head = log.head()
        expected = [to_line(logged) for logged in log.iter_from()]
        auth = app.bearer(app.operator)
        answer = await app.client.get(urls.api_admin_events(), headers=auth)
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("application/jsonl")
        header, *lines = (await answer.text()).splitlines()
        parsed = parse_header(header)
        assert parsed is not None and parsed.head == head and parsed.since == 0
        assert parsed.forum_did == app.services.settings.forum_did
        assert lines == expected
        middle = parse_line(expected[5]).position
        page = await app.client.get(urls.api_admin_events(middle, 4), headers=auth)
        assert (await page.text()).splitlines()[1:] == expected[6:10]
        end = await app.client.get(urls.api_admin_events(head), headers=auth)
        assert (await end.text()).splitlines()[1:] == []


async def test_the_public_view_leaks_nothing_private(backend: Backend) -> None:
    async with admin_app(backend, topics=3) as app:
        app.services.event_log.append(private_events())
        auth = app.bearer(app.operator)
        full = await (await app.client.get(urls.api_admin_events(), headers=auth)).text()
        assert SECRET in full and "991001" in full  # the operator's view is all of it
        public = await (await app.client.get(urls.api_admin_events(public=True),
                                             headers=auth)).text()
        assert SECRET not in public
        _, *lines = public.splitlines()
        shown = [parse_line(line).event for line in lines]
        assert len(shown) == app.services.event_log.count() - 1
        assert not any(isinstance(event, CommitRejected) for event in shown)
        assert all(event.source_cursor is None for event in shown)
        reasons = {e.reason for e in shown if isinstance(e, RecordEvent) and not e.valid}
        assert WITHHELD in reasons
        # a page of the public view still holds `limit` events, past those left out
        rejected_at = app.services.event_log.head() - 1
        page = await app.client.get(urls.api_admin_events(rejected_at - 2, 2, public=True),
                                    headers=auth)
        positions = [json.loads(line)["position"] for line in
                     (await page.text()).splitlines()[1:]]
        assert positions == [rejected_at - 1, rejected_at + 1]


async def test_the_setting_serves_only_the_public_view(backend: Backend) -> None:
    async with admin_app(backend, topics=3) as app:
        app.services.event_log.append(private_events())
        services = dataclasses.replace(
            app.services, settings=app.services.settings.with_overrides(
                events_api_public=True))
        async with TestClient(TestServer(create_app(services))) as client:
            body = await (await client.get(urls.api_admin_events(),
                                           headers=app.bearer(app.operator))).text()
        assert SECRET not in body and "991001" not in body


async def test_a_pull_over_http_copies_the_log(backend: Backend, tmp_path: Path) -> None:
    async with admin_app(backend, topics=5) as app:
        app.services.event_log.append(private_events())
        base = str(app.client.make_url("/"))
        local = open_event_log(f"sqlite:///{tmp_path}/pulled.sqlite3")
        try:
            report = await asyncio.to_thread(pull, local, base, token=app.operator,
                                             page=37)
            source = [logged.event for logged in app.services.event_log.iter_from()]
            assert [logged.event for logged in local.iter_from()] == source
            assert report.position == app.services.event_log.head()
            assert report.forum_did == app.services.settings.forum_did
        finally:
            local.close()
