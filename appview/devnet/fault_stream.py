"""What the devnet's two streaming servers (Jetstream v1 and the firehose) share: a
subscriber connection, the faults a connection claims from the plan and how each one
acts, and the admin endpoints that arm and clear faults.

A server subclasses :class:`FaultedStream` with the type of what it sends (a Jetstream
event, a firehose frame) and says how one item is written to the socket, how a
malformed frame is sent, and which past items a ``Resend`` of a range means.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from appview.devnet.faults import (
    Disconnect,
    Fault,
    FaultError,
    FaultPlan,
    Hang,
    Malformed,
    Resend,
    Stall,
    fault_from_json,
    fault_to_json,
)

T = TypeVar("T")

SENT_MEMORY = 10_000  # items a connection remembers, for a Resend of its last ones


class ConnectionClosed(Exception):
    """The pump closed its connection (a Disconnect fault)."""


class StreamConnection(Generic[T]):
    """One subscriber: where it is, what it has sent, and its faults in progress."""

    def __init__(self, next_index: int) -> None:
        self.next_index = next_index
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.wake = asyncio.Event()
        self.sent: deque[T] = deque(maxlen=SENT_MEMORY)
        self.disconnect_after: int | None = None
        self.hung = False  # a Hang fault: nothing sent, no answers to pings
        self.fault_version = -1

    def notify(self) -> None:
        if threading.get_ident() == self.thread:
            self.wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            self.loop.call_soon_threadsafe(self.wake.set)


class FaultedStream(ABC, Generic[T]):
    """A streaming server's connections and fault handling; subclasses provide
    ``_write``, ``_send_malformed`` and ``_resend_range``, register their connections in
    ``_connections`` under ``_lock`` and serve each socket with ``_serve_socket``."""

    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.faults = faults if faults is not None else FaultPlan()
        self._lock = threading.Lock()
        self._connections: set[StreamConnection[T]] = set()
        self._sockets: set[web.WebSocketResponse] = set()

    # -- what a subclass says ---------------------------------------------------------

    @abstractmethod
    async def _write(self, ws: web.WebSocketResponse, connection: StreamConnection[T],
                     item: T) -> None:
        """Put ``item`` on the socket."""

    @abstractmethod
    async def _send_malformed(self, ws: web.WebSocketResponse, fault: Malformed) -> None:
        """Send the fault's payload as this stream's kind of frame."""

    @abstractmethod
    def _resend_range(self, connection: StreamConnection[T], fault: Resend) -> list[T]:
        """The past items a ``Resend`` of a range (``from_us``..``to_us``) names."""

    # -- connections ----------------------------------------------------------------

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def _connections_now(self) -> list[StreamConnection[T]]:
        """The connections open now (to wake when a fault is armed)."""
        with self._lock:
            return list(self._connections)

    async def _serve_socket(self, ws: web.WebSocketResponse, connection: StreamConnection[T],
                            pump: Coroutine[Any, Any, None]) -> web.WebSocketResponse:
        """Run ``pump`` (the sending side) while answering the client's pings (here, not
        by aiohttp, so that a Hang fault can leave them be) until either side ends."""
        self._sockets.add(ws)
        task = asyncio.create_task(pump)
        try:
            async for message in ws:
                if message.type == WSMsgType.PING and not connection.hung:
                    await ws.pong(message.data)
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
            with self._lock:
                self._connections.discard(connection)
            self._sockets.discard(ws)
        return ws

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"devnet shutting down")

    # -- arming ---------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Arms a fault and wakes every connection so it takes effect at once."""
        self.faults.arm(fault)
        self._notify()

    def clear_faults(self) -> None:
        self.faults.clear()
        self._notify()

    def _notify(self) -> None:
        for connection in self._connections_now():
            connection.notify()

    # -- sending, with the faults ----------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, connection: StreamConnection[T],
                    item: T) -> None:
        await self._write(ws, connection, item)
        connection.sent.append(item)
        if connection.disconnect_after is not None:
            connection.disconnect_after -= 1
            if connection.disconnect_after <= 0:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"devnet fault: disconnect")
                raise ConnectionClosed

    async def _apply_faults(self, ws: web.WebSocketResponse,
                            connection: StreamConnection[T]) -> None:
        """Claims at most one firing of each kind of armed fault for this connection."""
        plan = self.faults
        connection.fault_version = plan.version
        if not plan.armed_count:
            return
        if connection.disconnect_after is None:
            disconnect = plan.take(Disconnect)
            if disconnect is not None:
                connection.disconnect_after = disconnect.after
                if disconnect.after == 0:
                    await ws.close(code=WSCloseCode.GOING_AWAY,
                                   message=b"devnet fault: disconnect")
                    raise ConnectionClosed
        stall = plan.take(Stall)
        if stall is not None:
            await asyncio.sleep(stall.seconds)
        hang = plan.take(Hang)
        if hang is not None:
            connection.hung = True
            try:
                await asyncio.sleep(hang.seconds)
            finally:
                connection.hung = False
        malformed = plan.take(Malformed)
        if malformed is not None:
            await self._send_malformed(ws, malformed)
        resend = plan.take(Resend)
        if resend is not None:
            again = (list(connection.sent)[-resend.last:] if resend.last is not None
                     else self._resend_range(connection, resend))
            for item in again:
                await self._send(ws, connection, item)

    # -- the admin endpoints ----------------------------------------------------------

    def add_fault_routes(self, app: web.Application, path: str) -> None:
        app.router.add_get(path, self._list_faults)
        app.router.add_post(path, self._arm_faults)
        app.router.add_delete(path, self._clear_faults)

    async def _list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"armed": self._armed_json()})

    async def _arm_faults(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return _error(400, "InvalidRequest", f"request body is not JSON: {exc}")
        items = body if isinstance(body, list) else [body]
        try:
            faults = [fault_from_json(item) for item in items]
        except FaultError as exc:
            return _error(400, "InvalidFault", str(exc))
        for fault in faults:
            self.inject(fault)
        return web.json_response({"armed": self._armed_json()})

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"armed": []})

    def _armed_json(self) -> list[dict[str, Any]]:
        return [{**fault_to_json(armed.fault), "remaining": armed.remaining}
                for armed in self.faults.armed()]


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)
