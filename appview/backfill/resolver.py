"""DID → PDS endpoint, with a cache that outlives the process.

did:plc documents come from the PLC directory (``PLC_URL``), did:web ones from the host's
``/.well-known/did.json``. What was resolved is kept in ``did_cache`` (event-log
database) for a day, and a stale entry still answers when the directory does not, so a
full_sync of thousands of repos asks the directory once per DID per day at most. New
answers are written to the cache in groups (:meth:`DidResolver.flush`): one transaction
per DID cost a PostgreSQL connection each, 12 s of a 1,000-repo full_sync.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from appview.backfill.fetcher import FetchError
from appview.repos.signing import SigningKeyError, VerifyingKey, signing_key_of
from appview.settings import Settings
from appview.side_db import side_transaction

FRESH_SECONDS = 24 * 3600
SAVE_EVERY = 200  # answers kept in memory before they are written to the cache


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
    """The handle of a DID document's first ``at://`` alias (lower-cased: handles are
    case-insensitive)."""
    if not isinstance(document, dict):
        return None
    for alias in document.get("alsoKnownAs") or []:
        if isinstance(alias, str) and alias.startswith("at://") and len(alias) > 5:
            return alias.removeprefix("at://").lower()
    return None


class DidResolver:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self._memory: dict[str, str] = {}  # fresh answers
        self._stale: dict[str, str] = {}  # cached past their day: used if the directory fails
        self._read: set[str] = set()  # DIDs whose cache row (or its absence) was read
        self._handles: dict[str, str | None] = {}
        # the #atproto signing key of each document read, or why it has none usable
        self._keys: dict[str, VerifyingKey | str] = {}
        self._fetched: set[str] = set()  # DIDs this resolver asked the directory about
        self._unsaved: list[tuple[str, str, str, float]] = []
        with side_transaction(settings) as execute:
            execute("CREATE TABLE IF NOT EXISTS did_cache (did TEXT PRIMARY KEY,"
                    " pds TEXT NOT NULL, document TEXT NOT NULL,"
                    " fetched_at DOUBLE PRECISION NOT NULL)", ())

    def prefetch(self, dids: list[str]) -> None:
        """Read the cached entries of ``dids`` in a few queries (blocking: call it in a
        worker thread), so :meth:`pds` answers them from memory."""
        missing = sorted({d for d in dids if d not in self._memory and d not in self._read})
        for start in range(0, len(missing), 500):
            part = missing[start:start + 500]
            with side_transaction(self._settings) as execute:
                rows = execute("SELECT did, pds, fetched_at, document FROM did_cache"
                               f" WHERE did IN ({', '.join('?' * len(part))})", part)
            for did, pds, fetched_at, document in rows:
                self._remember(str(did), str(pds), float(fetched_at), str(document))
            self._read.update(part)

    def _remember(self, did: str, pds: str, fetched_at: float, document: str) -> None:
        parsed = json.loads(document)
        # a stale document's handle is still its claim: verification decides
        self._handles[did] = handle_of(parsed)
        if time.time() - fetched_at < FRESH_SECONDS:
            self._memory[did] = pds
            self._learn(did, parsed)
        else:
            self._stale[did] = pds

    def _learn(self, did: str, document: Any) -> None:
        self._handles[did] = handle_of(document)
        try:
            key = signing_key_of(document)
        except SigningKeyError as exc:
            self._keys[did] = f"{did}: the DID document's signing key: {exc}"
        else:
            self._keys[did] = key if key is not None else \
                f"{did}: the DID document names no #atproto signing key"

    def _lookup(self, did: str) -> None:
        with side_transaction(self._settings) as execute:
            rows = execute("SELECT pds, fetched_at, document FROM did_cache WHERE did = ?",
                           (did,))
        if rows:
            self._remember(did, str(rows[0][0]), float(rows[0][1]), str(rows[0][2]))
        self._read.add(did)

    def _save(self, rows: list[tuple[str, str, str, float]]) -> None:
        with side_transaction(self._settings) as execute:
            for row in rows:
                execute("INSERT INTO did_cache (did, pds, document, fetched_at) VALUES"
                        " (?, ?, ?, ?) ON CONFLICT (did) DO UPDATE SET pds = excluded.pds,"
                        " document = excluded.document, fetched_at = excluded.fetched_at",
                        row)

    async def flush(self) -> None:
        """Write the answers not yet in the cache (call before the resolver is dropped;
        one lost to a crash is only asked of the directory again)."""
        rows, self._unsaved = self._unsaved, []
        if rows:
            await asyncio.to_thread(self._save, rows)

    async def pds(self, did: str) -> str:
        if did not in self._memory and did not in self._read:
            await asyncio.to_thread(self._lookup, did)
        if did in self._memory:
            return self._memory[did]
        try:
            return await self._fetch_and_remember(did)
        except DidNotResolved:
            stale = self._stale.get(did)
            if stale is not None:  # the directory is down: yesterday's answer will do
                return stale
            raise

    async def _fetch_and_remember(self, did: str) -> str:
        document = await self._fetch(did)
        self._fetched.add(did)
        endpoint = pds_endpoint(document)
        if endpoint is None:
            raise DidNotResolved(f"{did}: the DID document names no #atproto_pds service")
        self._memory[did] = endpoint
        self._learn(did, document)
        self._unsaved.append((did, endpoint, json.dumps(document), time.time()))
        if len(self._unsaved) >= SAVE_EVERY:
            await self.flush()
        return endpoint

    async def signing_key(self, did: str, *, fresh: bool = False) -> VerifyingKey:
        """The key that signs ``did``'s commits (its DID document's ``#atproto`` method),
        from the cache unless ``fresh`` (a signature that does not verify with a cached
        key may be of a rotated one). Raises :class:`DidNotResolved` with the reason."""
        if fresh:
            self.forget(did)
        await self.pds(did)
        key = self._keys.get(did)
        if isinstance(key, VerifyingKey):
            return key
        raise DidNotResolved(key or f"{did}: no DID document read")

    def forget(self, did: str) -> None:
        """Ask the directory again next time (an identity event says the document
        changed); the cached row still answers if the directory does not."""
        pds = self._memory.pop(did, None)
        if pds is not None:
            self._stale.setdefault(did, pds)
        self._read.add(did)

    async def refresh(self, did: str) -> bool:
        """Ask the directory again unless this resolver already did (a cached document
        may predate a handle change); False when that was done already or failed."""
        if did in self._fetched:
            return False
        try:
            await self._fetch_and_remember(did)
        except DidNotResolved:
            return False
        return True

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
