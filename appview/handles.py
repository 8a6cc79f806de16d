"""Handles verified both ways: the DID document claims the handle (``alsoKnownAs``
``at://handle``) and the handle resolves back to the DID.

A handle resolves through the ``_atproto.<handle>`` DNS TXT record (``did=<DID>``, asked
with dnspython) and, when DNS has no answer, ``https://<handle>/.well-known/atproto-did``
(the DID on the first line). A handle under a TLD that never resolves on the internet
(``.test``, ``.local``, ``.invalid``...) is refused without asking anyone.

Development networks live on loopback, where no DNS names their handles and nothing
serves HTTPS: ``HANDLE_RESOLVER_DEV_URLS`` names the base URLs to ask instead (the
handle goes in the ``Host`` header, as a PDS expects of a request for one of its
handles). This module is the only place that decides where a handle is resolved, and it
logs a warning whenever the development URLs are in force.

Every check ends in one of three verdicts: ``verified``, ``refuted`` (the document claims
no handle, or the handle resolves to another DID or to none: the member's handle is
unknown, and pages show the DID), or ``unknown`` (timeouts, 5xx, a DNS server failure:
nothing can be concluded, and what the appview knew stays).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.resolver

from appview.backfill.fetcher import HostLimiter
from appview.settings import Settings
from events.ids import Handle

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/atproto-did"
# TLDs the handle syntax allows but the internet never resolves (atproto's handle spec
# refuses them outright, and .test is for development networks only)
UNRESOLVABLE_TLDS = frozenset({"alt", "arpa", "example", "internal", "invalid", "local",
                               "localhost", "onion", "test"})
MAX_BODY = 2048  # a well-known answer is one DID; more is not one

Outcome = Literal["verified", "refuted", "unknown"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a handle resolved to: ``did`` (None when it resolves to nothing), whether
    that is conclusive, and how it was found out (for messages)."""

    did: str | None
    conclusive: bool
    detail: str
    no_such_domain: bool = False  # DNS: NXDOMAIN


@dataclass(frozen=True, slots=True)
class HandleVerdict:
    outcome: Outcome
    handle: str | None  # the verified handle; None unless outcome == "verified"
    reason: str


def _did_of(text: str) -> str | None:
    lines = text.strip().splitlines()
    first = lines[0].strip() if lines else ""
    return first if first.startswith("did:") and " " not in first else None


