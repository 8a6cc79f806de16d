"""A rebuild's bulk replay in a process of its own (ADR 0007).

The replay is the long, CPU-bound part of a rebuild. In the appview's own process it
holds the interpreter lock the web server and the ingest need, and it cannot overlap with
a full_sync that fills the log it replays. In a child process it has a core of its own:
the parent keeps serving, and a full_sync can start its rebuild at once and let it follow
the log while the repos are read (``hold``), so only the tail is left at the end.

Parent and child speak JSON lines. The parent writes the job on the child's stdin, then
``release`` when a held replay may finish; the child writes progress lines and, last,
``{"finished": true}`` or ``{"error": ...}`` on its stdout. The child ends with its
parent: stdin reaching its end before the job is done means the parent is gone (and on
Linux the kernel kills it the moment the parent thread dies), so a killed appview leaves
a half-built generation, which the next rebuild drops, and no orphan writing into it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from appview.settings import Settings
from projections.child_process import child_environment, end_with_parent, module_command
from projections.readmodel import ReadModelStore
from projections.rebuild import RebuildProgress

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often a held replay looks for new events, and the parent for news


class ReplayAbandoned(RuntimeError):
    """The replay was stopped by its caller (a full_sync that failed)."""


@dataclass(frozen=True)
class ReplayJob:
    """What the child needs to open the log and the generation: plain values only."""

    data_dir: str
    database_url: str
    database_schema: str
    forum_did: str
    location: str
    batch_size: int
    hold: bool
    carry_from: str | None = None
    """The location of the generation being replaced, whose posts' HTML (and, on
    PostgreSQL, search documents) the replay takes where the text is the same
    (``projections.carried_html``, ``projections.search``)."""

    def settings(self) -> Settings:
        return Settings(data_dir=Path(self.data_dir), database_url=self.database_url,
                        database_schema=self.database_schema, forum_did=self.forum_did)


class ChildReplay:
    """A :class:`projections.rebuild.Replay` that runs in a child process.

    With ``hold``, the child keeps following the log after reaching its head until
    :meth:`release` is called; :meth:`abandon` stops it (the rebuild then fails and
    discards its generation)."""

    def __init__(self, settings: Settings, *, batch_size: int, hold: bool = False,
                 carry_from: str | None = None) -> None:
        self._settings = settings
        self._batch_size = batch_size
        self._hold = hold
        self._carry_from = carry_from
        self._released = threading.Event()
        self._abandoned = threading.Event()
        self.returncode: int | None = None

    def release(self) -> None:
        self._released.set()

    def abandon(self) -> None:
        self._abandoned.set()

    def __call__(self, store: ReadModelStore, progress: RebuildProgress,
                 on_progress: Callable[[RebuildProgress], None] | None) -> None:
        settings = self._settings
        job = ReplayJob(str(settings.data_dir), settings.database_url,
                        settings.database_schema, settings.forum_did, store.location,
                        self._batch_size, self._hold, self._carry_from)
        # the worker writes the new generation without a journal only if it has the file
        # to itself (projections.db.SQLiteReadModelRecorder.unjournaled)
        store.close_connections()
        process = subprocess.Popen(
            module_command("appview.rebuild_worker"), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=child_environment(), text=True, bufsize=1)
        assert process.stdin is not None and process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(process.stdout, lines),
                                  name="rebuild-worker-reader", daemon=True)
        reader.start()
        progress.phase = "replaying"
        error: str | None = None
        finished = released = False
        try:
            _tell(process.stdin, json.dumps(asdict(job)))
            while True:
                if self._abandoned.is_set():
                    raise ReplayAbandoned("the rebuild's replay was abandoned")
                if not released and self._released.is_set():
                    _tell(process.stdin, "release")
                    released = True
                try:
                    line = lines.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    continue
                if line is None:  # the child closed its stdout: it is ending
                    break
                message = json.loads(line)
                if "done" in message:
                    progress.events_done = int(message["done"])
                    progress.events_total = int(message["total"])
                    if on_progress is not None:
                        on_progress(progress)
                finished = finished or bool(message.get("finished"))
                error = message.get("error", error)
            self.returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            reader.join(5)
            process.stdout.close()
        if error is not None or not finished or self.returncode != 0:
            raise RuntimeError(
                "the rebuild's replay process failed: "
                + (error or f"it exited with status {self.returncode}"))


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _tell(stdin: IO[str], line: str) -> None:
    """Send the worker a line; a worker already gone is not an error here: its exit
    status (read after) says why it went."""
    with contextlib.suppress(BrokenPipeError):
        stdin.write(line + "\n")
        stdin.flush()


# -- the child ----------------------------------------------------------------------------

def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _listen(released: threading.Event, done: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "release":
            released.set()
    if not done.is_set():  # the parent is gone: stop writing into its generation
        os._exit(3)


def replay(job: ReplayJob, released: threading.Event,
           report: Callable[[int, int], None]) -> None:
    """Bulk-load the generation at ``job.location`` from the log, following it until
    ``released`` is set, then end the bulk load (indexes, recounts, statistics)."""
    # imported here: the parent's import of this module must not pull in the world
    from appview.bootstrap import log_opener, open_replay_target
    from projections.runner import loading_in_bulk, project_to_head

    settings = job.settings()
    event_log, store, projections = open_replay_target(
        settings, job.location, carry_from=job.carry_from)
    open_log = log_opener(settings)
    try:
        with loading_in_bulk(store, private=True):
            while True:
                final = released.is_set()  # the pass that starts after a release is the last
                base = sum(p.position() for p in projections)

                def progress(done: int, total: int, base: int = base) -> None:
                    report(base + done, base + total)

                applied = project_to_head(event_log, projections,
                                          batch_size=job.batch_size, progress=progress,
                                          open_log=open_log)
                if final:
                    break
                if applied == 0:
                    released.wait(POLL_SECONDS)
    finally:
        store.close()
        event_log.close()


def main(argv: Sequence[str] | None = None) -> int:
    end_with_parent()  # failing that, the stdin watch (``_listen``) ends us
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s rebuild-worker %(name)s: %(message)s")
    job = ReplayJob(**json.loads(sys.stdin.readline()))
    released, done = threading.Event(), threading.Event()
    if not job.hold:
        released.set()
    threading.Thread(target=_listen, args=(released, done), daemon=True).start()
    try:
        replay(job, released, lambda d, t: _say({"done": d, "total": t}))
    except Exception as exc:  # reported to the parent, which fails the rebuild
        log.exception("the replay failed")
        done.set()
        _say({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    done.set()
    _say({"finished": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
