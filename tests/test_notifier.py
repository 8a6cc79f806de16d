"""The live streams' notifier (appview/notifier.py): waiters wake when the position
moves, from the loop, another thread or the watch of the database's position."""

from __future__ import annotations

import asyncio
import threading

from appview.notifier import PositionNotifier


async def test_waiters_wake_when_the_position_moves() -> None:
    stored = [5]
    notifier = PositionNotifier(lambda: stored[0], poll_seconds=0.01)
    await notifier.start()
    assert notifier.position == 5
    assert await notifier.wait_past(4) == 5  # already past: no wait
    waiters = [asyncio.ensure_future(notifier.wait_past(5)) for _ in range(100)]
    await asyncio.sleep(0)
    notifier.advance(3)  # backwards: nothing
    assert not any(w.done() for w in waiters)
    thread = threading.Thread(target=notifier.advance_threadsafe, args=(9,))
    thread.start()
    thread.join()
    assert await asyncio.gather(*waiters) == [9] * 100


async def test_the_watch_reads_what_another_process_projected() -> None:
    stored = [1]
    notifier = PositionNotifier(lambda: stored[0], poll_seconds=0.01)
    await notifier.start()
    stop = asyncio.Event()
    watch = asyncio.create_task(notifier.watch(stop))
    stored[0] = 7
    assert await asyncio.wait_for(notifier.wait_past(1), 5) == 7
    stop.set()
    await watch


async def test_the_watch_wakes_every_waiter_at_each_tick() -> None:
    notifier = PositionNotifier(lambda: 3, poll_seconds=0.01, tick_seconds=0.05)
    await notifier.start()
    stop = asyncio.Event()
    watch = asyncio.create_task(notifier.watch(stop))
    assert await asyncio.wait_for(notifier.wait_past(3), 5) == 3  # nothing moved
    stop.set()
    await watch


async def test_closing_ends_every_wait() -> None:
    notifier = PositionNotifier(lambda: 0)
    await notifier.start()
    waiter = asyncio.ensure_future(notifier.wait_past(0))
    await asyncio.sleep(0)
    notifier.close()
    assert await asyncio.wait_for(waiter, 1) == 0
    assert await notifier.wait_past(0) == 0
