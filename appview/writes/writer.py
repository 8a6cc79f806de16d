"""The record writer: every write the appview makes to a repository on someone's behalf
(a member's post, reaction or membership; the forum's own records, written by the Forum
account's agent for a moderator or an admin)
goes through :class:`RecordWriter`, in this order:

1. **Validate** with our own lexicon validator, as ingest will judge the record: a
   record our projections would mark invalid is never sent (``InvalidRecord`` names the
   field).
2. **Limit**: one write more for the acting member (``RateLimited``, with the seconds to
   wait).
3. **Write** through the session (``createRecord`` / ``putRecord`` / ``deleteRecord``).
   A timeout, an unreachable PDS or a 5xx is ``PdsUnavailable``; a 4xx ``WriteRefused``
   in the PDS's words; a session that cannot be renewed ``SignInAgain``. None of them
   leaves anything behind: the log and read models change only after the PDS accepted.
   (An expired access token is refreshed once and the write sent again by the session
   itself, ``appview.auth.pds_session``.)
4. **Log**: the record as written, with the uri, cid and commit rev of the PDS's
   answer, is appended to the event log at once as a ``RecordEvent`` with source
   ``local``. The same version arriving later from the firehose or Jetstream is a
   duplicate by (uri, rev), so each write is one version in the log whatever the order.
5. **Project** the log up to that event, so the author's next page shows the write.

A PDS that answers without ``commit.rev`` (versions before mid-2024 did) is asked for
it: ``com.atproto.sync.getLatestCommit``, the record itself (``repo.getRecord``), then
``getLatestCommit`` again. When both heads are the same commit and the record there is
the one written (gone, for a delete), that head's rev is a rev at which the record is
exactly as written, and the event is logged with it. The network's copy then carries
the commit's own rev, which may be older if the member wrote again in between: it is
stored as one more version with the same content, and the read models (greatest rev
wins) are the same. When the heads differ twice or the record has changed, nothing is
logged: the write shows when the network delivers it (``Written.rev`` is None).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from appview.auth.errors import AuthError, SessionExpired
from appview.auth.pds_session import XrpcFailure
from appview.clock import Clock
from appview.writes.errors import (
    InvalidRecord,
    PdsUnavailable,
    SignInAgain,
    WriteRefused,
)
from appview.writes.ratelimit import WriteLimiter
from events.ids import TID
from events.lexicon import LexiconValidator
from events.log import EventLog
from events.model import LogEvent, RecordEvent, RecordOperation, at_uri, tid_to_int

log = logging.getLogger(__name__)

# How long a write waits for the read models to reach it before answering anyway (the
# live projector applies it moments later): a projection that fails must not hold the
# member's request.
PROJECT_WAIT_SECONDS = 5.0


class RepoSession(Protocol):
    """What the writer needs of a session at a repository's PDS (``PdsSession`` is
    one): its DID and the repo calls, each answering the PDS's JSON and raising
    ``XrpcFailure``, ``SessionExpired`` or ``TransportError`` (``AuthError`` all)."""

    @property
    def did(self) -> str: ...

    async def create_record(self, collection: str, record: Mapping[str, Any], *,
                            rkey: str | None = None, validate: bool | None = None,
                            ) -> dict[str, Any]: ...

    async def put_record(self, collection: str, rkey: str, record: Mapping[str, Any], *,
                         swap_record: str | None = None, validate: bool | None = None,
                         ) -> dict[str, Any]: ...

    async def delete_record(self, collection: str, rkey: str, *,
                            swap_record: str | None = None) -> dict[str, Any]: ...

    async def call(self, method: str, nsid: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None) -> dict[str, Any]: ...


class Projector(Protocol):
    """The live read models, as the writer drives them (``appview.projector``)."""

    def project_through(self, position: int) -> None:
        """Apply the log at least up to ``position`` (blocking); cheap when a run the
        caller waited behind already did."""
        ...

    def position(self) -> int:
        """The lowest log position every read model has applied."""
        ...


@dataclass(frozen=True, slots=True)
class Written:
    """A write the PDS accepted. ``rev`` and ``position`` (the event's log position)
    are None when the PDS gave no rev that could be trusted: the write shows when the
    network delivers it. ``cid`` is None for a delete. ``shown`` says whether the read
    models had applied it when the writer answered."""

    operation: RecordOperation
    did: str
    collection: str
    rkey: str
    cid: str | None
    rev: str | None
    record: dict[str, Any] | None
    position: int | None
    shown: bool

    @property
    def uri(self) -> str:
        return at_uri(self.did, self.collection, self.rkey)


class RecordKeys:
    """Record keys for new records: TIDs from the clock, strictly increasing in this
    process (the clock may stand still or step back), with a random clock id per
    process as the TID specification asks."""

    def __init__(self, clock: Clock, clock_id: int | None = None) -> None:
        self._clock = clock
        self._clock_id = secrets.randbelow(1024) if clock_id is None else clock_id
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            micros = max(self._clock.now_us(), self._last + 1)
            self._last = micros
        return str(TID.from_time(micros, self._clock_id))


def _field(reason: str) -> str:
    """The record field a validator reason names (``post.reply.root.uri: ...`` →
    ``reply.root.uri``); ``record`` when it names none."""
    head, sep, _rest = reason.partition(": ")
    if not sep or " " in head or "." not in head:
        return "record"
    return head.split(".", 1)[1]


def _valid_rev(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        tid_to_int(value)
    except ValueError:
        return None
    return value


class RecordWriter:
    """Validates, writes through a ``RepoSession``, logs and projects (module doc).
    Safe to share: one per process, built by the composition root."""

    def __init__(self, *, event_log: EventLog, validator: LexiconValidator, forum_did: str,
                 clock: Clock, projector: Projector, limiter: WriteLimiter,
                 keys: RecordKeys | None = None,
                 project_wait_seconds: float = PROJECT_WAIT_SECONDS) -> None:
        self._log = event_log
        self._validator = validator
        self._forum_did = forum_did
        self._clock = clock
        self._projector = projector
        self.limiter = limiter
        self._keys = keys or RecordKeys(clock)
        self._project_wait = project_wait_seconds

    # -- the three writes -------------------------------------------------------------

    def check(self, did: str, collection: str, rkey: str, record: Mapping[str, Any]) -> None:
        """Raise ``InvalidRecord`` when the record would be marked invalid (the first
        step of every write; the web also uses it to check a form before anything)."""
        verdict = self._validator.validate(collection, rkey, dict(record), did=did,
                                           forum_did=self._forum_did)
        if not verdict.valid:
            reason = verdict.reason or "invalid record"
            raise InvalidRecord(_field(reason), reason)

    async def create(self, session: RepoSession, collection: str, record: Mapping[str, Any],
                     *, rkey: str | None = None, actor: str | None = None) -> Written:
        """Create ``record`` in the session's repo. ``rkey`` defaults to a new TID;
        ``actor`` is the member the write is counted against (default the session's
        DID: the Forum account's agent writing for a moderator passes the moderator)."""
        key = rkey or self._keys.next()
        self.check(session.did, collection, key, record)
        self.limiter.take(actor or session.did)
        answer = await self._pds(session.create_record(collection, record, rkey=key))
        return await self._logged(session, "create", collection, key, dict(record), answer)

    async def put(self, session: RepoSession, collection: str, rkey: str,
                  record: Mapping[str, Any], *, swap_record: str | None = None,
                  actor: str | None = None) -> Written:
        """Replace (or create) the record at ``rkey``; with ``swap_record`` (the CID
        the caller last saw) the PDS refuses if it changed meanwhile (a 409)."""
        self.check(session.did, collection, rkey, record)
        self.limiter.take(actor or session.did)
        answer = await self._pds(session.put_record(collection, rkey, record,
                                                    swap_record=swap_record))
        return await self._logged(session, "update", collection, rkey, dict(record), answer)

    async def delete(self, session: RepoSession, collection: str, rkey: str, *,
                     swap_record: str | None = None, actor: str | None = None) -> Written:
        verdict = self._validator.validate_delete(collection, rkey, did=session.did,
                                                  forum_did=self._forum_did)
        if not verdict.valid:
            reason = verdict.reason or "invalid deletion"
            raise InvalidRecord(_field(reason), reason)
        self.limiter.take(actor or session.did)
        answer = await self._pds(session.delete_record(collection, rkey,
                                                       swap_record=swap_record))
        return await self._logged(session, "delete", collection, rkey, None, answer)

    async def log_observed(self, event: LogEvent) -> tuple[int | None, bool]:
        """Log ``event`` as every write is logged (steps 4 and 5): appended, then
        projected so the next page shows it; also what the appview saw for itself
        without a write (a signed-in member's verified handle). The log position (None:
        the log held it already) and whether the read models had applied it when this
        returned."""
        return await asyncio.to_thread(self._append_and_project, event)

    # -- the PDS's answer -------------------------------------------------------------

    @staticmethod
    async def _pds(call: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = await call
        except SessionExpired as exc:
            raise SignInAgain(f"Your session has ended: sign in again. ({exc})") from exc
        except XrpcFailure as exc:
            if exc.status >= 500 or exc.status == 429:
                raise PdsUnavailable(
                    f"Your PDS could not take the write now; nothing was saved. ({exc})"
                ) from exc
            if exc.error == "InvalidSwap":
                # the reference PDS says only "Record was at <cid>": say what it means
                raise WriteRefused(
                    "This post was changed elsewhere since the forum last saw it, so your"
                    " PDS refused the edit and nothing was saved: reload it and edit"
                    f" again. ({exc})", pds_status=exc.status, pds_error=exc.error) from exc
            raise WriteRefused(f"Your PDS refused the write: {exc}", pds_status=exc.status,
                               pds_error=exc.error) from exc
        except AuthError as exc:  # TransportError: unreachable, timed out, not HTTP
            raise PdsUnavailable(
                f"Your PDS did not answer; nothing was saved here. ({exc})") from exc
        return answer

    async def _logged(self, session: RepoSession, operation: RecordOperation,
                      collection: str, rkey: str, record: dict[str, Any] | None,
                      answer: Mapping[str, Any]) -> Written:
        did = session.did
        uri = at_uri(did, collection, rkey)
        cid: str | None = None
        if operation != "delete":
            cid = answer.get("cid") if isinstance(answer.get("cid"), str) else None
            if answer.get("uri") != uri or cid is None:
                raise WriteRefused(
                    f"Your PDS answered the write with {answer.get('uri')!r} and no usable"
                    f" CID, not {uri}: it may not have been saved as sent.",
                    pds_status=200, pds_error="UnexpectedAnswer")
        commit = answer.get("commit")
        rev = _valid_rev(commit.get("rev")) if isinstance(commit, dict) else None
        if rev is None:
            rev = await self._rev_after(session, collection, rkey, cid)
        if rev is None:
            log.warning("%s of %s accepted without a rev we can trust; it will show when"
                        " the network delivers it", operation, uri)
            return Written(operation, did, collection, rkey, cid, None, record, None, False)
        event = RecordEvent(
            operation=operation, did=did, collection=collection, rkey=rkey, rev=rev,
            cid=cid, record=record, valid=True, reason=None, source="local",
            source_cursor=None, observed_at=self._clock.now_us())
        position, shown = await self.log_observed(event)
        return Written(operation, did, collection, rkey, cid, rev, record, position, shown)

    def _append_and_project(self, event: LogEvent) -> tuple[int | None, bool]:
        result = self._log.append([event])
        position = result.positions[0] if result.positions else None
        return position, self._project_through(position)

    async def _rev_after(self, session: RepoSession, collection: str, rkey: str,
                         cid: str | None) -> str | None:
        """The rev of a head commit at which the record is as written (module doc)."""
        for _attempt in range(2):
            try:
                first = await session.call("GET", "com.atproto.sync.getLatestCommit",
                                           params={"did": session.did})
                found = await self._current_cid(session, collection, rkey)
                second = await session.call("GET", "com.atproto.sync.getLatestCommit",
                                            params={"did": session.did})
            except AuthError as exc:
                log.warning("could not ask %s for its rev: %s", session.did, exc)
                return None
            rev = _valid_rev(first.get("rev"))
            if rev is None or first.get("cid") != second.get("cid"):
                continue
            return rev if found == cid else None
        return None

    @staticmethod
    async def _current_cid(session: RepoSession, collection: str, rkey: str) -> str | None:
        try:
            current = await session.call("GET", "com.atproto.repo.getRecord", params={
                "repo": session.did, "collection": collection, "rkey": rkey})
        except XrpcFailure as exc:
            if exc.status in (400, 404):  # RecordNotFound: deleted
                return None
            raise
        value = current.get("cid")
        return value if isinstance(value, str) else None

    # -- read-your-writes -------------------------------------------------------------

    def _project_through(self, position: int | None) -> bool:
        """Project until the read models hold ``position`` (the log's head when the
        event was already there: the network's copy came first). Another projector
        (the live loop of another process) may apply it meanwhile: that counts too.
        False when it did not happen within the wait; the live projector will."""
        target = self._log.head() if position is None else position
        deadline = time.monotonic() + self._project_wait
        delay = 0.01
        while True:
            try:
                self._projector.project_through(target)
            except Exception as exc:  # a concurrent projector won the position, or a fault
                log.debug("projecting after a write: %s", exc)
            if self._projector.position() >= target:
                return True
            if time.monotonic() >= deadline:
                log.warning("the read models did not reach position %d within %.1f s of"
                            " a write", target, self._project_wait)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

