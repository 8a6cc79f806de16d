"""The read-model state every page's ETag names, read once for many requests.

A page's validators start from the projections' positions and the bans in force (see
``web.pages.common.validators``). Reading them costs a worker thread and two database
reads, which was most of what a page served from the page cache still cost. They are
kept here and read again when any of these moves:

- this process committed a read-model write or switched generations
  (``ReadModels.change_mark()``): the in-process follower's batches, a rebuild's switch
  and every write a test makes are seen at once;
- the forum's clock moved by ``max_age`` seconds or more (a temporary ban may expire);
- ``max_age`` seconds passed: writes by another process (an ingest running apart from
  the web server) show within that time.

``max_age`` is ``PAGE_STATE_SECONDS``; 0 reads them on every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class _Held:
    """A state kept (``parts``) or being read (``task``), and what it was read under."""

    mark: object
    moment: datetime
    read_at: float
    parts: list[str] | None = None
    task: asyncio.Future[list[str]] | None = None


class PageState:
    def __init__(self, max_age: float, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._monotonic = monotonic
        self._entry: _Held | None = None
        self._reading: _Held | None = None

    async def parts(self, mark: object, moment: datetime,
                    read: Callable[[], Awaitable[list[str]]]) -> list[str]:
        """The state as of ``moment``: kept, or read with ``read()`` when stale.
        ``mark`` is the store's ``change_mark()`` when the caller asked."""
        now = self._monotonic()
        entry = self._entry
        if (
            entry is not None
            and entry.parts is not None
            and now - entry.read_at < self._max_age
            and self._covers(entry, mark, moment)
        ):
            return list(entry.parts)
        reading = self._reading
        if reading is not None and reading.task is not None and self._covers(
            reading, mark, moment
        ):
            # a read is under way for the same state: wait for it instead of starting
            # one more (50 requests arriving as the state expires made 50 reads, and
            # their queue was the p99)
            return list(await asyncio.shield(reading.task))
        task = asyncio.ensure_future(read())
        self._reading = _Held(mark, moment, now, task=task)
        try:
            parts = await asyncio.shield(task)
        finally:
            if self._reading is not None and self._reading.task is task:
                self._reading = None
        # kept under the mark seen before the read: a write during the read makes the
        # next request read again rather than keep what may predate it
        self._entry = _Held(mark, moment, now, parts=parts)
        return list(parts)

    def _covers(self, held: _Held, mark: object, moment: datetime) -> bool:
        """Whether ``held`` was read under this mark and near enough this moment."""
        return held.mark == mark and abs((moment - held.moment).total_seconds()) < self._max_age
