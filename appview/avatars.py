"""Members' avatars: the image their ``app.bsky.actor.profile/self`` record names, fetched
from their PDS in the background and cached beside the event log.

This is a cache of remote content, not a record anyone wrote to the forum: it never goes
through the event log (docs/adr/0013-avatars-are-a-cache.md). Pages never wait for it:
they show the image of a member whose avatar is already cached and the initials of
everyone else, and ask for the others (:meth:`Avatars.want`); a small worker
(:meth:`Avatars.run`, owned by the web app) fetches them, so the next view shows them.

Every fetch ends in a stored verdict (``avatar_members``): ``ok`` (the bytes are in
``avatar_blobs``, keyed by their CID) or why not. Answers about the member
(no profile, no avatar, not an image, too large...) are asked again after
AVATAR_REFRESH_HOURS; failures of the network (the DID not resolved, 429, 5xx, timeouts,
garbage) sooner, backing off exponentially up to that. A refresh that fails keeps the
image already cached. Only JPEG, PNG, WebP and GIF are kept, recognised by their bytes,
whatever the record's ``mimeType`` says (SVG can carry script, and a PDS may serve HTML).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp

from appview.auth.errors import IdentityError
from appview.auth.http_clients import PooledClient
from appview.auth.identity import Identity, is_did
from appview.backfill.fetcher import HostLimiter
from appview.clock import Clock
from appview.repos.cbor import CborError, Cid
from appview.settings import Settings
from appview.side_db import SideDatabase, make_side_tables

log = logging.getLogger(__name__)

PROFILE_COLLECTION: Final = "app.bsky.actor.profile"
PROFILE_MAX_BYTES: Final = 64 * 1024  # a profile record is a few hundred bytes
# the first retry after a network failure; each further one waits twice as long
FAILURE_BACKOFF_SECONDS: Final = 300.0
# how long a page trusts what it read of the table (another process may have fetched)
REREAD_SECONDS: Final = 60.0
QUEUE_SIZE: Final = 256  # DIDs waiting; more are dropped and asked for on a later view

Status = Literal["ok", "no_profile", "no_avatar", "bad_profile", "not_image",
                 "too_large", "bad_blob", "unresolved", "unavailable"]
# the network failed, not the member: asked again soon, and a cached image stays
TRANSIENT: Final = frozenset({"unresolved", "unavailable"})
# verdicts logged at INFO; the others (bad content, failures) at WARNING
ORDINARY: Final = frozenset({"ok", "no_profile", "no_avatar"})


def sniff_image(data: bytes) -> str | None:
    """The type of an image by its first bytes: JPEG, PNG, WebP or GIF; None for
    anything else (SVG, HTML, text, other formats)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _what_it_looks_like(data: bytes) -> str:
    head = data[:256].lstrip().lower()
    if head.startswith(b"<?xml") or b"<svg" in head:
        return "SVG (refused: it can carry script)"
    if head.startswith((b"<!doctype html", b"<html")) or b"<script" in head:
        return "HTML"
    return f"unrecognised bytes {data[:8].hex()}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one fetch found out. ``data``: the image's bytes when ``status`` is ``ok``,
    or None when they are the ones already cached under ``cid``."""

    status: Status
    detail: str
    cid: str | None = None
    mime: str | None = None
    data: bytes | None = None


class AvatarSource(Protocol):
    async def fetch(self, did: str, cached_cid: str | None) -> Verdict:
        """The member's avatar as their PDS has it now; ``cached_cid``: the one cached,
        whose bytes need not be fetched again. Never raises for what the network does."""
        ...

    async def aclose(self) -> None:
        ...


class _Transient(Exception):
    """A request that failed for reasons of the network; asked again later."""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    too_long: bool


class PdsAvatarSource:
    """Reads the profile record (``com.atproto.repo.getRecord``) and the blob
    (``com.atproto.sync.getBlob``) from the member's PDS, found through their DID document
    (``appview.auth.identity``: the DID cache shared with backfill). Requests to one PDS
    host are spaced by ``rate`` per second; each has ``timeout`` seconds in all."""

    def __init__(self, settings: Settings, *, identity: Identity | None = None,
                 timeout: float = 10.0) -> None:
        self._settings = settings
        self._net = PooledClient(settings, identity)
        self._timeout = timeout
        self._max_bytes = settings.avatar_max_bytes
        self._rate = settings.backfill_rate_limit
        self._limiters: dict[str, HostLimiter] = {}

    async def aclose(self) -> None:
        await self._net.aclose()

    async def fetch(self, did: str, cached_cid: str | None) -> Verdict:
        try:
            return await self._fetch(did, cached_cid)
        except _Transient as exc:
            return Verdict("unavailable", str(exc))

    async def _fetch(self, did: str, cached_cid: str | None) -> Verdict:
        try:
            pds = (await self._net.identity().resolve_did(did, fresh=False)).pds_url
        except IdentityError as exc:
            return Verdict("unresolved", str(exc))
        if not pds.startswith(("https://", "http://")):
            return Verdict("unresolved", f"the PDS endpoint {pds!r} is not an http(s) URL")
        answer = await self._get(pds, "com.atproto.repo.getRecord",
                                 {"repo": did, "collection": PROFILE_COLLECTION,
                                  "rkey": "self"}, PROFILE_MAX_BYTES)
        if answer.status != 200:
            # 400 RecordNotFound, RepoNotFound, RepoDeactivated...: the PDS's final word
            return Verdict("no_profile", f"getRecord: HTTP {answer.status}"
                                         f" {_error_name(answer.body)}".rstrip())
        if answer.too_long:
            return Verdict("bad_profile", f"the profile is over {PROFILE_MAX_BYTES} bytes")
        try:
            record = json.loads(answer.body)
        except ValueError:
            raise _Transient("getRecord answered 200 with something not JSON") from None
        value = record.get("value") if isinstance(record, dict) else None
        if not isinstance(value, dict):
            return Verdict("bad_profile", "the answer holds no record value")
        avatar = value.get("avatar")
        if avatar is None:
            return Verdict("no_avatar", "the profile names no avatar")
        ref = _blob_ref(avatar)
        if isinstance(ref, str):
            return Verdict("bad_profile", ref)
        cid, declared_mime, declared_size = ref
        if declared_mime == "image/svg+xml":
            return Verdict("not_image", "the profile declares an SVG avatar (refused: it"
                                        " can carry script)", cid=cid)
        if declared_size is not None and declared_size > self._max_bytes:
            return Verdict("too_large", f"the profile declares {declared_size} bytes; at"
                                        f" most {self._max_bytes}", cid=cid)
        if cid == cached_cid:
            return Verdict("ok", "unchanged", cid=cid)
        blob = await self._get(pds, "com.atproto.sync.getBlob", {"did": did, "cid": cid},
                               self._max_bytes)
        if blob.status != 200:
            return Verdict("no_avatar", f"getBlob: HTTP {blob.status}"
                                        f" {_error_name(blob.body)}".rstrip(), cid=cid)
        if blob.too_long:
            return Verdict("too_large", f"the blob is over {self._max_bytes} bytes", cid=cid)
        mime = sniff_image(blob.body)
        if mime is None:
            return Verdict("not_image", f"the blob is {_what_it_looks_like(blob.body)},"
                                        f" declared {declared_mime!r}", cid=cid)
        if Cid.for_raw(blob.body) != Cid.parse(cid):
            return Verdict("bad_blob", "the bytes served are not those of the CID", cid=cid)
        return Verdict("ok", f"{mime}, {len(blob.body)} bytes", cid=cid, mime=mime,
                       data=blob.body)

    async def _get(self, base: str, nsid: str, params: dict[str, str],
                   limit: int) -> _Answer:
        host = urlsplit(base).netloc
        limiter = self._limiters.setdefault(host, HostLimiter(self._rate, asyncio.sleep))
        await limiter.acquire()
        url = f"{base.rstrip('/')}/xrpc/{nsid}"
        try:
            async with self._net.session().get(
                    url, params=params, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                if response.status == 429 or response.status >= 500:
                    raise _Transient(f"{nsid}: HTTP {response.status}")
                # one byte past the limit tells a body that is too long
                body = await response.content.read(limit + 1)
                return _Answer(response.status, body[:limit], len(body) > limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Transient(f"{nsid}: {type(exc).__name__}: {exc}") from exc


def _error_name(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    return str(error)[:100] if isinstance(error, str) else ""


def _blob_ref(avatar: Any) -> tuple[str, str | None, int | None] | str:
    """(cid, declared mimeType, declared size) of a blob ref, or why it is none. The
    legacy form ``{"cid", "mimeType"}`` is still found in old profiles."""
    if not isinstance(avatar, dict):
        return "the avatar is not a blob ref"
    ref = avatar.get("ref")
    link = ref.get("$link") if isinstance(ref, dict) else avatar.get("cid")
    if not isinstance(link, str):
        return "the avatar's blob ref has no CID"
    try:
        Cid.parse(link)
    except CborError as exc:
        return f"the avatar's CID is not one: {exc}"
    mime = avatar.get("mimeType")
    size = avatar.get("size")
    return (link, mime if isinstance(mime, str) else None,
            size if isinstance(size, int) and not isinstance(size, bool) else None)


@dataclass(frozen=True, slots=True)
class AvatarRow:
    """What the table says of one member."""

    did: str
    status: str
    detail: str
    cid: str | None  # of the cached image shown (None: initials)
    mime: str | None
    fetched_at: float
    next_at: float  # when to ask the PDS again
    failures: int  # network failures in a row (the backoff's exponent)


@dataclass(frozen=True, slots=True)
class AvatarImage:
    cid: str
    mime: str
    data: bytes


@dataclass(frozen=True, slots=True)
class _Known:
    cid: str | None
    next_at: float
    read_at: float


@dataclass(frozen=True, slots=True)
class AvatarView:
    """What a page shows: the CID of each cached avatar, and who to fetch."""

    cids: dict[str, str]
    stale: list[str]


_ROW = "did, status, detail, cid, mime, fetched_at, next_at, failures"


class Avatars:
    """The cache (two tables beside the event log), what this process knows of it, and
    the fetching worker's queue."""

    def __init__(self, settings: Settings, clock: Clock, source: AvatarSource, *,
                 concurrency: int = 2, side: SideDatabase | None = None) -> None:
        self._settings = settings
        self._side = side or SideDatabase(settings)
        self._clock = clock
        self._source = source
        self._concurrency = concurrency
        self._refresh = settings.avatar_refresh_hours * 3600
        self._ready = False
        self._known: dict[str, _Known] = {}
        self._pending: set[str] = set()
        self._queue: asyncio.Queue[str] | None = None
        # changes whenever what this process shows changes: part of the pages' ETags
        self.version = 0

    def _now(self) -> float:
        return self._clock.now_us() / 1e6

    def _tables(self) -> None:
        if self._ready:
            return
        data = "BYTEA" if self._settings.is_postgres else "BLOB"
        make_side_tables(self._settings, (
            "CREATE TABLE IF NOT EXISTS avatar_members (did TEXT PRIMARY KEY,"
            " status TEXT NOT NULL, detail TEXT NOT NULL, cid TEXT, mime TEXT,"
            " fetched_at DOUBLE PRECISION NOT NULL, next_at DOUBLE PRECISION NOT NULL,"
            " failures INTEGER NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS avatar_blobs (cid TEXT PRIMARY KEY,"
            f" mime TEXT NOT NULL, data {data} NOT NULL)"))
        self._ready = True

    # --- reads (blocking: from a worker thread) -----------------------------------------

    def rows(self, dids: Sequence[str]) -> dict[str, AvatarRow]:
        self._tables()
        found: dict[str, AvatarRow] = {}
        wanted = sorted(set(dids))
        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            with self._side.transaction() as execute:
                rows = execute(f"SELECT {_ROW} FROM avatar_members"
                               f" WHERE did IN ({', '.join('?' * len(part))})", part)
            for row in rows:
                found[str(row[0])] = AvatarRow(
                    str(row[0]), str(row[1]), str(row[2]), row[3], row[4], float(row[5]),
                    float(row[6]), int(row[7]))
        return found

    def page_mark(self) -> str:
        """What pages showing avatars add to their ETag: the version, and the hour, so a
        page served from the page cache is rendered again at least hourly (rendering is
        what asks for the avatars that are due)."""
        return f"{self.version}.{int(self._now() // 3600)}"

    def view_from_memory(self, dids: Iterable[str]) -> AvatarView | None:
        """:meth:`view` when it needs no read of the table (on the event loop: no thread
        hop for a page whose authors were all looked up lately); None otherwise."""
        now = self._now()
        wanted = {d for d in dids if is_did(d)}
        if any(d not in self._known or now - self._known[d].read_at >= REREAD_SECONDS
               for d in wanted):
            return None
        return self._view(wanted, now)

    def view(self, dids: Iterable[str]) -> AvatarView:
        """The cached avatars of ``dids`` and those to fetch, from memory, reading the
        table only for members this process has not looked up for REREAD_SECONDS
        (blocking: from a worker thread)."""
        now = self._now()
        wanted = {d for d in dids if is_did(d)}
        unread = [d for d in wanted
                  if d not in self._known or now - self._known[d].read_at >= REREAD_SECONDS]
        if unread:
            rows = self.rows(unread)
            for did in unread:
                row = rows.get(did)
                known = _Known(row.cid, row.next_at, now) if row is not None else \
                    _Known(None, 0.0, now)
                before = self._known.get(did)
                if before is not None and before.cid != known.cid:
                    self.version += 1  # another process fetched it
                self._known[did] = known
        return self._view(wanted, now)

    def _view(self, wanted: set[str], now: float) -> AvatarView:
        cids = {d: k.cid for d in wanted if (k := self._known[d]).cid is not None}
        stale = sorted(d for d in wanted if self._known[d].next_at <= now)
        return AvatarView(cids, stale)

    def image(self, did: str) -> AvatarImage | None:
        """The cached image of ``did``, if any."""
        self._tables()
        with self._side.transaction() as execute:
            rows = execute("SELECT b.cid, b.mime, b.data FROM avatar_members m JOIN"
                           " avatar_blobs b ON b.cid = m.cid WHERE m.did = ?", (did,))
        if not rows:
            return None
        cid, mime, data = rows[0]
        return AvatarImage(str(cid), str(mime), bytes(data))

    # --- writes -------------------------------------------------------------------------

    def record(self, did: str, verdict: Verdict) -> AvatarRow:
        """Store what a fetch found (blocking) and return the member's row."""
        self._tables()
        if verdict.data is not None and (verdict.cid is None
                                         or sniff_image(verdict.data) != verdict.mime):
            # whatever a source says, only an image recognised by its bytes is kept
            verdict = Verdict("not_image", f"refused: {_what_it_looks_like(verdict.data)}",
                              cid=verdict.cid)
        now = self._now()
        with self._side.transaction() as execute:
            rows = execute("SELECT cid, mime, failures FROM avatar_members WHERE did = ?",
                           (did,))
            old_cid, old_mime, failures = rows[0] if rows else (None, None, 0)
            if verdict.status in TRANSIENT:
                # the network failed: keep showing what was cached, ask again sooner
                cid, mime = old_cid, old_mime
                failures = int(failures) + 1
                next_at = now + min(self._refresh,
                                    FAILURE_BACKOFF_SECONDS * 2 ** (failures - 1))
            elif verdict.status == "ok" and verdict.data is None and verdict.cid == old_cid:
                cid, mime, failures, next_at = old_cid, old_mime, 0, now + self._refresh
            elif verdict.status == "ok" and verdict.data is not None:
                cid, mime, failures, next_at = (verdict.cid, verdict.mime, 0,
                                                now + self._refresh)
                execute("INSERT INTO avatar_blobs (cid, mime, data) VALUES (?, ?, ?)"
                        " ON CONFLICT (cid) DO NOTHING", (cid, mime, verdict.data))
            else:  # no usable avatar (or "ok" for bytes another fetch dropped meanwhile)
                cid, mime, failures, next_at = None, None, 0, now + self._refresh
            execute("INSERT INTO avatar_members (did, status, detail, cid, mime, fetched_at,"
                    " next_at, failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (did)"
                    " DO UPDATE SET status = excluded.status, detail = excluded.detail,"
                    " cid = excluded.cid, mime = excluded.mime,"
                    " fetched_at = excluded.fetched_at, next_at = excluded.next_at,"
                    " failures = excluded.failures",
                    (did, verdict.status, verdict.detail[:500], cid, mime, now, next_at,
                     failures))
            if old_cid is not None and old_cid != cid:
                # content-addressed and shared: dropped when no member names it any more
                execute("DELETE FROM avatar_blobs WHERE cid = ? AND NOT EXISTS (SELECT 1"
                        " FROM avatar_members WHERE cid = ?)", (old_cid, old_cid))
        before = self._known.get(did)
        if before is None or before.cid != cid:
            self.version += 1
        self._known[did] = _Known(cid, next_at, now)
        return AvatarRow(did, verdict.status, verdict.detail[:500], cid, mime, now, next_at,
                         int(failures))

    # --- the worker -----------------------------------------------------------------------

    def want(self, dids: Iterable[str]) -> None:
        """Queue ``dids`` for fetching (on the event loop; never waits). Without a running
        worker, or with the queue full, they are asked for again on a later view."""
        queue = self._queue
        if queue is None:
            return
        for did in dids:
            if did in self._pending or not is_did(did):
                continue
            try:
                queue.put_nowait(did)
            except asyncio.QueueFull:
                return
            self._pending.add(did)

    async def fetch_now(self, did: str) -> AvatarRow:
        """Fetch ``did``'s avatar and store the verdict (the worker's step; also for the
        command line and tests)."""
        rows = await asyncio.to_thread(self.rows, [did])
        cached = rows[did].cid if did in rows else None
        verdict = await self._source.fetch(did, cached)
        # most members have no avatar or no profile at all: that is no news
        level = logging.INFO if verdict.status in ORDINARY else logging.WARNING
        log.log(level, "avatar of %s: %s (%s)", did, verdict.status, verdict.detail)
        return await asyncio.to_thread(self.record, did, verdict)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch what pages asked for until ``stop`` is set, ``concurrency`` at a time."""
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._queue = queue

        async def work() -> None:
            while True:
                did = await queue.get()
                try:
                    await self.fetch_now(did)
                except Exception:  # a bug or the database away: the next view asks again
                    log.exception("avatar of %s: the fetch failed", did)
                finally:
                    self._pending.discard(did)
                    queue.task_done()

        workers = [asyncio.create_task(work(), name=f"avatars-{n}")
                   for n in range(self._concurrency)]
        try:
            await stop.wait()
        finally:
            self._queue = None
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._pending.clear()
            await self.aclose()

    async def aclose(self) -> None:
        """Close the source's connections (the worker does when it stops)."""
        await self._source.aclose()

    async def settled(self) -> None:
        """Wait until every DID queued so far is fetched (tests, and the demo)."""
        queue = self._queue
        if queue is not None:
            await queue.join()

