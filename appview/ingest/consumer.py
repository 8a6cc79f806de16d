"""Following a stream of the network and appending what it reads: what every source
shares (:class:`StreamConsumer`), and the Jetstream v1 source (:class:`JetstreamConsumer`);
the relay firehose is ``appview.ingest.firehose``.

A consumer resumes from its stored cursor, appends in batches bounded by count and by
time (a quiet stream still commits promptly), and never reads ahead of the database:
while a batch is being written no frame is read, so a slow database slows the reader
instead of growing a queue. Reconnects back off exponentially with jitter; after repeated
failures the circuit opens for a cool-down, and health shows it. A quiet stream is normal
(a forum's collections go minutes without a record): a dead connection is told from a
quiet one by WebSocket pings, which an open connection answers whether or not it has
anything to send.

The SDK's Jetstream client speaks only the newer wire, so the Jetstream consumer is ours,
on aiohttp. It resumes from the stored cursor minus a rewind (``time_us`` is ordered per
DID only; re-deliveries are harmless: the log refuses duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

import aiohttp
import psycopg
import zstandard
from eventsourcing.persistence import InterfaceError, OperationalError

from appview.clock import Clock
from appview.ingest.appender import LineAppender
from events.log import EventLog

log = logging.getLogger(__name__)

CURSOR_SOURCE = "jetstream"
FIREHOSE_CURSOR_SOURCE = "firehose"
WANTED_COLLECTIONS = ("space.atbb.*",)
# Frames larger than this are refused by the parser with a reason; the websocket itself
# accepts more so one oversize frame does not tear the connection down.
WEBSOCKET_MAX_MESSAGE = 16 * 1024 * 1024

BreakerState = Literal["closed", "open", "half-open"]

# Errors a database gives while it restarts, fails over or drops a connection: the batch
# is retried (appends are idempotent and the cursor moves with the batch), not lost.
TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)


@dataclass
class ConsumerStatus:
    """What health reports about the firehose."""

    connected: bool = False
    last_event_at: int | None = None  # unix µs of the last frame's event time
    last_received_at: int | None = None  # unix µs when we last received a frame
    # how old the last frame's event was when it arrived (µs): the stream's own measure
    # of how far behind it we are, which a quiet stream leaves as it was
    last_delay_us: int | None = None
    cursor: int | None = None
    # the stream time (unix µs) of the newest event covered by the stored cursor: for
    # Jetstream the cursor itself, for the firehose (a seq) the time its frames carry
    cursor_time_us: int | None = None
    connects: int = 0
    failures_in_a_row: int = 0
    breaker: BreakerState = "closed"
    last_error: str | None = None
    frames: int = 0
    batches: int = 0
    stored: int = 0
    database_retries: int = 0
    bad_frames: Counter[str] = field(default_factory=Counter)

    def lag_seconds(self, now_us: int) -> float | None:
        """How far behind the stream we are. Connected, that is how old the last event
        was when it arrived (nothing newer has come: there is nothing newer to have, or
        pings would have found the connection dead); disconnected, the time since the
        last event, as everything since may be waiting for us. None before any event."""
        if self.connected:
            return 0.0 if self.last_delay_us is None else max(0.0, self.last_delay_us / 1e6)
        if self.last_event_at is None:
            return None
        return max(0.0, (now_us - self.last_event_at) / 1_000_000)


@dataclass(frozen=True)
class ReconnectPolicy:
    initial_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.3  # fraction of the delay added or removed at random
    breaker_threshold: int = 8  # failures in a row that open the circuit
    breaker_cooldown: float = 60.0

    def delay(self, failures: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.initial_delay * self.factor ** max(0, failures - 1))
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))


class StreamConsumer(ABC):
    """The connection loop every source shares: connect to :meth:`subscribe_url`, hand
    each frame to :meth:`_handle_message`, commit the appender's batch (with the cursor)
    by count and by time, reconnect with backoff and a circuit breaker, tell a dead
    connection from a quiet one by pings."""

    name = "stream"

    def __init__(
        self,
        *,
        url: str,
        event_log: EventLog,
        appender: LineAppender,
        clock: Clock,
        batch_size: int = 500,
        batch_seconds: float = 0.25,
        heartbeat: float | None = 10.0,
        policy: ReconnectPolicy | None = None,
        rng: random.Random | None = None,
        on_batch: Callable[[], None] | None = None,
        initial_cursor: int | None = None,
    ) -> None:
        self._url = url
        self._log = event_log
        self._appender = appender
        self._clock = clock
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds
        # a ping every ``heartbeat`` seconds of silence; no answer within half of it
        # closes the connection as dead (aiohttp's client heartbeat)
        self._heartbeat = heartbeat
        self._policy = policy or ReconnectPolicy()
        self._rng = rng or random.Random()
        self._on_batch = on_batch
        self._initial_cursor = initial_cursor
        self._line_number = 0
        # the newest event time of the frames fed since the last commit
        self._pending_time: int | None = None
        self._stopping: asyncio.Event | None = None
        self.status = ConsumerStatus()

    @property
    def appender(self) -> LineAppender:
        return self._appender

    @property
    def url(self) -> str:
        return self._url

    @abstractmethod
    def subscribe_url(self, cursor: int | None) -> str:
        """The URL to connect to, resuming after ``cursor`` (None: live)."""

    @abstractmethod
    async def resume_cursor(self) -> int | None:
        """Where the next connection starts."""

    @abstractmethod
    async def _handle_message(self, message: aiohttp.WSMessage) -> None:
        """Read one frame, feed what it holds to the appender."""

    @abstractmethod
    async def _started(self, session: aiohttp.ClientSession) -> None:
        """Before the first connection (a source that needs HTTP of its own sets it up)."""

    @abstractmethod
    async def _stopped(self) -> None:
        """After the last connection."""

    def _note_cursor(self, value: int) -> None:
        # The store keeps the maximum of what was written, so the status can too, without
        # reading the cursor back after every batch.
        current = self.status.cursor
        self.status.cursor = value if current is None else max(current, value)

    def _note_event_time(self, time_us: int, received_us: int) -> None:
        self.status.last_event_at = time_us
        self.status.last_delay_us = received_us - time_us
        pending = self._pending_time
        self._pending_time = time_us if pending is None else max(pending, time_us)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the stream until ``stop`` is set; never raises for network faults."""
        self._stopping = stop
        async with aiohttp.ClientSession() as session:
            await self._started(session)
            try:
                await self._connections(session, stop)
            finally:
                await self._stopped()

    async def _connections(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._connect_and_read(session, stop)
                self.status.failures_in_a_row = 0
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self._note_failure(f"{type(exc).__name__}: {exc}")
            finally:
                self.status.connected = False
                await self._flush()
            if stop.is_set():
                break
            await self._wait_before_reconnect(stop)

    def _note_failure(self, reason: str) -> None:
        self.status.failures_in_a_row += 1
        self.status.last_error = reason
        log.warning("%s connection failed (%d in a row): %s", self.name,
                    self.status.failures_in_a_row, reason)

    async def _wait_before_reconnect(self, stop: asyncio.Event) -> None:
        failures = self.status.failures_in_a_row
        if failures >= self._policy.breaker_threshold:
            self.status.breaker = "open"
            delay = self._policy.breaker_cooldown
            log.error("%s circuit open after %d failures; cooling down %.0fs",
                      self.name, failures, delay)
        else:
            delay = self._policy.delay(max(1, failures), self._rng)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if self.status.breaker == "open":
            self.status.breaker = "half-open"

    async def _connect_and_read(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        cursor = await self.resume_cursor()
        url = self.subscribe_url(cursor)
        log.info("connecting to %s", url)
        async with session.ws_connect(
            url, max_msg_size=WEBSOCKET_MAX_MESSAGE, heartbeat=self._heartbeat,
            autoping=True
        ) as ws:
            self.status.connected = True
            self.status.connects += 1
            self.status.breaker = "closed"
            self.status.failures_in_a_row = 0
            # Stopping closes the socket, which ends a pending receive at once; one receive
            # per frame (no extra tasks) keeps the per-frame cost low.
            closer = asyncio.create_task(self._close_on_stop(ws, stop))
            batch_started = time.monotonic()
            try:
                while not stop.is_set():
                    timeout: float | None = None  # quiet is fine: pings watch the line
                    if self._uncommitted():
                        remaining = self._batch_seconds - (time.monotonic() - batch_started)
                        if remaining <= 0:
                            await self._flush()
                            batch_started = time.monotonic()
                            continue
                        timeout = remaining
                    try:
                        # a deadline of our own: aiohttp's receive timeout starts again
                        # at every pong, so with heartbeats it could never expire
                        async with asyncio.timeout(timeout):
                            message = await ws.receive()
                    except TimeoutError:  # only with a batch pending: commit it
                        await self._flush()
                        batch_started = time.monotonic()
                        continue
                    if stop.is_set():
                        return
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                        aiohttp.WSMsgType.CLOSING):
                        raise aiohttp.ClientConnectionError("server closed the stream")
                    if message.type == aiohttp.WSMsgType.ERROR:
                        error = ws.exception()
                        if isinstance(error, aiohttp.ServerTimeoutError):
                            raise aiohttp.ClientConnectionError(
                                f"dead connection: no answer to a ping within"
                                f" {(self._heartbeat or 0) / 2:g}s")
                        raise aiohttp.ClientConnectionError(f"websocket error: {error}")
                    if not self._uncommitted():
                        batch_started = time.monotonic()
                    await self._handle_message(message)
                    if self._appender.pending >= self._batch_size:
                        await self._flush()
                        batch_started = time.monotonic()
            finally:
                closer.cancel()

    def _uncommitted(self) -> bool:
        """Events, or only a cursor (lines with nothing to store), waiting for a commit:
        either is committed within the batch time, however quiet the stream then is."""
        return bool(self._appender.pending) or self._appender.has_pending_cursor

    @staticmethod
    async def _close_on_stop(ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        await stop.wait()
        await ws.close()

    async def _flush(self) -> None:
        """Append the pending batch with its cursor; a transient database error is retried
        with backoff while the reader waits (backpressure), so nothing is read ahead."""
        if not self._appender.pending and not self._appender.has_pending_cursor:
            return
        failures = 0
        while True:
            try:
                result = await asyncio.to_thread(self._appender.flush)
                break
            except TRANSIENT_DATABASE_ERRORS as exc:
                failures += 1
                self.status.database_retries += 1
                self.status.last_error = f"database: {type(exc).__name__}: {exc}"
                if self._stopping is not None and self._stopping.is_set():
                    # Shutting down: the stored cursor did not move, so the next start
                    # reads this batch again.
                    log.error("giving up a batch on shutdown after a database error: %s", exc)
                    return
                delay = self._policy.delay(failures, self._rng)
                log.warning("appending a batch failed (%d in a row), retrying in %.2fs: %s",
                            failures, delay, exc)
                await asyncio.sleep(delay)
        self.status.batches += 1
        self.status.stored += result.appended
        if self._appender.flushed_cursor is not None:
            self._note_cursor(self._appender.flushed_cursor)
        if self._pending_time is not None:
            self.status.cursor_time_us = max(self.status.cursor_time_us or 0,
                                             self._pending_time)
            self._pending_time = None
        if self._on_batch is not None:
            self._on_batch()


class JetstreamConsumer(StreamConsumer):
    """Jetstream v1 (``/subscribe``, JSON frames, ``time_us`` cursor)."""

    name = "jetstream"

    def __init__(
        self,
        *,
        url: str,
        event_log: EventLog,
        appender: LineAppender,
        clock: Clock,
        batch_size: int = 500,
        batch_seconds: float = 0.25,
        rewind_seconds: float = 5.0,
        heartbeat: float | None = 10.0,
        compress: bool = False,
        policy: ReconnectPolicy | None = None,
        rng: random.Random | None = None,
        on_batch: Callable[[], None] | None = None,
        initial_cursor: int | None = None,
        wanted_collections: tuple[str, ...] = WANTED_COLLECTIONS,
    ) -> None:
        super().__init__(url=url, event_log=event_log, appender=appender, clock=clock,
                         batch_size=batch_size, batch_seconds=batch_seconds,
                         heartbeat=heartbeat, policy=policy, rng=rng, on_batch=on_batch,
                         initial_cursor=initial_cursor)
        # Empty asks for every collection (a diagnostic; the appender still keeps only
        # space.atbb.* records).
        self._wanted_collections = wanted_collections
        self._rewind_us = int(rewind_seconds * 1_000_000)
        self._compress = compress

    def subscribe_url(self, cursor: int | None) -> str:
        params: list[tuple[str, str]] = [
            ("wantedCollections", c) for c in self._wanted_collections
        ]
        if cursor is not None:
            params.append(("cursor", str(cursor)))
        if self._compress:
            params.append(("compress", "true"))
        separator = "&" if "?" in self._url else "?"
        return f"{self._url}{separator}{urlencode(params)}"

    async def resume_cursor(self) -> int | None:
        state = await asyncio.to_thread(self._log.cursor, CURSOR_SOURCE)
        if state is None:
            # No cursor: start where we were told (the demo replays its network's whole
            # history from 0), else live; gaps before it are full_sync's job.
            return self._initial_cursor
        self._note_cursor(state.value)
        if self.status.cursor_time_us is None:
            self.status.cursor_time_us = state.value
        return max(0, state.value - self._rewind_us)

    async def _started(self, session: aiohttp.ClientSession) -> None:
        self._line_number = 0  # Jetstream needs nothing but the websocket

    async def _stopped(self) -> None:
        self._pending_time = None  # nothing of its own to close

    async def _handle_message(self, message: aiohttp.WSMessage) -> None:
        self._line_number += 1
        self.status.frames += 1
        received = self.status.last_received_at = self._clock.now_us()
        data: str | bytes
        if message.type == aiohttp.WSMsgType.BINARY:
            data = self._decompress(message.data)
        elif message.type == aiohttp.WSMsgType.TEXT:
            data = message.data
        else:
            self.status.bad_frames[f"unexpected frame type {message.type.name}"] += 1
            return
        parsed = self._appender.feed(data, self._line_number)
        if parsed.error is not None:
            self.status.bad_frames[parsed.error.split(":")[0]] += 1
        if parsed.time_us is not None:
            self._note_event_time(parsed.time_us, received)

    def _decompress(self, payload: bytes) -> bytes:
        try:
            return zstandard.ZstdDecompressor().decompress(
                payload, max_output_size=WEBSOCKET_MAX_MESSAGE
            )
        except zstandard.ZstdError as exc:
            return f"<undecodable zstd frame: {exc}>".encode()
