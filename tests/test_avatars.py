"""Members' avatars (appview/avatars.py): fetched from the member's PDS on the devnet in
the background, cached beside the log, shown on the topic page after the fetch and the
initials before; every bad answer a PDS can give ends in initials and a stored verdict;
a refresh after AVATAR_REFRESH_HOURS (the clock port moved, no sleeping); network
failures back off and keep what was cached. Both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appview.auth.errors import IdentityError
from appview.auth.identity import ResolvedIdentity
from appview.avatars import (
    FAILURE_BACKOFF_SECONDS,
    TRANSIENT,
    AvatarRow,
    PdsAvatarSource,
    sniff_image,
)
from appview.bootstrap import Services, bootstrap
from appview.devnet.clock import DevClock
from appview.devnet.network import DevNetwork
from appview.devnet.pds import PdsHost
from appview.devnet.scenario import scenario_to_jetstream_lines
from appview.settings import Settings
from projections.ids import post_id
from projections.runner import project_to_head
from tests.conftest import Backend
from tests.live_support import ForumWriter
from tests.test_consumer import settings_for
from tests.web_forum import get_text, page_client, scenario

PROFILE = "app.bsky.actor.profile"
HOUR = 3600.0
AVATAR_IMG = re.compile(r'<img class="avatar" src="([^"]+)" alt="" width="32" height="32"')


def png(seed: int = 0, width: int = 2) -> bytes:
    """A real PNG of ``width`` x 1 pixels (the seed varies its colour, hence its CID)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + \
            zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    pixels = b"\x00" + bytes([seed % 256, 0, 0]) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b""))


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
GIF = b"GIF89a" + b"\x00" * 30
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 30
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"


def set_profile(pds: PdsHost, did: str, avatar: Any = None, *, omit: bool = False) -> None:
    record: dict[str, Any] = {"$type": PROFILE, "displayName": "Someone"}
    if not omit:
        record["avatar"] = avatar
    pds.repo(did).put(PROFILE, "self", record)


def with_avatar(pds: PdsHost, did: str, data: bytes, mime: str, **claims: Any) -> str:
    """Uploads ``data`` and names it as the profile's avatar (``claims`` overrides what
    the blob ref declares); returns its CID."""
    ref = {**pds.upload_blob(did, data, mime), **claims}
    set_profile(pds, did, ref)
    return str(ref["ref"]["$link"])


@asynccontextmanager
async def appview(backend: Backend, settings: Settings,
                  clock: DevClock) -> AsyncIterator[Services]:
    """The page tests' scenario, appended and projected, on ``settings``."""
    story = scenario()
    services = bootstrap(dataclasses.replace(settings, forum_did=story.forum.did),
                         clock=clock)
    try:
        appender = services.appender(batch_size=500)
        for number, line in enumerate(
                scenario_to_jetstream_lines(story, start_time_us=story.start_us), start=1):
            appender.feed(line, number)
        appender.flush()
        project_to_head(services.event_log, services.projections)
        yield services
    finally:
        await services.avatars.aclose()
        services.close()


def avatar_settings(backend: Backend, plc_url: str, **changes: Any) -> Settings:
    return dataclasses.replace(settings_for(backend, "avatars", "did:plc:forum"),
                               plc_url=plc_url, **changes)


async def test_the_avatar_shows_on_the_topic_page_after_the_fetch(backend: Backend) -> None:
    clock = DevClock()
    async with DevNetwork() as network:
        pds = network.pds["pds1"]
        alice = pds.create_account("alice.test", "password-123")
        image = png(1)
        cid = with_avatar(pds, alice.did, image, "image/png")
        async with appview(backend, avatar_settings(backend, network.plc_url), clock) as services:
            writer = ForumWriter.after(services, scenario())
            topic = writer.topic(alice.did, "With a face")
            await asyncio.to_thread(services.projector.project)
            async with page_client(services) as client:
                path = f"/t/{post_id(topic[0])}"
                before = await get_text(client, path)
                assert AVATAR_IMG.search(before) is None
                assert '<span class="avatar" aria-hidden="true">' in before
                await services.avatars.settled()
                after = await get_text(client, path)
                found = AVATAR_IMG.findall(after)
                assert found == [f"/avatars/{alice.did.replace(':', '%3A')}?v={cid}"]
                response = await client.get(found[0])
                assert response.status == 200
                assert await response.read() == image
                assert response.headers["Content-Type"] == "image/png"
                assert '<span class="avatar"' not in after
            rows = services.avatars.rows([alice.did])
            assert rows[alice.did].status == "ok" and rows[alice.did].cid == cid


