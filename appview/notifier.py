"""How a process learns that the read models moved past a log position, for the live
streams (``web.pages.live``): one notifier per process, whatever the number of streams.

Two things advance it: the process's own projector, at the end of each run
(``SharedProjector.subscribe``: at once, from the projector's thread), and a watch that
reads the projections' position every ``poll_seconds`` (0.25 s) (one cheap read per process, not
per stream), for the processes that serve what another process projects (`atbb serve
--workers N`, or beside `atbb ingest`). Streams wait on it; none reads the database
while nothing moved."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.25
# how often every waiter is woken though nothing moved (the streams' keepalives)
TICK_SECONDS = 15.0


class PositionNotifier:
    """The highest log position every projection of this process's read models has
    applied, as far as this process knows, and a way to wait for it to move."""

    def __init__(self, read_position: Callable[[], int], *,
                 poll_seconds: float = WATCH_SECONDS,
                 tick_seconds: float = TICK_SECONDS) -> None:
        self._read_position = read_position
        self._poll_seconds = poll_seconds
        self._tick_seconds = tick_seconds
        self.position = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moved: asyncio.Future[None] | None = None
        # set when the server shuts down: every stream waiting ends
        self.closed = False

    async def start(self) -> None:
        """Bind to the running loop and read the position once."""
        self._loop = asyncio.get_running_loop()
        self.advance(await asyncio.to_thread(self._read_position))

    def advance(self, position: int) -> None:
        """On the loop: the read models reached ``position`` (a lower one changes
        nothing: positions only grow, and two sources may report out of order)."""
        if position <= self.position:
            return
        self.position = position
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, None
        if moved is not None and not moved.done():
            moved.set_result(None)

    def close(self) -> None:
        """On the loop: wake every waiter for good (the server is stopping)."""
        self.closed = True
        self._wake()

    def advance_threadsafe(self, position: int) -> None:
        """``advance`` from any thread (the projector's)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.advance, position)

    async def wait_past(self, position: int) -> int:
        """The position once it is past ``position``, or at the next tick of the
        watch (every ``tick_seconds``) whatever it is. One future for every waiter, and
        no timer each: 1,000 streams wake for the price of one (a timeout per waiter
        doubled the cost of a wake)."""
        if self.position > position or self.closed:
            return self.position
        if self._moved is None:
            self._moved = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._moved)
        return self.position

    async def watch(self, stop: asyncio.Event) -> None:
        """Read the position every ``poll_seconds`` until ``stop``: what other
        processes project reaches this one's streams within that time. Wakes every
        waiter every ``tick_seconds`` too."""
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self._tick_seconds
        while not stop.is_set():
            if loop.time() >= next_tick:
                next_tick = loop.time() + self._tick_seconds
                self._wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_seconds)
            if stop.is_set():
                return
            try:
                self.advance(await asyncio.to_thread(self._read_position))
            except Exception:  # a database away for a moment: the next read retries
                log.warning("reading the projections' position failed", exc_info=True)
