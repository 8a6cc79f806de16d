"""``/avatars/{did}``: a member's cached avatar (appview/avatars.py), never fetched here.

Only bytes recognised as JPEG, PNG, WebP or GIF are ever cached, and they are served with
that type, ``nosniff`` and a policy that lets nothing run, so even a browser opening the
URL directly gets an image or nothing. The URL names the image's CID (``?v=``): an answer
for the CID asked is kept for good; any other is revalidated."""

from __future__ import annotations

from aiohttp import web

from web import urls
from web.pages.common import read, services

ONE_YEAR = 365 * 24 * 3600
# an image that is not the version the URL names (or none named): a member's avatar may
# change at any moment, so it is checked again soon
SHORT_SECONDS = 300
IMAGE_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.AVATAR, avatar)


async def avatar(request: web.Request) -> web.Response:
    did = request.match_info["did"]
    avatars = services(request).avatars
    image = await read(lambda: avatars.image(did))
    if image is None:
        raise web.HTTPNotFound(text="No avatar is cached for this member.")
    etag = f'"{image.cid}"'
    lasting = request.query.get("v") == image.cid
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={ONE_YEAR}, immutable" if lasting
        else f"public, max-age={SHORT_SECONDS}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": IMAGE_POLICY,
        "Content-Disposition": "inline",
    }
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=image.data, content_type=image.mime, headers=headers)
