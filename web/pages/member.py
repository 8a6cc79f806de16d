"""A member's profile: handle, DID, joined date, post count, recent topics and posts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from projections import queries_members, queries_posts, queries_structure
from web import urls
from web.pages.common import (
    answer_early,
    now,
    page_viewer,
    read,
    render,
    services,
    validators,
)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.MEMBER, member)


async def member(request: web.Request) -> web.Response:
    did = request.match_info["did"]
    viewer, moment = page_viewer(request), now(request)
    found = await validators(request, viewer, moment)
    if (early := answer_early(request, found, viewer)) is not None:
        return early
    queries = services(request).queries

    def load() -> dict[str, Any] | None:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            profile = queries_members.member_profile(ctx, did)
            forum = queries_structure.forum(ctx)
            titles = {} if profile is None else queries_posts.topic_titles(
                ctx, [p.topic_uri for p in profile.recent_posts])
        return None if profile is None else {"forum": forum, "profile": profile,
                                             "titles": titles}

    context = await read(load)
    if context is None:
        raise web.HTTPNotFound(text="No such member.")
    return await render(request, "member.html", context, found, viewer)
