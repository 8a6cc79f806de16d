"""``/avatars/{did}`` (web/pages/avatars.py): the cached bytes with the type recognised
from them, nosniff, a policy that lets nothing run, a year's caching for the URL naming
the image's CID and a short one otherwise, 304 on the ETag, 404 without an image; bytes
that are not an image (HTML, SVG) are never served, whatever a source claims. The topic
page's policy allows the image. Both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient

from appview.avatars import Verdict
from appview.bootstrap import Services, bootstrap
from appview.devnet.clock import DevClock
from appview.repos.cbor import Cid
from tests.conftest import Backend
from tests.test_avatars import HTML, SVG, png
from tests.test_consumer import settings_for
from tests.web_forum import page_client
from web import urls
from web.security import CONTENT_SECURITY_POLICY

ALICE = "did:plc:alicealicealicealicealic"


class ScriptedSource:
    """An AvatarSource answering what the test put in ``verdicts``."""

    def __init__(self) -> None:
        self.verdicts: dict[str, Verdict] = {}
        self.asked: list[tuple[str, str | None]] = []
        self.closed = False

    async def fetch(self, did: str, cached_cid: str | None) -> Verdict:
        self.asked.append((did, cached_cid))
        return self.verdicts.get(did, Verdict("no_profile", "scripted"))

    async def aclose(self) -> None:
        self.closed = True


def image_verdict(data: bytes, mime: str) -> Verdict:
    return Verdict("ok", "scripted", cid=str(Cid.for_raw(data)), mime=mime, data=data)


@asynccontextmanager
async def served(backend: Backend) -> AsyncIterator[
        tuple[Services, ScriptedSource, TestClient[Any, Any]]]:
    source = ScriptedSource()
    services = bootstrap(settings_for(backend, "avatar_pages", "did:plc:forum"),
                         clock=DevClock(), avatar_source=source)
    try:
        async with page_client(services) as client:
            yield services, source, client
    finally:
        services.close()
    assert source.closed, "the app's worker closes the source when it stops"


async def test_the_image_is_served_with_headers_that_keep_it_an_image(
        backend: Backend) -> None:
    async with served(backend) as (services, source, client):
        image = png(1)
        verdict = image_verdict(image, "image/png")
        source.verdicts[ALICE] = verdict
        await services.avatars.fetch_now(ALICE)
        assert verdict.cid is not None
        url = urls.avatar(ALICE, verdict.cid)
        assert url == f"/avatars/did%3Aplc%3A{ALICE[8:]}?v={verdict.cid}"
        response = await client.get(url)
        assert response.status == 200
        assert await response.read() == image
        headers = response.headers
        assert headers["Content-Type"] == "image/png"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert headers["ETag"] == f'"{verdict.cid}"'
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        again = await client.get(url, headers={"If-None-Match": headers["ETag"]})
        assert again.status == 304 and await again.read() == b""
        # without the version (or an old one): the image, checked again soon
        bare = await client.get(url.split("?")[0])
        assert bare.status == 200 and bare.headers["Cache-Control"] == "public, max-age=300"
        old = await client.get(urls.avatar(ALICE, "bafkreiold"))
        assert old.headers["Cache-Control"] == "public, max-age=300"


async def test_no_image_is_a_404(backend: Backend) -> None:
    async with served(backend) as (services, _source, client):
        assert (await client.get(urls.avatar(ALICE, "x").split("?")[0])).status == 404
        await services.avatars.fetch_now(ALICE)  # scripted: no profile
        assert (await client.get(urls.avatar(ALICE, "x"))).status == 404
        assert (await client.get("/avatars/not-a-did")).status == 404


async def test_html_and_svg_are_never_served_whatever_the_source_says(
        backend: Backend) -> None:
    async with served(backend) as (services, source, client):
        for data, claimed in ((HTML, "image/png"), (SVG, "image/svg+xml"),
                              (SVG, "image/png"), (png(2), "image/jpeg")):
            source.verdicts[ALICE] = image_verdict(data, claimed)
            row = await services.avatars.fetch_now(ALICE)
            assert (row.status, row.cid) == ("not_image", None), (data[:10], claimed)
            response = await client.get(urls.avatar(ALICE, str(Cid.for_raw(data))))
            assert response.status == 404
            assert data not in await response.read()


def test_the_pages_policy_allows_images_from_this_site_only() -> None:
    assert "img-src 'self'" in CONTENT_SECURITY_POLICY.split("; ")
