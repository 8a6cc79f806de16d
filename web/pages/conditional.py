"""Conditional GETs for pages and feeds: ``ETag`` and ``Last-Modified``, 304 when unchanged.

A page is a function of: the read models' state (each projection's tracked position and
version), the bans in force now (a temporary ban expiring changes what is visible without
any new event), the viewer (DID and permissions), the reader's theme choice, the URL, and
the code that renders it (templates and static files). The ETag is a digest of all of
them, computed from a cheap read before the page's queries run, so a 304 costs no page
query. The position is read *before* the page's snapshot: the page is then at least as new
as its ETag claims, so a stale 304 cannot happen (at worst an unneeded 200).

``Last-Modified`` has one-second resolution, too coarse to tell apart two states of the
same second. So each state (ETag) gets the time this process first saw it, rounded up to a
whole second, and the header is only sent once that second has passed: a client holding
``Last-Modified: S`` got it at or after S, every later state is first seen after that, so
its stamp is later than S and ``If-Modified-Since: S`` cannot match it. A forgotten or
never-seen state gets a fresh, later stamp (safe: a 200 rather than a 304).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from appview.clock import Clock

_CAPACITY = 20_000


def code_digest(files: Iterable[Path]) -> str:
    """A digest of the files that render pages: pages change when the code does."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def make_etag(parts: Iterable[str]) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f'W/"{digest[:32]}"'


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str
    last_modified: datetime | None


class Freshness:
    """First-seen times of page states, for ``Last-Modified`` (one per application;
    touched only from the event loop)."""

    def __init__(self, clock: Clock, code: str, capacity: int = _CAPACITY) -> None:
        self._clock = clock
        self.code = code
        self._capacity = capacity
        self._first_seen: OrderedDict[str, int] = OrderedDict()

    def validators(self, parts: Iterable[str]) -> Validators:
        etag = make_etag([self.code, *parts])
        now_us = self._clock.now_us()
        seen = self._first_seen.get(etag)
        if seen is None:
            seen = math.ceil(now_us / 1_000_000)
            self._first_seen[etag] = seen
            if len(self._first_seen) > self._capacity:
                self._first_seen.popitem(last=False)
        else:
            self._first_seen.move_to_end(etag)
        stamp = datetime.fromtimestamp(seen, UTC) if seen * 1_000_000 <= now_us else None
        return Validators(etag, stamp)


def _etag_matches(header: str, etag: str) -> bool:
    opaque = etag.removeprefix("W/")
    for candidate in header.split(","):
        value = candidate.strip()
        if value == "*" or value.removeprefix("W/") == opaque:
            return True
    return False


def is_not_modified(request: web.Request, validators: Validators) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, validators.etag)
    since = request.if_modified_since
    return (
        since is not None
        and validators.last_modified is not None
        and validators.last_modified <= since
    )


def apply(response: web.StreamResponse, validators: Validators, *, private: bool) -> None:
    response.headers["ETag"] = validators.etag
    if validators.last_modified is not None:
        response.last_modified = validators.last_modified
    # Revalidate every time (cheap: a 304) rather than risk showing a stale page.
    response.headers["Cache-Control"] = ("private" if private else "public") + ", no-cache"
    response.headers["Vary"] = "Cookie, Authorization"


def not_modified(validators: Validators, *, private: bool) -> web.Response:
    response = web.Response(status=304)
    apply(response, validators, private=private)
    return response
