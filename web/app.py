"""The aiohttp application factory.

``create_app(services, live=...)`` builds the app around services from
``appview.bootstrap``; when ``live`` is given, the Jetstream consumer and the projector run
for the app's lifetime (a ``cleanup_ctx`` starts them and stops them cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

from appview.bootstrap import Services
from appview.live import LiveIngest
from web import forwarded, pages, server, urls
from web.admin import manage as admin_manage
from web.admin import pages as admin_pages
from web.admin import themes as admin_themes
from web.api import admin as api_admin
from web.api import admin_backfill as api_admin_backfill
from web.api import admin_events as api_admin_events
from web.api import admin_projections as api_admin_projections
from web.api import mod as api_mod
from web.api import read as api_read
from web.api import search as api_search
from web.api import write as api_write
from web.api.health import health
from web.auth import signin
from web.auth.access import csrf_cookie, member_session
from web.errors import json_errors
from web.keys import LIVE, SERVICES
from web.metrics import Metrics
from web.pages.errors import html_errors
from web.past import PAST, read_only
from web.security import security_headers

log = logging.getLogger(__name__)


def create_app(services: Services, *, live: LiveIngest | None = None,
               metrics: Metrics | None = None, past: str | None = None) -> web.Application:
    """``past``: the read models are the forum at a past moment (``appview.past``), to
    serve read only under a banner saying when (``web.past``)."""
    # forwarded sits inside the error middlewares (a bad Host is a 400 page or JSON) and
    # outside everything that reads the scheme (cookies' Secure) or the host (feed links).
    # Metrics time everything, the error pages included.
    timing = [] if metrics is None else [metrics.middleware]
    frozen = [] if past is None else [read_only]
    app = web.Application(middlewares=[*timing, security_headers, html_errors, json_errors,
                                       forwarded.forwarded, *frozen, member_session,
                                       csrf_cookie])
    app[SERVICES] = services
    if past is not None:
        app[PAST] = past
    forwarded.setup(app)
    app.on_response_prepare.append(server.name_the_server)
    pages.setup_templates(app)
    app.cleanup_ctx.append(_run_forum_agent)
    app.cleanup_ctx.append(_fetch_avatars)
    if live is not None:
        app[LIVE] = live
        app.cleanup_ctx.append(_run_live)
    app.router.add_get(urls.API_HEALTH, health)
    api_read.add_routes(app.router)
    api_write.add_routes(app.router)
    api_mod.add_routes(app.router)
    api_search.add_routes(app.router)
    pages.add_routes(app.router)
    signin.add_routes(app)
    api_admin_projections.add_routes(app)
    api_admin_backfill.add_routes(app)
    api_admin_events.add_routes(app)
    api_admin.add_routes(app)
    admin_pages.add_routes(app)
    admin_manage.add_routes(app)
    admin_themes.add_routes(app)
    return app


@contextlib.asynccontextmanager
async def _running(run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
                   name: str) -> AsyncIterator[None]:
    """``run(stop)`` as a task while the app serves; at cleanup ``stop`` is set and the
    task has 10 s to end before it is cancelled."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)
    await asyncio.sleep(0)  # started before the first request (a queue it makes exists)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=10)
        except TimeoutError:
            log.warning("%s did not stop within 10s; cancelling", name)
            task.cancel()


async def _run_forum_agent(app: web.Application) -> AsyncIterator[None]:
    """The Forum account's agent signs in and keeps trying while the PDS is away."""
    agent = app[SERVICES].forum_agent
    async with _running(agent.run, "forum-agent"):
        yield
    await agent.aclose()


async def _fetch_avatars(app: web.Application) -> AsyncIterator[None]:
    """Members' avatars are fetched in the background while the app serves: pages only
    queue the members they lack (appview/avatars.py)."""
    async with _running(app[SERVICES].avatars.run, "avatars"):
        yield


async def _run_live(app: web.Application) -> AsyncIterator[None]:
    async with _running(app[LIVE].run, "live-ingest"):
        yield
