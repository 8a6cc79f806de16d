"""Who a sign-in input names: handle → DID → DID document → PDS.

The OAuth client sees identity only through the small ``Identity`` port, so the way
handles and DIDs are resolved can change underneath it. ``NetworkIdentity`` resolves a
handle through ``appview.handles.HandleResolver``, the one place that decides how
handles are resolved (DNS ``_atproto`` TXT, then ``https://<handle>/.well-known/
atproto-did``; on a development network, HANDLE_RESOLVER_DEV_URLS); a DID through the
backfill's ``DidResolver`` and its cache, or straight from the directory when the answer
must be fresh (checking the account a token was issued for)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from appview.auth.errors import IdentityError
from appview.auth.transport import TransportError, send
from appview.backfill.fetcher import FetchError
from appview.backfill.resolver import DidResolver, handle_of, pds_endpoint
from appview.handles import HandleResolver
from appview.settings import Settings

_HANDLE = re.compile(
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%:-]+)$")


@dataclass(frozen=True)
class ResolvedIdentity:
    did: str
    pds_url: str
    handle: str | None  # the handle the DID document claims, if any


class Identity(Protocol):
    async def resolve_handle(self, handle: str) -> str:
        """The DID a handle names; raises IdentityError."""
        ...

    async def resolve_did(self, did: str, *, fresh: bool) -> ResolvedIdentity:
        """The PDS and handle of a DID; ``fresh`` skips every cache."""
        ...


def normalise_handle(text: str) -> str | None:
    """A syntactically valid handle in lower case (an ``@`` in front is dropped), or
    None."""
    handle = text.strip().removeprefix("@").lower()
    return handle if len(handle) <= 253 and _HANDLE.match(handle) else None


def is_did(text: str) -> bool:
    return bool(_DID.match(text.strip()))


class NetworkIdentity:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession,
                 handles: HandleResolver) -> None:
        self._settings = settings
        self._http = http
        self._handles = handles

    async def resolve_handle(self, handle: str) -> str:
        resolution = await self._handles.resolve(handle)
        if resolution.did is None or not is_did(resolution.did):
            raise IdentityError(f"the handle {handle} does not resolve to an account"
                                f" ({resolution.detail})")
        return resolution.did

    async def resolve_did(self, did: str, *, fresh: bool) -> ResolvedIdentity:
        if not is_did(did):
            raise IdentityError(f"{did!r} is not a did:plc or did:web")
        if not fresh:
            # a resolver per question: its answers stay in memory for its lifetime, and
            # the day-long freshness of the shared cache is what must apply here
            dids = await asyncio.to_thread(DidResolver, self._settings, self._http)
            try:
                pds = await dids.pds(did)
                await dids.flush()
            except FetchError as exc:
                raise IdentityError(str(exc)) from exc
            return ResolvedIdentity(did, pds, dids.handle(did))
        document = await self._document(did)
        endpoint = pds_endpoint(document)
        if endpoint is None:
            raise IdentityError(f"{did}: the DID document names no #atproto_pds service")
        return ResolvedIdentity(did, endpoint, handle_of(document))

    async def _document(self, did: str) -> Any:
        if did.startswith("did:plc:"):
            url = f"{self._settings.plc_url.rstrip('/')}/{quote(did, safe=':')}"
        else:
            host = did.removeprefix("did:web:").replace("%3A", ":")
            url = f"https://{host}/.well-known/did.json"
        try:
            answer = await send(self._http, "GET", url)
        except TransportError as exc:
            raise IdentityError(f"{did}: {exc}") from exc
        if answer.status != 200:
            raise IdentityError(f"{did}: the directory answered HTTP {answer.status}")
        try:
            document = json.loads(answer.body)
        except ValueError as exc:
            raise IdentityError(f"{did}: the DID document is not JSON") from exc
        if not isinstance(document, dict) or document.get("id") != did:
            raise IdentityError(f"{did}: the DID document is for another DID")
        return document
