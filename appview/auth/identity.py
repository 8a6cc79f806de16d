"""Who a sign-in input names: handle → DID → DID document → PDS.

The OAuth client sees identity only through the small ``Identity`` port, so the way
handles and DIDs are resolved can change underneath it. ``NetworkIdentity`` resolves a
handle by DNS (``_atproto`` TXT), then HTTPS (``/.well-known/atproto-did``), then the
XRPC services of HANDLE_RESOLVER_URLS; a DID through the backfill's ``DidResolver`` and
its cache, or straight from the directory when the answer must be fresh (checking the
account a token was issued for)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.resolver

from appview.auth.errors import IdentityError
from appview.auth.transport import TransportError, send
from appview.backfill.fetcher import FetchError
from appview.backfill.resolver import DidResolver, handle_of, pds_endpoint
from appview.settings import Settings

_HANDLE = re.compile(
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%:-]+)$")
# RFC 6761/6762 names: never in the DNS, so only the configured services are asked
_SPECIAL_TLDS = ("test", "local", "localhost", "invalid", "example", "internal", "arpa")
DNS_SECONDS = 3.0


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
                 handle_services: tuple[str, ...]) -> None:
        self._settings = settings
        self._http = http
        self._services = handle_services

    async def resolve_handle(self, handle: str) -> str:
        if not handle.endswith(tuple("." + tld for tld in _SPECIAL_TLDS)):
            for attempt in (self._by_dns, self._by_https):
                did = await attempt(handle)
                if did is not None:
                    return did
        for service in self._services:
            did = await self._by_xrpc(service, handle)
            if did is not None:
                return did
        raise IdentityError(f"the handle {handle} does not resolve to an account")

    async def _by_dns(self, handle: str) -> str | None:
        try:
            answer = await dns.asyncresolver.resolve(f"_atproto.{handle}", "TXT",
                                                     lifetime=DNS_SECONDS)
        except (dns.exception.DNSException, OSError):
            return None
        found = {b"".join(record.strings).decode("ascii", "replace") for record in answer}
        dids = {text.removeprefix("did=") for text in found if text.startswith("did=")}
        # two different DIDs in the TXT records: the handle names no one account
        return dids.pop() if len(dids) == 1 and is_did(next(iter(dids))) else None

    async def _by_https(self, handle: str) -> str | None:
        try:
            answer = await send(self._http, "GET", f"https://{handle}/.well-known/atproto-did")
        except TransportError:
            return None
        text = answer.body.decode("utf-8", "replace").strip()
        return text if answer.status == 200 and is_did(text) else None

    async def _by_xrpc(self, service: str, handle: str) -> str | None:
        url = f"{service.rstrip('/')}/xrpc/com.atproto.identity.resolveHandle"
        try:
            answer = await send(self._http, "GET", url, params={"handle": handle})
        except TransportError:
            return None
        data = answer.json()
        did = data.get("did") if isinstance(data, dict) and answer.status == 200 else None
        return did if isinstance(did, str) and is_did(did) else None

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
