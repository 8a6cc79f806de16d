"""The devnet's Jetstream v1 server: ``GET /subscribe`` streams every devnet write as the
exact v1 JSON a production host sends, from an in-memory history that honours ``cursor``,
``wantedCollections``, ``wantedDids`` and ``compress``, with faults injected on demand.

It is the :class:`~appview.devnet.sink.FirehoseSink` of the devnet PDS hosts: each call
becomes events stamped with a strictly increasing ``time_us`` from the devnet clock.
Connections follow the history by index, not by time, so a replay from a cursor turns
into the live tail with no gap and no duplicate at the seam, even though ``time_us`` of
published raw lines may go backwards (as in real traffic).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

import zstandard
from aiohttp import web
from multidict import MultiMapping

from appview.devnet.clock import DevClock
from appview.devnet.fault_stream import ConnectionClosed, FaultedStream, StreamConnection
from appview.devnet.faults import FaultPlan, Malformed, Resend
from appview.devnet.jetstream_format import account_line, commit_line, identity_line
from appview.devnet.sink import CommitOp

log = logging.getLogger(__name__)

MAX_WANTED_COLLECTIONS = 100
MAX_WANTED_DIDS = 10_000
_BATCH = 256
_SEGMENT = r"[a-zA-Z0-9-]+"
_EXACT_COLLECTION = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT}){{2,}}$")
_PREFIX_COLLECTION = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*\.\*$")


@dataclass(slots=True)
class StreamEvent:
    """One frame of history: the exact line, and what the filters need to know of it.
    ``did``/``kind``/``collection`` are None for a raw line that does not say."""

    time_us: int
    line: str
    did: str | None
    kind: str | None
    collection: str | None
    _zstd: bytes | None = field(default=None, repr=False, compare=False)

    def compressed(self, compressor: zstandard.ZstdCompressor) -> bytes:
        if self._zstd is None:
            self._zstd = compressor.compress(self.line.encode("utf-8"))
        return self._zstd


class QueryError(ValueError):
    """A ``/subscribe`` query the server refuses (HTTP 400); the message says why."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one connection asked for."""

    cursor: int | None = None
    collections: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    dids: frozenset[str] = frozenset()
    compress: bool = False

    def wants(self, event: StreamEvent) -> bool:
        if self.dids and event.did is not None and event.did not in self.dids:
            return False
        if event.kind != "commit" or event.collection is None:
            return True  # identity and account events pass the collection filter
        if not self.collections and not self.prefixes:
            return True
        return event.collection in self.collections or event.collection.startswith(
            self.prefixes
        )


def parse_subscription(query: MultiMapping[str]) -> Subscription:
    """The subscription a ``/subscribe`` query string describes (a multidict: the wanted
    parameters repeat); raises :class:`QueryError` with the reason."""
    cursor: int | None = None
    raw_cursor = query.get("cursor")
    if raw_cursor not in (None, ""):
        try:
            cursor = int(raw_cursor)
        except ValueError:
            raise QueryError(f"cursor must be unix microseconds, got {raw_cursor!r}") from None
    wanted = [value for value in query.getall("wantedCollections", []) if value]
    if len(wanted) > MAX_WANTED_COLLECTIONS:
        raise QueryError(
            f"at most {MAX_WANTED_COLLECTIONS} wantedCollections, got {len(wanted)}"
        )
    exact: set[str] = set()
    prefixes: list[str] = []
    for collection in wanted:
        if _PREFIX_COLLECTION.match(collection):
            prefixes.append(collection[:-1])  # keep the dot: "space.atbb.*" -> "space.atbb."
        elif _EXACT_COLLECTION.match(collection):
            exact.add(collection)
        else:
            raise QueryError(
                f"wantedCollections entry {collection!r} is neither an NSID nor a prefix.*"
            )
    dids = [value for value in query.getall("wantedDids", []) if value]
    if len(dids) > MAX_WANTED_DIDS:
        raise QueryError(f"at most {MAX_WANTED_DIDS} wantedDids, got {len(dids)}")
    for did in dids:
        if not did.startswith("did:"):
            raise QueryError(f"wantedDids entry {did!r} is not a DID")
    return Subscription(
        cursor=cursor,
        collections=frozenset(exact),
        prefixes=tuple(prefixes),
        dids=frozenset(dids),
        compress=query.get("compress", "").lower() == "true",
    )


