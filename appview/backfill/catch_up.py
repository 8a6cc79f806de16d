"""catch_up: the ingest source (Jetstream or the firehose) replayed from the stored cursor
until it is live, through the same consumer (and so the same parsing, verification,
batching, cursor and re-delivery rules) as live ingest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from appview.clock import Clock
from appview.ingest.appender import LineAppender
from appview.ingest.sources import make_consumer
from appview.settings import Settings
from events.lexicon import LexiconValidator
from events.log import EventLog

# Live means the stream's time is this close to ours, or nothing new came for the quiet
# period after the stream was reached (a forum's collections are often idle).
LIVE_MARGIN_US = 3_000_000
QUIET_SECONDS = 3.0


async def catch_up(settings: Settings, event_log: EventLog,
                   make_appender: Callable[[], LineAppender], clock: Clock,
                   validator: LexiconValidator, *,
                   on_progress: Callable[[int], None] | None = None,
                   timeout: float | None = None) -> int:
    """Consume the ingest source from the stored cursor until live; returns the events
    stored."""
    consumer = make_consumer(settings, event_log=event_log, appender=make_appender(),
                             validator=validator, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    loop = asyncio.get_running_loop()
    started = loop.time()
    quiet_since: float | None = None
    last_frames = -1
    try:
        while not task.done():
            await asyncio.sleep(0.2)
            status = consumer.status
            if on_progress is not None:
                on_progress(status.stored)
            now = loop.time()
            if timeout is not None and now - started > timeout:
                raise TimeoutError(f"catch_up not live after {timeout:.0f}s")
            stored = status.cursor_time_us
            if stored is not None and stored >= clock.now_us() - LIVE_MARGIN_US:
                break
            if status.connected and status.frames == last_frames:
                quiet_since = quiet_since or now
                if now - quiet_since >= QUIET_SECONDS:
                    break
            else:
                quiet_since = None
            last_frames = status.frames
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=15)
    error = task.exception() if task.done() and not task.cancelled() else None
    if error is not None:
        raise error
    return consumer.status.stored
