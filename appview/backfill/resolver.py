"""DID → PDS endpoint, with a cache that outlives the process.

did:plc documents come from the PLC directory (``PLC_URL``), did:web ones from the host's
``/.well-known/did.json``. What was resolved is kept in ``did_cache`` (event-log
database) for a day, and a stale entry still answers when the directory does not, so a
full_sync of thousands of repos asks the directory once per DID per day at most.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from appview.backfill.fetcher import FetchError
from appview.settings import Settings
from appview.side_db import side_transaction

FRESH_SECONDS = 24 * 3600


class DidNotResolved(FetchError):
    """No PDS endpoint for a DID; the message says why."""


def pds_endpoint(document: Any) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document."""
    if not isinstance(document, dict):
        return None
    for service in document.get("service") or []:
        if not isinstance(service, dict):
            continue
        if str(service.get("id", "")).endswith("#atproto_pds") and \
                isinstance(service.get("serviceEndpoint"), str):
            return str(service["serviceEndpoint"]).rstrip("/")
    return None


def handle_of(document: Any) -> str | None:
    """The handle of a DID document's first ``at://`` alias."""
    if not isinstance(document, dict):
        return None
    for alias in document.get("alsoKnownAs") or []:
        if isinstance(alias, str) and alias.startswith("at://") and len(alias) > 5:
            return alias.removeprefix("at://")
    return None


class DidResolver:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._memory: dict[str, str] = {}
        self._handles: dict[str, str | None] = {}
        with side_transaction(settings) as execute:
            execute("CREATE TABLE IF NOT EXISTS did_cache (did TEXT PRIMARY KEY,"
                    " pds TEXT NOT NULL, document TEXT NOT NULL,"
                    " fetched_at DOUBLE PRECISION NOT NULL)", ())

    async def pds(self, did: str) -> str:
        if did in self._memory:
            return self._memory[did]
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT pds, fetched_at, document FROM did_cache WHERE did = ?",
                           (did,))
        cached = (str(rows[0][0]), float(rows[0][1])) if rows else None
        if cached is not None and time.time() - cached[1] < FRESH_SECONDS:
            self._memory[did] = cached[0]
            self._handles[did] = handle_of(json.loads(str(rows[0][2])))
            return cached[0]
        try:
            document = await self._fetch(did)
        except DidNotResolved:
            if cached is not None:  # the directory is down: yesterday's answer will do
                return cached[0]
            raise
        endpoint = pds_endpoint(document)
        if endpoint is None:
            raise DidNotResolved(f"{did}: the DID document names no #atproto_pds service")
        with side_transaction(self._settings) as execute:
            execute("INSERT INTO did_cache (did, pds, document, fetched_at) VALUES"
                    " (?, ?, ?, ?) ON CONFLICT (did) DO UPDATE SET pds = excluded.pds,"
                    " document = excluded.document, fetched_at = excluded.fetched_at",
                    (did, endpoint, json.dumps(document), time.time()))
        self._memory[did] = endpoint
        self._handles[did] = handle_of(document)
        return endpoint

    def handle(self, did: str) -> str | None:
        """The handle the DID document claims (after ``pds`` resolved it), if any."""
        return self._handles.get(did)

    async def _fetch(self, did: str) -> Any:
        if did.startswith("did:plc:"):
            url = f"{self._settings.plc_url.rstrip('/')}/{quote(did, safe=':')}"
        elif did.startswith("did:web:"):
            host = did.removeprefix("did:web:").replace("%3A", ":")
            url = f"https://{host}/.well-known/did.json"
        else:
            raise DidNotResolved(f"{did}: not a did:plc or did:web")
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as r:
                if r.status == 404 or r.status == 410:
                    raise DidNotResolved(f"{did}: the directory does not know it "
                                         f"(HTTP {r.status})")
                if r.status != 200:
                    raise DidNotResolved(f"{did}: the directory answered HTTP {r.status}")
                return json.loads(await r.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DidNotResolved(f"{did}: {type(exc).__name__}: {exc}") from exc
