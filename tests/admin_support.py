"""A seeded appview behind a test client, with tokens for an operator and a nobody."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from appview.bootstrap import Services
from tests.conftest import Backend
from tests.rebuild_support import seeded
from web.app import create_app

NOBODY = "did:plc:nobodynobodynobodynobod"


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@dataclass
class AdminApp:
    services: Services
    client: TestClient[Any, Any]
    operator: str  # a token of the Forum account (every permission)
    nobody: str  # a token of a DID without any role

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def admin_app(backend: Backend, *, topics: int = 10) -> AsyncIterator[AdminApp]:
    services, _ = seeded(backend, topics=topics)
    try:
        _, operator = services.admin_tokens.issue(services.settings.forum_did, "operator")
        _, nobody = services.admin_tokens.issue(NOBODY, "nobody")
        async with TestClient(TestServer(create_app(services))) as client:
            yield AdminApp(services, client, operator, nobody)
    finally:
        services.close()
