"""Reading, decoding and preparing a bulk load's batches in a second process.

A bulk load (a rebuild, a first projection) spends about half its time in work that
depends on the log alone: reading rows, decoding events, folding each batch and
extracting the records' fields (``projections.prepare``). A child process does that for
batch N+1 while this one applies batch N to the read models, so the two halves use the
machine's two cores. What crosses the pipe is the prepared batch: per record two tuples
of plain values and a dict of fields, about a tenth of what decoding the events costs to
unpickle (sending the decoded events instead cost as much as decoding them: measured).

The child blocks writing a batch until this process reads it, so it runs at most a
batch ahead (and a pipe's buffer), and memory stays that of two batches. It dies with
this process: the kernel's parent-death signal on Linux, a broken pipe elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import pickle
import subprocess
import sys
import traceback
from collections.abc import Callable, Generator, Sequence
from typing import Any, BinaryIO

from events.log import EventLog
from events.model import Logged
from projections.child_process import child_environment, end_with_parent, module_command
from projections.collector import collecting_rarely

LogOpener = Callable[[], EventLog]
"""Opens the log anew in the child (picklable: a ``functools.partial`` of
``events.store.open_event_log``)."""

Preparer = Callable[[Sequence[Logged]], Any]
"""A projection's preparation of each batch in turn (picklable: the child gets a copy),
e.g. ``projections.prepare.LoadPreparer``; it reads nothing but the batches, and may
remember what earlier ones held. What it returns must carry ``count``,
``first_position`` and ``last_position``."""

PREPARE_IN_PROCESS_FROM = 20_000
"""Events from which a second process pays for its start-up (about 0.5 s)."""


class PreparationFailed(RuntimeError):
    """The preparing process failed; the message carries its traceback."""


def prepared_batches(open_log: LogOpener, preparer: Preparer, position: int,
                     batch_size: int, head: int) -> Generator[Any, None, None]:
    """The log's batches from ``position`` to ``head``, prepared in a child process
    (``python -m projections.prepare_process``: a fresh interpreter, so nothing of this
    process's ``__main__`` runs again, as multiprocessing's spawn would)."""
    child = subprocess.Popen(module_command("projections.prepare_process"),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=child_environment())
    assert child.stdin is not None and child.stdout is not None
    _widen(child.stdout.fileno())
    try:
        pickle.dump((open_log, preparer, position, batch_size, head), child.stdin,
                    protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.close()
        while True:
            header = child.stdout.read(_HEADER)
            if len(header) < _HEADER:
                raise PreparationFailed(
                    f"the preparing process ended without a word (exit {child.wait()})")
            size = int.from_bytes(header, "big")
            data = child.stdout.read(size)
            if len(data) < size:
                raise PreparationFailed(
                    f"the preparing process ended mid-batch (exit {child.wait()})")
            kind, payload = pickle.loads(data)
            if kind == "done":
                return
            if kind == "error":
                raise PreparationFailed(f"preparing the log's batches failed:\n{payload}")
            yield payload
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


_HEADER = 8  # each message: its length, then its pickle
_PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """A 1 MB pipe instead of 64 KB (Linux): a prepared batch of several MB then crosses
    in a few reads instead of a hundred."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, 1031, _PIPE_BYTES)  # F_SETPIPE_SZ


def _send(out: BinaryIO, message: tuple[str, Any]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(_HEADER, "big"))
    out.write(data)
    out.flush()


def main() -> int:
    """The child: prepare every batch and send each as soon as it is ready."""
    end_with_parent()  # failing that, the next write to the closed pipe ends us
    out = sys.stdout.buffer
    try:
        open_log, preparer, position, batch_size, head = pickle.load(sys.stdin.buffer)
        log = open_log()
        try:
            with collecting_rarely():
                while position < head:
                    batch = log.read(position, batch_size, until=head)
                    if not batch:
                        break
                    _send(out, ("batch", preparer(batch)))
                    position = batch[-1].position
        finally:
            log.close()
        _send(out, ("done", None))
    except BrokenPipeError:
        return 0  # the parent stopped listening (it failed or was stopped)
    except BaseException:
        _send(out, ("error", traceback.format_exc()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