class HandleResolver:
    """Resolves handles to DIDs. ``dns_resolver``: dnspython's, from /etc/resolv.conf
    unless given (tests give one pointed at a loopback DNS server)."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, *,
                 dns_resolver: dns.asyncresolver.Resolver | None = None,
                 timeout: float = 10.0, rate: float | None = None) -> None:
        self._session = session
        self._dev_urls = settings.handle_resolver_dev_url_list
        self._timeout = timeout
        self._dns = dns_resolver
        self._rate = settings.backfill_rate_limit if rate is None else rate
        self._limiters: dict[str, HostLimiter] = {}
        if self._dev_urls:
            log.warning("HANDLE_RESOLVER_DEV_URLS is set: handles are verified by asking %s,"
                        " not DNS and https://<handle>/ (development only)",
                        ", ".join(self._dev_urls))

    @property
    def development(self) -> bool:
        return bool(self._dev_urls)

    async def verify(self, did: str, handle: str | None) -> HandleVerdict:
        """Whether ``handle`` (what ``did``'s document claims) resolves back to ``did``."""
        if handle is None:
            return HandleVerdict("refuted", None, "the DID document claims no handle")
        handle = handle.lower()
        if not Handle.is_valid(handle):  # never put a malformed claim into a URL
            return HandleVerdict("refuted", None, f"{handle!r} is not a handle")
        resolution = await self.resolve(handle)
        if resolution.did == did:
            return HandleVerdict("verified", handle, f"{handle} → {did} ({resolution.detail})")
        if not resolution.conclusive:
            return HandleVerdict("unknown", None,
                                 f"{handle} could not be resolved: {resolution.detail}")
        if resolution.did is None:
            return HandleVerdict("refuted", None,
                                 f"{handle} resolves to no DID ({resolution.detail})")
        return HandleVerdict("refuted", None, f"{handle} resolves to {resolution.did}, not"
                                              f" {did} ({resolution.detail})")

    async def resolve(self, handle: str) -> Resolution:
        handle = handle.lower().rstrip(".")
        if self._dev_urls:
            return await self._resolve_dev(handle)
        if "." not in handle or handle.rsplit(".", 1)[1] in UNRESOLVABLE_TLDS:
            return Resolution(None, True, "a TLD that never resolves on the internet")
        by_dns = await self._resolve_dns(handle)
        if by_dns.did is not None:
            return by_dns
        # one server answers for many handles (every *.host of a PDS): spaced per
        # parent domain, as the fetcher spaces requests per PDS host
        parent = handle.split(".", 1)[1] if handle.count(".") > 1 else handle
        by_https = await self._resolve_http(f"https://{handle}", handle, parent)
        if by_https.did is not None or by_https.conclusive:
            return by_https
        if by_dns.no_such_domain:
            # no such domain at all: HTTPS could only fail to connect
            return Resolution(None, True, f"{by_dns.detail}; {by_https.detail}")
        return Resolution(None, False, f"{by_dns.detail}; {by_https.detail}")

    async def _resolve_dev(self, handle: str) -> Resolution:
        details = []
        conclusive = True
        for base in self._dev_urls:
            answer = await self._resolve_http(base, handle, urlsplit(base).netloc)
            if answer.did is not None:
                return answer
            conclusive = conclusive and answer.conclusive
            details.append(answer.detail)
        return Resolution(None, conclusive, "; ".join(details))

    async def _resolve_dns(self, handle: str) -> Resolution:
        resolver = self._dns if self._dns is not None else dns.asyncresolver.get_default_resolver()
        name = f"_atproto.{handle}"
        try:
            answer = await resolver.resolve(name, "TXT", lifetime=self._timeout)
        except dns.resolver.NXDOMAIN:
            return Resolution(None, True, f"DNS: {name} does not exist", no_such_domain=True)
        except dns.resolver.NoAnswer:
            return Resolution(None, True, f"DNS: {name} has no TXT record")
        except dns.exception.DNSException as exc:  # timeouts, SERVFAIL, no nameservers
            return Resolution(None, False, f"DNS: {type(exc).__name__}: {exc}")
        dids = {text.decode("utf-8", "replace")[4:].strip()
                for record in answer for text in getattr(record, "strings", ())
                if text.startswith(b"did=")}
        if len(dids) > 1:  # the spec: several answers are no answer
            return Resolution(None, True, f"DNS: {name} has {len(dids)} different DIDs")
        if not dids:
            return Resolution(None, True, f"DNS: {name} has no did= record")
        return Resolution(dids.pop(), True, f"DNS TXT {name}")

    async def _resolve_http(self, base: str, handle: str, limit_key: str) -> Resolution:
        url = base + WELL_KNOWN
        limiter = self._limiters.setdefault(limit_key, HostLimiter(self._rate, asyncio.sleep))
        await limiter.acquire()
        headers = {"Host": handle} if self._dev_urls else {}
        try:
            # redirects are followed (the spec allows a few hops; aiohttp stops at 10)
            async with self._session.get(url, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self._timeout)
                                         ) as response:
                body = await response.content.read(MAX_BODY)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Resolution(None, False, f"{url}: {type(exc).__name__}: {exc}")
        if status == 200:
            did = _did_of(body.decode("utf-8", "replace"))
            if did is None:
                return Resolution(None, True, f"{url}: HTTP 200 without a DID")
            return Resolution(did, True, url)
        if status in (429,) or status >= 500:
            return Resolution(None, False, f"{url}: HTTP {status}")
        return Resolution(None, True, f"{url}: HTTP {status}")
