"""The reader-facing web: template setup (autoescaping, filters) and the page routes.

Handlers live in small modules (``pages_forum``, ``pages_topic``, ``pages_member``,
``feeds``, ``pages_site``); this module wires them into an application.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web import urls
from web.keys import SERVICES
from web.markdown import MarkdownRenderer
from web.pages import avatars as pages_avatars
from web.pages import feeds
from web.pages import forum as pages_forum
from web.pages import history as pages_history
from web.pages import live as pages_live
from web.pages import member as pages_member
from web.pages import moderation as pages_moderation
from web.pages import notifications as pages_notifications
from web.pages import reports as pages_reports
from web.pages import search as pages_search
from web.pages import settings as pages_settings
from web.pages import site as pages_site
from web.pages import topic as pages_topic
from web.pages import unread as pages_unread
from web.pages import writing as pages_writing
from web.pages.cache import PageCache
from web.pages.common import FRESHNESS, MARKDOWN, PAGE_CACHE, PAGE_STATE
from web.pages.conditional import Freshness, code_digest
from web.pages.state import PageState

WEB_DIR = Path(__file__).parent.parent  # the web package: its code, templates, static


def when(value: str | None) -> str:
    """A stored UTC timestamp as a reader sees it: ``2026-03-02 09:00 UTC``."""
    if not value:
        return "unknown time"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _rendering_files() -> list[Path]:
    files = sorted(WEB_DIR.rglob("*.py"))
    for folder in ("templates", "static"):
        files += [p for p in (WEB_DIR / folder).rglob("*") if p.is_file()]
    return files


def setup_templates(app: web.Application) -> None:
    renderer = MarkdownRenderer()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        context_processors=[],
        # compiled once per process and kept (the default cache holds 400): no stat of
        # each template file on every render to see whether it changed, as the
        # default auto_reload does; the ETag's code digest is of the files at startup
        auto_reload=False,
    )
    env = aiohttp_jinja2.get_env(app)
    env.globals["urls"] = urls
    env.globals["viewer_admin_url"] = urls.admin_url_for
    env.filters["when"] = when
    env.filters["markdown"] = renderer.render
    app[MARKDOWN] = renderer
    app[FRESHNESS] = Freshness(app[SERVICES].clock, code_digest(_rendering_files()))
    app[PAGE_CACHE] = PageCache()
    app[PAGE_STATE] = PageState(app[SERVICES].settings.page_state_seconds)
    pages_live.setup(app)


def add_routes(router: web.UrlDispatcher) -> None:
    pages_site.add_routes(router)
    pages_forum.add_routes(router)
    pages_topic.add_routes(router)
    pages_member.add_routes(router)
    pages_avatars.add_routes(router)
    feeds.add_routes(router)
    pages_writing.add_routes(router)
    pages_settings.add_routes(router)
    pages_reports.add_routes(router)  # before /mod/{action}
    pages_moderation.add_routes(router)
    pages_live.add_routes(router)
    pages_notifications.add_routes(router)
    pages_unread.add_routes(router)
    pages_search.add_routes(router)
    pages_history.add_routes(router)
