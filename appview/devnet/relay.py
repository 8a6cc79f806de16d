"""The devnet relay: crawls PDS hosts over their XRPC and answers
``com.atproto.sync.listReposByCollection`` for the whole network, as a real relay's
collection directory does.

A crawl lists each host's repos (``com.atproto.sync.listRepos``) and reads each active
one (``com.atproto.sync.getRepo``, the MST walked from the signed commit) to learn which
collections it holds. It talks to hosts only through their HTTP API, so it crawls the
reference PDS as well as the devnet's own. Hosts come from the constructor, from
``add_host`` or from ``com.atproto.sync.requestCrawl``; ``crawl()`` refreshes every host
(the devnet calls it after seeding; tests call it after writing), and ``crawl_interval_s``
keeps refreshing in the background while the app runs.

``app()`` builds the served application from ``routes()``: a subclass or a later part
adds its methods (the relay's firehose) by extending that list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import aiohttp
from aiohttp import web

from appview.repos import mst
from appview.repos.car import CarError, read_car_blocks
from appview.repos.cbor import CborError, Cid, decode, decode_links_raw

log = logging.getLogger(__name__)

Handler: TypeAlias = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route: TypeAlias = tuple[str, str, Handler]

_LIST_LIMIT_DEFAULT = 500
_LIST_LIMIT_MAX = 2000


@dataclass
class HostState:
    """What the relay knows of one PDS host: its repos' collections, the last crawl."""

    url: str
    collections: dict[str, frozenset[str]] = field(default_factory=dict)  # did -> NSIDs
    crawls: int = 0
    last_error: str | None = None


class CrawlError(Exception):
    """A host or repo the crawl could not read; the message says which and why."""


def repo_collections(did: str, car: bytes) -> frozenset[str]:
    """The collections of a repo CAR, from the keys of its MST."""
    root, blocks = read_car_blocks(car)
    commit = decode(blocks[root]) if root in blocks else None
    if not isinstance(commit, dict) or commit.get("did") != did:
        raise CarError(f"the CAR's commit is not {did}'s")

    def load(cid: Cid) -> Any:
        block = blocks.get(cid)
        return None if block is None else decode_links_raw(block)

    return frozenset(key.partition("/")[0] for key, _ in mst.walk(commit.get("data"), load))


