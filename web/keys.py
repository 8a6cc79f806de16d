"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from aiohttp import web

from appview.bootstrap import Services
from appview.live import LiveIngest

SERVICES = web.AppKey("services", Services)
LIVE = web.AppKey("live", LiveIngest)