async def _verdict(services: Services, did: str) -> AvatarRow:
    row = await services.avatars.fetch_now(did)
    assert services.avatars.rows([did])[did] == row, "the verdict is stored"
    view = await asyncio.to_thread(services.avatars.view, [did])
    assert view.cids.get(did) == row.cid, "pages show the image cached, if any"
    return row


async def test_every_bad_answer_ends_in_initials_and_a_stored_verdict(
        backend: Backend) -> None:
    clock = DevClock()
    async with DevNetwork() as network:
        pds = network.pds["pds1"]

        def member(name: str) -> str:
            return pds.create_account(f"{name}.test", "password-123").did

        cases: dict[str, tuple[str, str]] = {}  # did -> (status, a word of the detail)
        cases[member("noprofile")] = ("no_profile", "RecordNotFound")
        did = member("noavatar")
        set_profile(pds, did, omit=True)
        cases[did] = ("no_avatar", "names no avatar")
        did = member("html")
        with_avatar(pds, did, HTML, "image/jpeg")
        cases[did] = ("not_image", "HTML")
        did = member("svgdeclared")
        with_avatar(pds, did, SVG, "image/svg+xml")
        cases[did] = ("not_image", "SVG")
        did = member("svglying")
        with_avatar(pds, did, SVG, "image/png")
        cases[did] = ("not_image", "SVG")
        did = member("big")
        with_avatar(pds, did, png(2) + os.urandom(5000), "image/png")
        cases[did] = ("too_large", "declares")
        did = member("bigliar")  # declares a small size, serves a large blob
        with_avatar(pds, did, png(3) + os.urandom(5000), "image/png", size=100)
        cases[did] = ("too_large", "over")
        did = member("garbageref")
        # a CID that is not one cannot be in a record (the data model refuses it)
        set_profile(pds, did, {"$type": "blob", "ref": "not-a-cid",
                               "mimeType": "image/png", "size": 10})
        cases[did] = ("bad_profile", "CID")
        did = member("missingblob")
        set_profile(pds, did, {**pds.upload_blob(did, png(4), "image/png"),
                               "ref": {"$link": str(_other_cid())}})
        cases[did] = ("no_avatar", "BlobNotFound")
        did = member("gone")
        with_avatar(pds, did, png(5), "image/png")
        pds.set_account_status(did, "deactivated")
        cases[did] = ("no_profile", "RepoDeactivated")
        cases["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"] = ("unresolved", "does not know")
        cases["did:web:127.0.0.1%3A9"] = ("unresolved", "did:web")
        settings = avatar_settings(backend, network.plc_url, avatar_max_bytes=1000)
        async with appview(backend, settings, clock) as services:
            for did, (status, word) in cases.items():
                row = await _verdict(services, did)
                assert (row.status, row.cid) == (status, None), (did, row)
                assert word in row.detail, (did, row.detail)
                assert await asyncio.to_thread(services.avatars.image, did) is None
                # asked again after the refresh time (a network failure: sooner), not
                # on every view
                wait = FAILURE_BACKOFF_SECONDS if status in TRANSIENT else 24 * HOUR
                assert row.next_at == pytest.approx(clock.now_us() / 1e6 + wait, abs=60)
            # a mimeType that lies about a real image: kept with the type of its bytes
            did = member("liar")
            cid = with_avatar(pds, did, png(6), "image/gif")
            row = await _verdict(services, did)
            assert (row.status, row.cid, row.mime) == ("ok", cid, "image/png")


def _other_cid() -> Any:
    from appview.repos.cbor import Cid

    return Cid.for_raw(b"never uploaded")


@pytest.mark.parametrize(("data", "mime"), [
    (png(), "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp"),
    (SVG, None), (HTML, None), (b"", None), (b"RIFF\x00\x00\x00\x00AVI ", None),
])
def test_images_are_recognised_by_their_bytes(data: bytes, mime: str | None) -> None:
    assert sniff_image(data) == mime


