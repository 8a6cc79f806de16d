"""Reading, decoding and preparing a bulk load's batches in child processes.

A bulk load (a rebuild, a first projection) spends about half its time in work that
depends on the log alone: reading rows, decoding events, folding each batch and
extracting the records' fields (``projections.prepare``). Child processes do that for
the next batches while this one applies the batch before, so the work uses the
machine's two cores: two children, each preparing every other batch (fixed ranges of
positions, ``batch_range``), and this process, which reads them in turn, in log order.
What crosses each pipe is the prepared batch: per record two tuples of plain values and
a dict of fields, about a tenth of what decoding the events costs to unpickle (sending
the decoded events instead cost as much as decoding them: measured).

A child blocks writing a batch until this process reads it, so each runs at most a
batch ahead (and a pipe's buffer), and memory stays that of a few batches. The children
die with this process: the kernel's parent-death signal on Linux, a broken pipe
elsewhere.
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
"""Opens the existing log anew in a child (picklable: a ``functools.partial`` of
``events.store.open_event_log`` with ``create=False``: the children open it at once,
and two making a PostgreSQL log's tables meanwhile fail on the catalog)."""

Preparer = Callable[[Sequence[Logged]], Any]
"""A projection's preparation of a batch (picklable: each child gets a copy), e.g.
``functools.partial(projections.prepare.prepare, forum_did=...)``; it reads nothing but
the batch and remembers nothing of other batches, which another child may have
prepared. What it returns must carry ``count``, ``first_position`` and
``last_position``."""

PREPARE_IN_PROCESS_FROM = 20_000
"""Events from which the preparing processes pay for their start-up (about 0.5 s)."""

PREPARING_PROCESSES = 2
"""Children preparing a load's batches, each every other batch. One child bound a SQLite
load (at 1M events: ~40 s of CPU in a ~40 s load, while its reader waited ~4 s for
batches); with two, the machine's two cores share the three processes' work, so a cut
in any of it shortens the load (ADR 0008). A child that is a batch ahead blocks
writing: the second costs its start-up and its share of the work, no core of its own."""


class PreparationFailed(RuntimeError):
    """A preparing process failed; the message carries its traceback."""


def batch_range(position: int, batch_size: int, head: int, index: int) -> tuple[int, int]:
    """The log positions (after, until] of the load's batch ``index``: ``batch_size``
    positions each from ``position``, the last one cut at ``head``. Fixed ranges, so
    that each child knows its batches without reading the others' (a range over a gap
    in the log's positions holds fewer events, or none)."""
    after = position + index * batch_size
    return after, min(after + batch_size, head)


def prepared_batches(open_log: LogOpener, preparer: Preparer, position: int,
                     batch_size: int, head: int, *,
                     processes: int = PREPARING_PROCESSES) -> Generator[Any, None, None]:
    """The log's batches from ``position`` to ``head`` in log order (:func:`batch_range`;
    a range holding no event is skipped), prepared by ``processes`` children, child k
    preparing the batches k, k + processes, ... (``python -m
    projections.prepare_process``: a fresh interpreter, so nothing of this process's
    ``__main__`` runs again, as multiprocessing's spawn would)."""
    processes = max(1, processes)
    children: list[subprocess.Popen[bytes]] = []
    try:
        for number in range(processes):
            child = subprocess.Popen(module_command("projections.prepare_process"),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=child_environment())
            children.append(child)
            assert child.stdin is not None and child.stdout is not None
            _widen(child.stdout.fileno())
            pickle.dump((open_log, preparer, position, batch_size, head, number, processes),
                        child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.close()
        index = 0
        while True:
            kind, payload = _receive(children[index % processes])
            if kind == "done":  # this batch's range starts at the head: so do the rest
                return
            if kind == "error":
                raise PreparationFailed(f"preparing the log's batches failed:\n{payload}")
            if payload is not None:
                yield payload
            index += 1
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
            assert child.stdout is not None
            child.stdout.close()


def _receive(child: subprocess.Popen[bytes]) -> tuple[str, Any]:
    assert child.stdout is not None
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
    return str(kind), payload


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
    """The child: prepare its batches (:func:`prepared_batches`) and send each as soon
    as it is ready; an empty range goes as None, so that the reader's turns stay in
    step with the children."""
    end_with_parent()  # failing that, the next write to the closed pipe ends us
    out = sys.stdout.buffer
    try:
        (open_log, preparer, position, batch_size, head, number,
         processes) = pickle.load(sys.stdin.buffer)
        log = open_log()
        try:
            with collecting_rarely():
                index = number
                while True:
                    after, until = batch_range(position, batch_size, head, index)
                    if after >= until:
                        break
                    batch = log.read(after, batch_size, until=until)
                    _send(out, ("batch", preparer(batch) if batch else None))
                    index += processes
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