class Relay:
    def __init__(self, hosts: Iterable[str] = (), *,
                 crawl_interval_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, HostState] = {}
        for url in hosts:
            self.add_host(url)
        self.crawl_interval_s = crawl_interval_s
        self._crawl_lock = asyncio.Lock()

    # --- hosts and crawling ------------------------------------------------------------

    def add_host(self, url: str) -> None:
        url = url.rstrip("/")
        with self._lock:
            self._hosts.setdefault(url, HostState(url))

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted(self._hosts)

    def collections_of(self, did: str) -> frozenset[str]:
        with self._lock:
            for state in self._hosts.values():
                if did in state.collections:
                    return state.collections[did]
        return frozenset()

    async def crawl(self) -> None:
        """Read every host again; a host that fails keeps what the last crawl found and
        says why in ``/_devnet/status``."""
        async with self._crawl_lock, aiohttp.ClientSession() as session:
            for url in self.hosts():
                try:
                    found = await self._crawl_host(session, url)
                except CrawlError as exc:
                    log.warning("relay: crawling %s failed: %s", url, exc)
                    with self._lock:
                        self._hosts[url].last_error = str(exc)
                    continue
                with self._lock:
                    state = self._hosts[url]
                    state.collections = found
                    state.crawls += 1
                    state.last_error = None

    async def _crawl_host(self, session: aiohttp.ClientSession,
                          url: str) -> dict[str, frozenset[str]]:
        found: dict[str, frozenset[str]] = {}
        async for did in _listed_repos(session, url):
            try:
                car = await _get(session, url, "com.atproto.sync.getRepo", {"did": did})
                found[did] = repo_collections(did, car)
            except (CrawlError, CarError, CborError, mst.MstError) as exc:
                # one unreadable repo is left out, the host's others are still indexed
                log.warning("relay: repo %s on %s left out: %s", did, url, exc)
        return found

    async def _crawl_forever(self, app: web.Application) -> AsyncIterator[None]:
        interval = self.crawl_interval_s
        task = None
        if interval is not None:

            async def loop() -> None:
                while True:
                    await self.crawl()
                    await asyncio.sleep(interval)

            task = asyncio.create_task(loop())
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the app -----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            ("GET", "/xrpc/com.atproto.sync.listReposByCollection",
             self._list_repos_by_collection),
            ("POST", "/xrpc/com.atproto.sync.requestCrawl", self._request_crawl),
            ("GET", "/xrpc/_health", self._health),
            ("GET", "/_devnet/status", self._status),
        ]

    def app(self) -> web.Application:
        app = web.Application()
        for method, path, handler in self.routes():
            app.router.add_route(method, path, handler)
        app.cleanup_ctx.append(self._crawl_forever)
        return app

    async def _list_repos_by_collection(self, request: web.Request) -> web.Response:
        collection = request.query.get("collection", "")
        if not collection:
            return _error(400, "Error: Params must have the property \"collection\"")
        try:
            limit = int(request.query.get("limit", _LIST_LIMIT_DEFAULT))
        except ValueError:
            return _error(400, "Error: limit must be an integer")
        if not 1 <= limit <= _LIST_LIMIT_MAX:
            return _error(400, f"Error: limit must be between 1 and {_LIST_LIMIT_MAX}")
        cursor = request.query.get("cursor", "")
        with self._lock:
            holders = sorted({did for state in self._hosts.values()
                              for did, held in state.collections.items()
                              if collection in held and did > cursor})
        page = holders[:limit]
        body: dict[str, Any] = {"repos": [{"did": did} for did in page]}
        if len(holders) > limit:
            body["cursor"] = page[-1]
        return web.json_response(body)

    async def _request_crawl(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON")
        hostname = body.get("hostname") if isinstance(body, dict) else None
        if not isinstance(hostname, str) or not hostname:
            return _error(400, "Input must have the property \"hostname\"")
        # a real relay crawls https://hostname; the devnet's hosts are http on loopback
        self.add_host(hostname if "://" in hostname else f"http://{hostname}")
        await self.crawl()
        return web.json_response({})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "atbb-devnet-relay"})

    async def _status(self, request: web.Request) -> web.Response:
        with self._lock:
            hosts = [{"url": s.url, "repos": len(s.collections), "crawls": s.crawls,
                      "lastError": s.last_error} for s in self._hosts.values()]
        return web.json_response({"hosts": hosts})


async def _listed_repos(session: aiohttp.ClientSession, url: str) -> AsyncIterator[str]:
    cursor = ""
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = _json(await _get(session, url, "com.atproto.sync.listRepos", params))
        repos = page.get("repos") or []
        for repo in repos:
            if isinstance(repo, dict) and isinstance(repo.get("did"), str) \
                    and repo.get("active", True) is not False:
                yield repo["did"]
        next_cursor = page.get("cursor")
        if not repos or not isinstance(next_cursor, str) or next_cursor in ("", cursor):
            return
        cursor = next_cursor


async def _get(session: aiohttp.ClientSession, url: str, nsid: str,
               params: dict[str, str]) -> bytes:
    try:
        async with session.get(f"{url}/xrpc/{nsid}", params=params,
                               timeout=aiohttp.ClientTimeout(total=30)) as response:
            body = await response.read()
            if response.status != 200:
                raise CrawlError(f"{nsid} at {url}: HTTP {response.status} "
                                 f"{body[:200].decode(errors='replace')}")
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CrawlError(f"{nsid} at {url}: {type(exc).__name__}: {exc}") from exc


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise CrawlError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CrawlError("not a JSON object")
    return data


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": "InvalidRequest", "message": message}, status=status)
