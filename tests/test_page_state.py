"""PageState: the read models' state for ETags, read again when a write, the clock or
time moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web.pages.state import PageState

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Reads:
    """Counts the reads and answers with the read's number."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> list[str]:
        self.count += 1
        return [f"read {self.count}"]


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_state_is_kept_while_nothing_moves() -> None:
    reads, ticks = Reads(), Ticks()
    state = PageState(0.25, monotonic=ticks)
    assert await state.parts(0, T0, reads) == ["read 1"]
    ticks.now += 0.2
    assert await state.parts(0, T0 + timedelta(seconds=0.2), reads) == ["read 1"]
    assert reads.count == 1


async def test_a_write_of_this_process_is_seen_at_once() -> None:
    reads, ticks = Reads(), Ticks()
    state = PageState(0.25, monotonic=ticks)
    await state.parts(0, T0, reads)
    assert await state.parts(1, T0, reads) == ["read 2"]


async def test_other_processes_writes_show_within_max_age() -> None:
    reads, ticks = Reads(), Ticks()
    state = PageState(0.25, monotonic=ticks)
    await state.parts(0, T0, reads)
    ticks.now += 0.25
    assert await state.parts(0, T0, reads) == ["read 2"]


async def test_a_clock_moved_on_reads_again_for_bans_that_expire() -> None:
    reads, ticks = Reads(), Ticks()
    state = PageState(0.25, monotonic=ticks)
    await state.parts(0, T0, reads)
    assert await state.parts(0, T0 + timedelta(days=2), reads) == ["read 2"]
    assert await state.parts(0, T0, reads) == ["read 3"]  # and back


async def test_zero_reads_every_time() -> None:
    reads = Reads()
    state = PageState(0.0, monotonic=Ticks())
    await state.parts(0, T0, reads)
    await state.parts(0, T0, reads)
    assert reads.count == 2


async def test_a_caller_changing_its_copy_leaves_the_kept_state_alone() -> None:
    reads = Reads()
    state = PageState(1.0, monotonic=Ticks())
    first = await state.parts(0, T0, reads)
    first.append("viewer")
    second = await state.parts(0, T0, reads)
    second.append("other viewer")
    assert await state.parts(0, T0, reads) == ["read 1"]


async def test_requests_arriving_during_a_read_share_it() -> None:
    import asyncio

    release = asyncio.Event()
    reads = 0

    async def slow_read() -> list[str]:
        nonlocal reads
        reads += 1
        await release.wait()
        return ["state"]

    state = PageState(0.25, monotonic=Ticks())
    waiting = [asyncio.ensure_future(state.parts(0, T0, slow_read)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert [await w for w in waiting] == [["state"]] * 20
    assert reads == 1
