"""A devnet ``com.atproto.sync.subscribeRepos`` stream: binary frames (a DAG-CBOR header
and body) of signed commits, identity and account events, each with a ``seq``, from an
in-memory history that honours ``cursor`` (the frames after it), with faults injected
on demand like the Jetstream server's.

Every devnet PDS host has one (``PdsHost.firehose``, served at the PDS's own
``/xrpc/com.atproto.sync.subscribeRepos``): each write is a ``#commit`` with its CAR
slice and ``prevData``; ``create_account`` an ``#identity`` and an ``#account``;
``set_account_status`` an ``#account``; ``update_handle`` an ``#identity``. A relay
re-serving several hosts publishes their frames into a server of its own
(:meth:`FirehoseServer.publish`, which gives them its own seq) and serves that.

As on a real host: a cursor older than the oldest frame kept answers ``#info
OutdatedCursor`` first, then everything kept; a cursor past the newest seq answers the
error frame ``FutureCursor`` and closes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, web

from appview.devnet.clock import DevClock
from appview.devnet.fault_stream import ConnectionClosed, FaultedStream, StreamConnection
from appview.devnet.faults import FaultPlan, Malformed, Resend
from appview.devnet.sink import RepoCommit
from appview.repos.cbor import encode

log = logging.getLogger(__name__)

PATH = "/xrpc/com.atproto.sync.subscribeRepos"


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    data: bytes


def encode_frame(kind: str, body: dict[str, Any]) -> bytes:
    """A message frame: the header ``{op: 1, t: kind}`` then the body, as DAG-CBOR."""
    return encode({"op": 1, "t": kind}) + encode(body)


def error_frame(error: str, message: str) -> bytes:
    return encode({"op": -1}) + encode({"error": error, "message": message})


_Connection = StreamConnection["Frame"]


class FirehoseServer(FaultedStream["Frame"]):
    """``subscribeRepos`` over an in-memory history. ``keep`` bounds the frames kept (the
    oldest go first, as a host's retention)."""

    def __init__(self, clock: DevClock, *, keep: int | None = None,
                 faults: FaultPlan | None = None) -> None:
        super().__init__(faults)
        self._clock = clock
        self._keep = keep
        self._frames: list[Frame] = []
        self._base = 0  # absolute index of _frames[0]
        self._seq = 0
        self._lose = 0  # frames still to lose (lose_next)

    # --- what a PDS reports -----------------------------------------------------------

    def _time(self) -> str:
        when = datetime.fromtimestamp(self._clock.now_us() / 1e6, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def repo_commit(self, commit: RepoCommit) -> None:
        ops = []
        for op in commit.ops:
            item: dict[str, Any] = {"action": op.action, "path": op.path, "cid": op.cid}
            if op.prev is not None:
                item["prev"] = op.prev
            ops.append(item)
        self.publish("#commit", {
            "repo": commit.did, "rev": commit.rev, "since": commit.since,
            "commit": commit.commit, "prevData": commit.prev_data, "blocks": commit.blocks,
            "ops": ops, "blobs": [], "rebase": False, "tooBig": False, "time": self._time(),
        })

    def identity(self, did: str, handle: str | None) -> None:
        body: dict[str, Any] = {"did": did, "time": self._time()}
        if handle is not None:
            body["handle"] = handle
        self.publish("#identity", body)

    def account(self, did: str, active: bool, status: str | None) -> None:
        body: dict[str, Any] = {"did": did, "active": active, "time": self._time()}
        if status is not None:
            body["status"] = status
        self.publish("#account", body)

    def publish(self, kind: str, body: dict[str, Any]) -> int:
        """Sends a message of type ``kind`` with the next seq (set on ``body``)."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            if self._lose:
                self._lose -= 1
                return seq
            self._append_locked(Frame(seq, encode_frame(kind, {**body, "seq": seq})))
        self._notify()
        return seq

    def lose_next(self, count: int = 1) -> None:
        """The next ``count`` frames get their seq but are never sent nor kept: a host
        that lost them, as a relay that missed a PDS's events does."""
        with self._lock:
            self._lose += count

    def publish_raw(self, data: bytes, seq: int) -> None:
        """Sends ``data`` unchanged (a captured relay frame, or garbage) as the frame of
        ``seq``; later frames get seqs after it."""
        with self._lock:
            self._seq = max(self._seq, seq)
            self._append_locked(Frame(seq, data))
        self._notify()

    def _append_locked(self, frame: Frame) -> None:
        self._frames.append(frame)
        if self._keep is not None and len(self._frames) > self._keep:
            dropped = len(self._frames) - self._keep
            del self._frames[:dropped]
            self._base += dropped

    # --- history and faults -----------------------------------------------------------

    def frames(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)

    @property
    def seq(self) -> int:
        """The newest seq given."""
        with self._lock:
            return self._seq

    # --- HTTP -------------------------------------------------------------------------

    def add_routes(self, app: web.Application, admin_prefix: str = "/_devnet/firehose") -> None:
        """Serve the stream at ``PATH`` and its faults at ``admin_prefix + /faults``."""
        app.router.add_get(PATH, self._subscribe)
        self.add_fault_routes(app, f"{admin_prefix}/faults")
        app.on_shutdown.append(self._close_sockets)

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        raw = request.query.get("cursor")
        cursor: int | None = None
        if raw not in (None, ""):
            try:
                cursor = int(raw)
            except ValueError:
                return web.json_response({"error": "InvalidRequest",
                                          "message": f"cursor must be an integer: {raw!r}"},
                                         status=400)
        if self.faults.refuse_connection():
            return web.json_response({"error": "ServiceUnavailable",
                                      "message": "devnet fault: refusing connections"},
                                     status=503)
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        connection, opening = self._register(cursor)
        return await self._serve_socket(ws, connection, self._pump(ws, connection, opening))

    def _register(self, cursor: int | None) -> tuple[_Connection, bytes | None]:
        """The connection, and the frame it opens with (an #info or an error), if any."""
        with self._lock:
            end = self._base + len(self._frames)
            opening: bytes | None = None
            if cursor is None:
                start = end
            elif cursor > self._seq:
                start = end
                opening = error_frame("FutureCursor", f"cursor {cursor} is past seq"
                                                      f" {self._seq}")
            else:
                start = self._base
                for index, frame in enumerate(self._frames):
                    if frame.seq > cursor:
                        start = self._base + index
                        break
                else:
                    start = end
                oldest = self._frames[0].seq if self._frames else self._seq + 1
                if cursor < oldest - 1 and self._base > 0:
                    opening = encode_frame("#info", {"name": "OutdatedCursor",
                                                     "message": "Requested cursor exceeded"
                                                                " limit. Possibly missing"
                                                                " events"})
            connection = _Connection(start)
            self._connections.add(connection)
            return connection, opening

    async def _pump(self, ws: web.WebSocketResponse, connection: _Connection,
                    opening: bytes | None) -> None:
        try:
            if opening is not None:
                await ws.send_bytes(opening)
                if opening.startswith(encode({"op": -1})):
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"FutureCursor")
                    return
            await self._pump_frames(ws, connection)
        except ConnectionClosed:
            return
        except ConnectionError as exc:
            log.debug("firehose connection lost: %s", exc)

    async def _pump_frames(self, ws: web.WebSocketResponse, connection: _Connection) -> None:
        while not ws.closed:
            await self._apply_faults(ws, connection)
            with self._lock:
                start = max(connection.next_index, self._base)
                batch = self._frames[start - self._base:start - self._base + 256]
            for offset, frame in enumerate(batch):
                connection.next_index = start + offset + 1
                await self._send(ws, connection, frame)
                if self.faults.armed_count:
                    await self._apply_faults(ws, connection)
            if batch:
                continue
            connection.wake.clear()
            with self._lock:
                pending = max(connection.next_index, self._base) < \
                    self._base + len(self._frames)
            if pending or self.faults.version != connection.fault_version:
                continue
            await connection.wake.wait()

    async def _write(self, ws: web.WebSocketResponse, connection: StreamConnection[Frame],
                     item: Frame) -> None:
        await ws.send_bytes(item.data)

    async def _send_malformed(self, ws: web.WebSocketResponse, fault: Malformed) -> None:
        await ws.send_bytes(fault.payload.encode("utf-8"))

    def _resend_range(self, connection: StreamConnection[Frame], fault: Resend) -> list[Frame]:
        # on the firehose a resend range is of seqs
        low = fault.from_us if fault.from_us is not None else -1
        high = fault.to_us if fault.to_us is not None else 1 << 63
        return [frame for frame in self.frames() if low <= frame.seq <= high]

