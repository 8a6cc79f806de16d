"""catch_up: the firehose replayed from the stored cursor until it is live, through the
same consumer (and so the same parsing, batching, cursor and re-delivery rules) as live
ingest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from appview.clock import Clock
from appview.ingest.appender import LineAppender
from appview.ingest.consumer import JetstreamConsumer
from appview.settings import Settings
from events.log import EventLog

# Live means the stream's time is this close to ours, or nothing new came for the quiet
# period after the stream was reached (a forum's collections are often idle).
LIVE_MARGIN_US = 3_000_000
QUIET_SECONDS = 3.0


async def catch_up(settings: Settings, event_log: EventLog,
                   make_appender: Callable[[], LineAppender], clock: Clock, *,
                   on_progress: Callable[[int], None] | None = None,
                   timeout: float | None = None) -> int:
    """Consume from the stored cursor until live; returns the events stored."""
    consumer = JetstreamConsumer(
        url=settings.jetstream_url, event_log=event_log, appender=make_appender(),
        clock=clock, batch_size=settings.ingest_batch_size,
        batch_seconds=settings.ingest_batch_seconds,
        rewind_seconds=settings.ingest_rewind_seconds,
        compress=settings.jetstream_compress)
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
            if status.cursor is not None and status.cursor >= clock.now_us() - LIVE_MARGIN_US:
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
