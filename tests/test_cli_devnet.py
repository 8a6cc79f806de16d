"""`atbb devnet` as an operator runs it: the console script in a process of its own,
stopped by SIGTERM as promptly as by Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
# Starts `atbb devnet ARGS` with SIGTERM blocked, as a parent's signal mask can leave it.
BLOCKED = ("import os, signal, sys\n"
           "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
           "os.execv(sys.executable, [sys.executable, '-m', 'web', 'devnet', *sys.argv[1:]])\n")


def _start(*args: str, blocked: bool = False) -> subprocess.Popen[str]:
    command = ([sys.executable, "-c", BLOCKED, *args] if blocked
               else [sys.executable, "-m", "web", "devnet", *args])
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(stream: IO[str], marker: str, timeout: float = 60) -> list[str]:
    """The lines up to the one holding ``marker``; read by a thread of its own, so a
    devnet that never prints it fails the test instead of hanging it."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
            if marker in line:
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {marker!r} within {timeout} s:\n" + "".join(seen)) from None
        if line is None:
            raise AssertionError("devnet exited early:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return seen


def _stop(process: subprocess.Popen[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        rest, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        rest, _ = process.communicate()
        return -9, time.monotonic() - started, rest
    return process.returncode, time.monotonic() - started, rest


def test_sigterm_stops_the_devnet_once_its_urls_are_printed() -> None:
    for blocked in (False, True):
        process = _start(blocked=blocked)
        assert process.stdout is not None
        try:
            lines = read_until(process.stdout, "Ctrl-C stops the network.")
            assert any("Jetstream      ws://127.0.0.1:" in line for line in lines)
            code, seconds, rest = _stop(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert code == 0, (blocked, rest)
        assert seconds < 5, (blocked, seconds)
        assert "stopping the devnet" in rest


def test_sigterm_while_seeding_stops_at_once_without_finishing_the_forum() -> None:
    process = _start("--size", "large")
    assert process.stdout is not None
    try:
        read_until(process.stdout, "seeding the forum...")
        code, seconds, rest = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, rest
    # The large forum takes several seconds to write; a stop abandons it.
    assert seconds < 10, seconds
    assert "stopping the devnet" in rest
    assert "FORUM_DID=" not in rest
