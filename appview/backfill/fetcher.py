"""Fetching a repo's space.atbb.* records from its PDS, politely.

Per PDS host: at most ``rate`` requests per second (spaced evenly, so no burst ever
exceeds it), a pause until ``RateLimit-Reset`` when ``RateLimit-Remaining`` reaches 0,
``Retry-After`` honoured on 429, and retries with exponential backoff and jitter for
timeouts, connection errors and 5xx. A repo the PDS refuses for good (taken down,
suspended, deactivated, not found) raises :class:`RepoUnavailable`. ``getRepo`` (one CAR,
walked through its MST) is the way in; a PDS that does not serve it is read through
``describeRepo`` and ``listRecords`` per collection instead.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from appview.repos import mst
from appview.repos.car import CarError, read_car_blocks
from appview.repos.cbor import CborError, Cid, decode, decode_json, decode_links_raw
from events.model import ATBB_PREFIX

# Longest single wait a PDS can impose before we give the repo up as an error.
MAX_WAIT_SECONDS = 120.0
# Answers worth asking again after a pause; any other status is the PDS's final word.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
MAX_RATE_LIMITED = 100  # 429s waited out for one request before giving up on it
PERMANENT_ERRORS = frozenset({"RepoTakendown", "RepoSuspended", "RepoDeactivated",
                              "RepoNotFound", "AccountTakedown", "AccountDeactivated"})


class FetchError(Exception):
    """A request that failed after its retries; the message says what happened."""


class RepoUnavailable(FetchError):
    """The PDS refuses the repo for good (taken down, deactivated, not found...)."""


@dataclass(frozen=True)
class RepoRecord:
    collection: str
    rkey: str
    cid: str
    value: dict[str, Any]


@dataclass
class RepoSnapshot:
    did: str
    rev: str
    records: list[RepoRecord] = field(default_factory=list)
    via: str = "getRepo"


class HostLimiter:
    """Spaces requests to one host at least ``1/rate`` seconds apart, and holds them all
    while the host asked us to wait."""

    def __init__(self, rate: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next = 0.0
        self.sent: list[float] = []  # monotonic send times, for the bench's rate check

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await self._sleep(self._next - now)
                now = time.monotonic()
            self._next = now + self._interval
            self.sent.append(now)
            del self.sent[:-10_000]

    def hold(self, seconds: float) -> None:
        """No request to this host for ``seconds`` from now."""
        self._next = max(self._next, time.monotonic() + seconds)


class PdsFetcher:
    def __init__(self, session: aiohttp.ClientSession, *, rate: float,
                 attempts: int = 5, timeout: float = 30.0,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 wall_time: Callable[[], float] = time.time) -> None:
        self._session = session
        self._rate = rate
        self._attempts = attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._wall_time = wall_time
        self.limiters: dict[str, HostLimiter] = {}
        self.requests = 0
        self.rate_limited = 0

    def limiter(self, base_url: str) -> HostLimiter:
        host = urlsplit(base_url).netloc
        if host not in self.limiters:
            self.limiters[host] = HostLimiter(self._rate, self._sleep)
        return self.limiters[host]

    async def _get(self, base_url: str, nsid: str,
                   params: dict[str, str]) -> tuple[int, bytes, str]:
        """GET an XRPC method: (status, body, content type) of the first answer that is
        not a 429 or a transient failure. Raises FetchError when the retries run out."""
        limiter = self.limiter(base_url)
        url = f"{base_url.rstrip('/')}/xrpc/{nsid}"
        last = "no attempt"
        attempt = waits = 0
        while attempt < self._attempts:
            await limiter.acquire()
            self.requests += 1
            try:
                async with self._session.get(url, params=params,
                                             timeout=self._timeout) as response:
                    body = await response.read()
                    self._observe_limits(limiter, response)
                    if response.status == 429:
                        # the host's pace, not a failure: wait as told, up to a point
                        self.rate_limited += 1
                        waits += 1
                        wait = self._retry_after(response)
                        if wait > MAX_WAIT_SECONDS or waits > MAX_RATE_LIMITED:
                            raise FetchError(f"{nsid}: still rate limited after {waits} "
                                             f"waits (asked to wait {wait:.0f}s)")
                        limiter.hold(wait)
                        last = "429 Too Many Requests"
                        continue
                    if response.status not in TRANSIENT_STATUSES:
                        return response.status, body, response.content_type
                    last = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            attempt += 1
            if attempt < self._attempts:
                await self._sleep(min(30.0, 0.25 * 2 ** attempt) * (0.5 + self._rng.random()))
        raise FetchError(f"{nsid} failed after {self._attempts} attempts ({last})")

    def _observe_limits(self, limiter: HostLimiter, response: aiohttp.ClientResponse) -> None:
        remaining = response.headers.get("RateLimit-Remaining")
        if remaining is not None and remaining.strip() == "0" and response.status != 429:
            limiter.hold(min(MAX_WAIT_SECONDS, self._reset_in(response)))

    def _reset_in(self, response: aiohttp.ClientResponse) -> float:
        reset = response.headers.get("RateLimit-Reset", "")
        try:
            return max(0.0, float(reset) - self._wall_time())
        except ValueError:
            return 1.0

    def _retry_after(self, response: aiohttp.ClientResponse) -> float:
        value = response.headers.get("Retry-After", "")
        try:
            return max(0.0, float(value))
        except ValueError:
            return self._reset_in(response) or 1.0

    async def _json(self, base_url: str, nsid: str, params: dict[str, str]) -> Any:
        status, body, _ = await self._get(base_url, nsid, params)
        try:
            data = _json_object(body)
        except ValueError as exc:
            raise FetchError(f"{nsid}: HTTP {status} with a body that is not JSON") from exc
        if status != 200:
            _raise_xrpc(nsid, status, data)
        return data

    # -- the repo -----------------------------------------------------------------------

    async def fetch_repo(self, base_url: str, did: str) -> RepoSnapshot:
        status, body, content_type = await self._get(base_url, "com.atproto.sync.getRepo",
                                                     {"did": did})
        if status == 200 and "json" not in content_type:
            try:
                return snapshot_from_car(did, body)
            except (CarError, CborError, mst.MstError) as exc:
                # a CAR we cannot read: the repo's records are still listable
                reason = f"unreadable CAR: {exc}"
        else:
            try:
                data = _json_object(body)
            except ValueError:
                data = {}
            error = str(data.get("error", ""))
            if error in PERMANENT_ERRORS or status not in (200, 400, 404, 501):
                _raise_xrpc("com.atproto.sync.getRepo", status, data)
            reason = f"getRepo answered {status} {error}".strip()
        snapshot = await self.list_repo(base_url, did)
        snapshot.via = f"listRecords ({reason})"
        return snapshot

    async def hosted_repos(self, base_url: str, *, limit: int) -> AsyncIterator[list[str]]:
        """The active repos a PDS hosts (``listRepos``), a page at a time, at most
        ``limit``: a page that fails raises after the earlier pages were given."""
        async for page in self._pages(base_url, "com.atproto.sync.listRepos", {}, "1000",
                                      limit):
            yield page

    async def repos_by_collection(self, relay_url: str, collection: str
                                  ) -> AsyncIterator[list[str]]:
        """The repos a relay knows to hold records of ``collection``
        (``com.atproto.sync.listReposByCollection``), a page at a time."""
        async for page in self._pages(relay_url, "com.atproto.sync.listReposByCollection",
                                      {"collection": collection}, "2000", None):
            yield page

    async def _pages(self, base_url: str, nsid: str, params: dict[str, str], size: str,
                     limit: int | None) -> AsyncIterator[list[str]]:
        given = 0
        cursor: str | None = None
        seen: set[str] = set()
        while limit is None or given < limit:
            query = {**params, "limit": size}
            if cursor:
                query["cursor"] = cursor
            page = await self._json(base_url, nsid, query)
            repos = page.get("repos") or []
            dids = [str(r["did"]) for r in repos
                    if isinstance(r, dict) and isinstance(r.get("did"), str)
                    and r.get("active", True) is not False and r["did"] not in seen]
            if limit is not None:
                dids = dids[:limit - given]
            seen.update(dids)
            given += len(dids)
            if dids:
                yield dids
            next_cursor = page.get("cursor")
            # a cursor that does not move would page forever
            if not repos or not isinstance(next_cursor, str) or not next_cursor \
                    or next_cursor == cursor:
                break
            cursor = next_cursor

    async def has_forum_records(self, base_url: str, did: str) -> bool:
        """Whether a repo holds any space.atbb.* collection (``describeRepo``)."""
        described = await self._json(base_url, "com.atproto.repo.describeRepo", {"repo": did})
        return any(isinstance(c, str) and c.startswith(ATBB_PREFIX)
                   for c in described.get("collections", []))

    async def list_repo(self, base_url: str, did: str) -> RepoSnapshot:
        described = await self._json(base_url, "com.atproto.repo.describeRepo", {"repo": did})
        collections = [c for c in described.get("collections", [])
                       if isinstance(c, str) and c.startswith(ATBB_PREFIX)]
        try:
            latest = await self._json(base_url, "com.atproto.sync.getLatestCommit",
                                      {"did": did})
            rev = str(latest["rev"])
        except (FetchError, KeyError, TypeError):
            rev = ""
        snapshot = RepoSnapshot(did, rev, via="listRecords")
        for collection in sorted(collections, key=_forum_first):
            cursor: str | None = None
            seen: set[str] = set()
            while True:
                params = {"repo": did, "collection": collection, "limit": "100"}
                if cursor:
                    params["cursor"] = cursor
                page = await self._json(base_url, "com.atproto.repo.listRecords", params)
                records = page.get("records") or []
                for item in records:
                    record = _listed(collection, item)
                    if record is not None and record.rkey not in seen:
                        seen.add(record.rkey)
                        snapshot.records.append(record)
                cursor = page.get("cursor")
                if not records or not cursor:
                    break
        return snapshot


def _forum_first(collection: str) -> tuple[int, str]:
    return (0 if collection.startswith("space.atbb.forum.") else 1, collection)


def _json_object(body: bytes) -> dict[str, Any]:
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _raise_xrpc(nsid: str, status: int, data: dict[str, Any]) -> None:
    error = str(data.get("error") or f"HTTP {status}")
    message = str(data.get("message") or "")
    text = f"{nsid}: {error}" + (f" ({message})" if message else "")
    if error in PERMANENT_ERRORS:
        raise RepoUnavailable(text)
    raise FetchError(text)


def _listed(collection: str, item: Any) -> RepoRecord | None:
    if not isinstance(item, dict):
        return None
    uri, cid, value = item.get("uri"), item.get("cid"), item.get("value")
    if not isinstance(uri, str) or not isinstance(cid, str) or not isinstance(value, dict):
        return None
    return RepoRecord(collection, uri.rsplit("/", 1)[-1], cid, value)


def snapshot_from_car(did: str, car: bytes) -> RepoSnapshot:
    """The space.atbb.* records of a repo CAR, walked through its MST from the commit."""
    root, blocks = read_car_blocks(car)
    commit = decode(blocks[root]) if root in blocks else None
    if not isinstance(commit, dict) or commit.get("did") != did:
        raise CarError(f"the CAR's commit is not {did}'s")
    rev = commit.get("rev")
    if not isinstance(rev, str):
        raise CarError("the commit has no rev")

    def load(cid: Cid) -> Any:
        # the walk knows an MST node's links (l, v, t) and takes them as raw CID bytes
        block = blocks.get(cid)
        return None if block is None else decode_links_raw(block)

    snapshot = RepoSnapshot(did, rev)
    for key, cid in mst.walk(commit.get("data"), load):
        collection, _, rkey = key.partition("/")
        if not collection.startswith(ATBB_PREFIX):
            continue
        block = blocks.get(cid)
        if block is None:
            raise CarError(f"record block {cid} of {key} is missing")
        value = decode_json(block)
        if isinstance(value, dict):
            snapshot.records.append(RepoRecord(collection, rkey, str(cid), value))
    snapshot.records.sort(key=lambda r: (_forum_first(r.collection), r.rkey))
    return snapshot