async def test_the_avatar_is_refreshed_after_the_refresh_time(backend: Backend) -> None:
    clock = DevClock()
    async with DevNetwork() as network:
        pds = network.pds["pds1"]
        alice = pds.create_account("alice.test", "password-123")
        first = with_avatar(pds, alice.did, png(7), "image/png")
        settings = avatar_settings(backend, network.plc_url, avatar_refresh_hours=6.0)
        async with appview(backend, settings, clock) as services:
            avatars = services.avatars
            # never looked up: the table must be read (in a thread) first
            assert avatars.view_from_memory([alice.did]) is None
            assert (await asyncio.to_thread(avatars.view, [alice.did])).stale == [alice.did]
            assert (await avatars.fetch_now(alice.did)).cid == first
            view = await asyncio.to_thread(avatars.view, [alice.did])
            assert view.cids == {alice.did: first} and view.stale == []
            assert avatars.view_from_memory([alice.did]) == view
            second = with_avatar(pds, alice.did, png(8), "image/png")
            mark = avatars.page_mark()
            clock.advance(5 * HOUR)
            # pages from the page cache are rendered again (and ask for what is due)
            assert avatars.page_mark() != mark
            assert (await asyncio.to_thread(avatars.view, [alice.did])).stale == []
            clock.advance(2 * HOUR)
            view = await asyncio.to_thread(avatars.view, [alice.did])
            # stale: still shown while the new one is fetched
            assert view.cids == {alice.did: first} and view.stale == [alice.did]
            assert (await avatars.fetch_now(alice.did)).cid == second
            image = await asyncio.to_thread(avatars.image, alice.did)
            assert image is not None and image.data == png(8)
            # the replaced image is no member's any more: dropped from the cache
            set_profile(pds, alice.did, omit=True)
            clock.advance(7 * HOUR)
            assert (await avatars.fetch_now(alice.did)).status == "no_avatar"
            assert await asyncio.to_thread(avatars.image, alice.did) is None


# --- a PDS that answers badly ---------------------------------------------------------------


class FixedIdentity:
    """The Identity port, naming one PDS for every DID it is told of."""

    def __init__(self, pds_url: str, dids: set[str]) -> None:
        self.pds_url = pds_url
        self.dids = dids
        self.asked: list[str] = []

    async def resolve_handle(self, handle: str) -> str:
        raise IdentityError("no handles here")

    async def resolve_did(self, did: str, *, fresh: bool) -> ResolvedIdentity:
        self.asked.append(did)
        if did not in self.dids:
            raise IdentityError(f"{did}: unknown")
        return ResolvedIdentity(did, self.pds_url, None)


