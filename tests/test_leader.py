"""The ingest leader lock: one holder at a time, a waiter takes over when it goes, on both
backends (a PostgreSQL advisory lock on its own connection; a file lock on SQLite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from appview.leader import LeaderLock, lock_key
from appview.settings import Settings
from tests.conftest import Backend

ROOT = Path(__file__).resolve().parent.parent


def settings_for(backend: Backend) -> Settings:
    if backend.name == "sqlite":
        return Settings(data_dir=backend.tmp / "data")
    assert backend.schema is not None
    return Settings(data_dir=backend.tmp / "data", database_url=backend.url,
                    database_schema=backend.schema)


def test_a_second_holder_waits_and_takes_over_when_the_first_releases(
    backend: Backend,
) -> None:
    settings = settings_for(backend)
    first = LeaderLock(settings, poll_seconds=0.05)
    second = LeaderLock(settings, poll_seconds=0.05)
    assert first.acquire()
    assert first.alive()
    took_over = threading.Event()
    stop = threading.Event()

    def wait_for_leadership() -> None:
        if second.acquire(stop):
            took_over.set()

    waiter = threading.Thread(target=wait_for_leadership)
    waiter.start()
    try:
        time.sleep(0.3)
        assert not took_over.is_set() and not second.held
        first.release()
        assert took_over.wait(5)
        assert second.held and second.alive()
        assert not first.held and not first.alive()
    finally:
        stop.set()
        waiter.join(5)
        first.release()
        second.release()


def test_a_waiter_gives_up_when_stopped(backend: Backend) -> None:
    settings = settings_for(backend)
    stop = threading.Event()
    stop.set()
    with LeaderLock(settings) as holder:
        assert holder.held
        assert LeaderLock(settings, poll_seconds=0.05).acquire(stop) is False
    late = LeaderLock(settings)
    assert late.acquire(stop) is True  # free again: one attempt succeeds even when stopped
    late.release()


def test_a_released_lock_is_free_the_moment_release_returns(backend: Backend) -> None:
    # Closing a PostgreSQL session does not wait for the server to drop its advisory
    # locks; a taker straight after a release must still win, every time.
    settings = settings_for(backend)
    stop = threading.Event()
    stop.set()
    for _ in range(200):
        holder = LeaderLock(settings)
        assert holder.acquire(stop)
        holder.release()
        taker = LeaderLock(settings)
        assert taker.acquire(stop), "the released lock was still held"
        taker.release()


def test_different_stores_do_not_share_a_lock(tmp_path: Path) -> None:
    one = LeaderLock(Settings(data_dir=tmp_path / "one"))
    two = LeaderLock(Settings(data_dir=tmp_path / "two"))
    try:
        assert one.acquire() and two.acquire()
    finally:
        one.release()
        two.release()
    assert lock_key("a") != lock_key("b")
    assert -(2**63) <= lock_key("a") < 2**63


def test_the_lock_is_freed_when_its_holder_process_is_killed(backend: Backend) -> None:
    settings = settings_for(backend)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from appview.leader import LeaderLock\n"
         "from appview.settings import load_settings\n"
         "lock = LeaderLock(load_settings())\n"
         "lock.acquire()\n"
         "print('held', flush=True)\n"
         "time.sleep(60)\n"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(settings.data_dir),
             "DATABASE_URL": settings.database_url,
             "DATABASE_SCHEMA": settings.database_schema},
        stdout=subprocess.PIPE, text=True,
    )
    waiter = LeaderLock(settings, poll_seconds=0.05)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        stop = threading.Event()
        stop.set()
        assert waiter.acquire(stop) is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = threading.Event()
        timer = threading.Timer(5, deadline.set)
        timer.start()
        try:
            assert waiter.acquire(deadline)
        finally:
            timer.cancel()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        waiter.release()