def _describe_raw(line: str) -> tuple[int | None, str | None, str | None, str | None]:
    """(time_us, did, kind, collection) of a raw line, as far as it says."""
    try:
        data = json.loads(line)
    except ValueError:
        return None, None, None, None
    if not isinstance(data, dict):
        return None, None, None, None
    time_us = data.get("time_us")
    did, kind, commit = data.get("did"), data.get("kind"), data.get("commit")
    collection = commit.get("collection") if isinstance(commit, dict) else None
    return (
        time_us if isinstance(time_us, int) and not isinstance(time_us, bool) else None,
        did if isinstance(did, str) else None,
        kind if isinstance(kind, str) else None,
        collection if isinstance(collection, str) else None,
    )


class _Connection(StreamConnection["StreamEvent"]):
    """One subscriber: its subscription and where replay ends (the rest is in
    ``StreamConnection``: position, what it sent, its faults in progress)."""

    def __init__(self, subscription: Subscription, next_index: int, seam: int) -> None:
        super().__init__(next_index)
        self.subscription = subscription
        self.seam = seam  # history before this index is replay, filtered by the cursor
        self.compressor = zstandard.ZstdCompressor()


class JetstreamServer(FaultedStream["StreamEvent"]):
    """Jetstream v1 over an in-memory history. ``retention_us`` simulates history loss:
    events older than that (by the clock) are dropped, and an older cursor is clamped to
    the oldest event kept."""

    def __init__(
        self,
        clock: DevClock,
        *,
        retention_us: int | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults)
        self._clock = clock
        self._retention_us = retention_us
        self._events: list[StreamEvent] = []
        self._base = 0  # absolute index of _events[0]; grows as retention drops events
        self._last_time_us = 0
        self._seq = 0

    # --- the FirehoseSink port ------------------------------------------------------

    def commit(self, did: str, rev: str, ops: list[CommitOp]) -> None:
        with self._lock:
            for op in ops:
                time_us = self._next_time_locked()
                line = commit_line(did, time_us, rev, op)
                self._append_locked(StreamEvent(time_us, line, did, "commit", op.collection))
        self._notify()

    def identity(self, did: str, handle: str | None) -> None:
        with self._lock:
            time_us = self._next_time_locked()
            self._seq += 1
            line = identity_line(did, time_us, handle, self._seq)
            self._append_locked(StreamEvent(time_us, line, did, "identity", None))
        self._notify()

    def account(self, did: str, active: bool, status: str | None) -> None:
        with self._lock:
            time_us = self._next_time_locked()
            self._seq += 1
            line = account_line(did, time_us, active, status, self._seq)
            self._append_locked(StreamEvent(time_us, line, did, "account", None))
        self._notify()

    def publish_raw(self, line: str) -> StreamEvent:
        """Sends ``line`` to subscribers exactly as given (it need not be valid). Its own
        ``time_us``, when it has one, places it for cursors and retention."""
        time_us, did, kind, collection = _describe_raw(line)
        with self._lock:
            if time_us is None:
                time_us = self._next_time_locked()
            event = StreamEvent(time_us, line, did, kind, collection)
            self._append_locked(event)
        self._notify()
        return event

    # --- history --------------------------------------------------------------------

    @property
    def retention_us(self) -> int | None:
        return self._retention_us

    @retention_us.setter
    def retention_us(self, value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"retention must be positive or None, got {value}")
        with self._lock:
            self._retention_us = value
            self._prune_locked(self._clock.now_us())

    def history(self) -> list[StreamEvent]:
        """Every event still kept, in the order it was published."""
        with self._lock:
            return list(self._events)

    def lines(self) -> list[str]:
        return [event.line for event in self.history()]

    def prune(self) -> int:
        """Drops what is older than the retention now; returns how many were dropped."""
        with self._lock:
            return self._prune_locked(self._clock.now_us())


    def _next_time_locked(self) -> int:
        self._last_time_us = max(self._clock.now_us(), self._last_time_us + 1)
        return self._last_time_us

    def _append_locked(self, event: StreamEvent) -> None:
        self._events.append(event)
        if self._retention_us is not None:
            self._prune_locked(event.time_us)

    def _prune_locked(self, now_us: int) -> int:
        if self._retention_us is None:
            return 0
        cutoff = now_us - self._retention_us
        dropped = 0
        for event in self._events:
            if event.time_us >= cutoff:
                break
            dropped += 1
        if dropped:
            del self._events[:dropped]
            self._base += dropped
        return dropped


    def _batch(self, connection: _Connection) -> tuple[int, list[StreamEvent]]:
        with self._lock:
            # Events dropped by retention before this connection sent them are lost to it,
            # as they would be on a real host.
            start = max(connection.next_index, self._base)
            offset = start - self._base
            return start, self._events[offset : offset + _BATCH]

    def _pending(self, connection: _Connection) -> bool:
        with self._lock:
            return max(connection.next_index, self._base) < self._base + len(self._events)

    # --- HTTP -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/subscribe", self._subscribe)
        self.add_fault_routes(app, "/_devnet/faults")
        app.router.add_get("/_devnet/status", self._status)
        app.on_shutdown.append(self._close_sockets)
        return app

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        try:
            subscription = parse_subscription(request.query)
        except QueryError as exc:
            return _error(400, "InvalidRequest", str(exc))
        if self.faults.refuse_connection():
            return _error(503, "ServiceUnavailable", "devnet fault: refusing connections")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        connection = self._register(subscription)
        # Jetstream's options_update messages are not needed by the devnet: only pings
        return await self._serve_socket(ws, connection, self._pump(ws, connection))

    def _register(self, subscription: Subscription) -> _Connection:
        with self._lock:
            self._prune_locked(self._clock.now_us())
            seam = self._base + len(self._events)
            start = self._base if subscription.cursor is not None else seam
            connection = _Connection(subscription, start, seam)
            self._connections.add(connection)
            return connection

    async def _pump(self, ws: web.WebSocketResponse, connection: _Connection) -> None:
        try:
            await self._pump_events(ws, connection)
        except ConnectionClosed:
            return
        except ConnectionError as exc:  # the client went away mid-send
            log.debug("jetstream connection lost: %s", exc)

    async def _pump_events(self, ws: web.WebSocketResponse, connection: _Connection) -> None:
        subscription = connection.subscription
        while not ws.closed:
            await self._apply_faults(ws, connection)
            start, batch = self._batch(connection)
            for offset, event in enumerate(batch):
                index = start + offset
                connection.next_index = index + 1
                replay = index < connection.seam
                cursor = subscription.cursor
                if replay and cursor is not None and event.time_us < cursor:
                    continue
                if not subscription.wants(event):
                    continue
                await self._send(ws, connection, event)
                if self.faults.armed_count:
                    await self._apply_faults(ws, connection)
            if batch:
                continue
            connection.wake.clear()
            if self._pending(connection) or self.faults.version != connection.fault_version:
                continue
            await connection.wake.wait()

    async def _write(self, ws: web.WebSocketResponse, connection: StreamConnection[StreamEvent],
                     item: StreamEvent) -> None:
        assert isinstance(connection, _Connection)
        if connection.subscription.compress:
            await ws.send_bytes(item.compressed(connection.compressor))
        else:
            await ws.send_str(item.line)

    async def _send_malformed(self, ws: web.WebSocketResponse, fault: Malformed) -> None:
        if fault.binary:
            await ws.send_bytes(fault.payload.encode("utf-8"))
        else:
            await ws.send_str(fault.payload)

    def _resend_range(self, connection: StreamConnection[StreamEvent],
                      fault: Resend) -> list[StreamEvent]:
        assert isinstance(connection, _Connection)
        low = fault.from_us if fault.from_us is not None else -1
        high = fault.to_us if fault.to_us is not None else 1 << 63
        return [event for event in self.history()
                if low <= event.time_us <= high and connection.subscription.wants(event)]


    # --- the admin endpoints --------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        history = self.history()
        return web.json_response(
            {
                "events": len(history),
                "oldest_time_us": history[0].time_us if history else None,
                "newest_time_us": history[-1].time_us if history else None,
                "connections": self.connections,
                "retention_us": self.retention_us,
            }
        )

def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)