class BadPds:
    """A PDS whose answers a test scripts: ``mode`` per request kind."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.profile = profile
        self.record_mode = "ok"
        self.blob_mode = "ok"
        self.blob = png(9)
        self.requests: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/xrpc/com.atproto.repo.getRecord", self._record)
        app.router.add_get("/xrpc/com.atproto.sync.getBlob", self._blob)
        return app

    async def _answer(self, mode: str, ok: web.Response) -> web.Response:
        if mode == "429":
            return web.json_response({"error": "RateLimitExceeded"}, status=429)
        if mode == "500":
            return web.json_response({"error": "InternalServerError"}, status=500)
        if mode == "garbage":
            return web.Response(text="<html>bad gateway</html>", content_type="text/html")
        if mode == "slow":
            await asyncio.sleep(2)  # longer than the source's timeout in these tests
        return ok

    async def _record(self, request: web.Request) -> web.Response:
        self.requests.append("getRecord")
        return await self._answer(self.record_mode,
                                  web.json_response({"uri": "at://x", "cid": "x",
                                                     "value": self.profile}))

    async def _blob(self, request: web.Request) -> web.Response:
        self.requests.append("getBlob")
        return await self._answer(self.blob_mode, web.Response(
            body=self.blob, content_type="image/png"))


@asynccontextmanager
async def bad_pds_appview(backend: Backend, clock: DevClock
                          ) -> AsyncIterator[tuple[Services, BadPds, str]]:
    did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
    from appview.repos.cbor import Cid

    cid = str(Cid.for_raw(png(9)))
    server = BadPds({"$type": PROFILE, "avatar": {
        "$type": "blob", "ref": {"$link": cid}, "mimeType": "image/png",
        "size": len(png(9))}})
    async with TestServer(server.app()) as test_server:
        url = str(test_server.make_url("")).rstrip("/")
        settings = settings_for(backend, "avatars", "did:plc:forum")
        source = PdsAvatarSource(settings, identity=FixedIdentity(url, {did}), timeout=0.5)
        services = bootstrap(settings, clock=clock, avatar_source=source)
        try:
            yield services, server, cid
        finally:
            await source.aclose()
            services.close()


@pytest.mark.parametrize("mode", ["429", "500", "garbage", "slow"])
async def test_a_failing_pds_is_asked_again_later_and_the_cached_image_stays(
        backend: Backend, mode: str) -> None:
    clock = DevClock()
    async with bad_pds_appview(backend, clock) as (services, server, cid):
        did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
        server.record_mode = mode
        row = await _verdict(services, did)
        start = clock.now_us() / 1e6
        assert (row.status, row.cid, row.failures) == ("unavailable", None, 1)
        assert row.next_at == pytest.approx(start + FAILURE_BACKOFF_SECONDS, abs=5)
        row = await _verdict(services, did)
        assert row.failures == 2
        assert row.next_at == pytest.approx(start + 2 * FAILURE_BACKOFF_SECONDS, abs=5)
        server.record_mode = "ok"
        row = await _verdict(services, did)
        assert (row.status, row.cid, row.failures) == ("ok", cid, 0)
        # a refresh that fails keeps the image shown; an unchanged avatar is not
        # fetched again
        clock.advance(25 * HOUR)
        server.record_mode = mode
        row = await _verdict(services, did)
        assert (row.status, row.cid) == ("unavailable", cid)
        view = await asyncio.to_thread(services.avatars.view, [did])
        assert view.cids == {did: cid}
        server.record_mode = "ok"
        server.requests.clear()
        row = await _verdict(services, did)
        assert (row.status, row.cid) == ("ok", cid)
        assert server.requests == ["getRecord"]


@pytest.mark.parametrize("mode", ["429", "500", "slow"])
async def test_a_failing_blob_fetch_is_asked_again(backend: Backend, mode: str) -> None:
    clock = DevClock()
    async with bad_pds_appview(backend, clock) as (services, server, _cid):
        did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
        server.blob_mode = mode
        row = await _verdict(services, did)
        assert (row.status, row.cid, row.failures) == ("unavailable", None, 1)


async def test_bytes_that_are_not_the_cids_are_refused(backend: Backend) -> None:
    clock = DevClock()
    async with bad_pds_appview(backend, clock) as (services, server, _cid):
        server.blob = png(10)  # an image, but not the one the profile names
        row = await _verdict(services, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
        assert (row.status, row.cid) == ("bad_blob", None)


async def test_pages_queue_what_they_lack_once_and_the_worker_fetches_it(
        backend: Backend) -> None:
    clock = DevClock()
    async with bad_pds_appview(backend, clock) as (services, server, cid):
        did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
        avatars = services.avatars
        stop = asyncio.Event()
        worker = asyncio.create_task(avatars.run(stop))
        await asyncio.sleep(0)
        version = avatars.version
        avatars.want([did, did, "not a did"])
        avatars.want([did])
        await avatars.settled()
        assert server.requests == ["getRecord", "getBlob"]
        assert avatars.version > version, "pages showing it are rendered anew"
        view = await asyncio.to_thread(avatars.view, [did])
        assert view.cids == {did: cid} and view.stale == []
        stop.set()
        await worker


# --- the AT Protocol's own PDS --------------------------------------------------------------


async def test_an_avatar_is_fetched_from_the_reference_pds(
        reference_plc: Any, reference_pds: Any, tmp_path: Any) -> None:
    """The real uploadBlob / putRecord / getBlob, and the real PLC directory. SQLite only:
    the storage is the same as above (both backends); the PDS is what is under test."""
    from tests.reference_network import PdsClient

    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'events.sqlite3'}", None, tmp_path)
    settings = avatar_settings(backend, reference_plc.url)
    image = png(11)
    async with aiohttp.ClientSession() as http:
        pds = PdsClient(http, reference_pds)
        alice = await pds.create_account("alice.test")
        liar = await pds.create_account("liar.test")

        async def upload(account: Any, data: bytes, mime: str) -> dict[str, Any]:
            async with http.post(
                    f"{reference_pds.url}/xrpc/com.atproto.repo.uploadBlob", data=data,
                    headers={"Content-Type": mime,
                             "Authorization": f"Bearer {account.access_jwt}"}) as answer:
                assert answer.status == 200, await answer.text()
                blob: dict[str, Any] = (await answer.json())["blob"]
                return blob

        blob = await upload(alice, image, "image/png")
        await pds.put_record(alice, PROFILE, "self", {"$type": PROFILE, "avatar": blob})
        # HTML uploaded as a PNG: the PDS keeps what it was told
        html = await upload(liar, HTML, "image/png")
        await pds.put_record(liar, PROFILE, "self", {"$type": PROFILE, "avatar": html})
        async with appview(backend, settings, DevClock()) as services:
            row = await _verdict(services, alice.did)
            assert (row.status, row.cid, row.mime) == ("ok", blob["ref"]["$link"],
                                                       "image/png")
            cached = await asyncio.to_thread(services.avatars.image, alice.did)
            assert cached is not None and cached.data == image
            row = await _verdict(services, liar.did)
            assert (row.status, row.cid) == ("not_image", None), row
