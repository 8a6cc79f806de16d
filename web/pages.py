"""HTML pages. Until the full web UI lands, a plain index page: the forum's categories and
boards with their counts and last posts, and links to the JSON API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from projections.views import Viewer
from web import urls
from web.keys import SERVICES


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        context_processors=[],
    )
    env = aiohttp_jinja2.get_env(app)
    env.globals["urls"] = urls


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.INDEX, index)


async def index(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    queries = services.queries
    now = datetime.fromtimestamp(services.clock.now_us() / 1e6, UTC)

    def load() -> dict[str, Any]:
        forum = queries.forum()
        sections = []
        for category in queries.categories(limit=100).items:
            boards = queries.category_boards(category.id, viewer=Viewer.anonymous(), now=now,
                                             limit=100)
            sections.append((category, [] if boards is None else list(boards.items)))
        return {"forum": forum, "sections": sections}

    context = await asyncio.to_thread(load)
    return aiohttp_jinja2.render_template("index.html", request, context)
