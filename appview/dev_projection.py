"""`atbb dev projection`: change the projection code, see at once what the change does to
every row.

The command watches the projection code (``projections/``, polling modification times:
no file-watching daemon needed) and on each change, in a process of its own started
afresh (so it runs the code as it now is on disk, while `atbb serve` keeps serving the
live generation), rebuilds a scratch generation from the local log up to the live
generation's position and prints the diff against the live generation
(``projections.row_diff``). A change made while a rebuild runs stops it and starts
another. The scratch generation is a SQLite file beside the generations
(``dev-scratch.sqlite3``) or a PostgreSQL schema (``<base>_dev_scratch``), never one the
registry lists, rebuilt from empty each time.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path

import psycopg
from psycopg import sql

from appview.bootstrap import bootstrap, generations_base
from appview.settings import Settings
from projections.forum import all_projections
from projections.readmodel import ReadModels, open_read_models
from projections.row_diff import Snapshot, TableDiff, diff_snapshots, in_words, snapshot
from projections.runner import project_from_start

PROJECTION_CODE = Path(__file__).resolve().parent.parent / "projections"
SCRATCH_FILE = "dev-scratch.sqlite3"
LIVE_READ_TRIES = 3


def watched_files(roots: Iterable[Path] = (PROJECTION_CODE,)) -> dict[Path, int]:
    """Every Python file under ``roots`` with its modification time (nanoseconds)."""
    found: dict[Path, int] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in paths:
            try:
                found[path] = path.stat().st_mtime_ns
            except FileNotFoundError:
                continue
    return found


def scratch_location(settings: Settings) -> str:
    if settings.is_postgres:
        return f"{generations_base(settings)}_dev_scratch"
    return str(Path(settings.read_model_url.removeprefix("sqlite:///")) / SCRATCH_FILE)


def drop_scratch(settings: Settings) -> None:
    location = scratch_location(settings)
    if settings.is_postgres:
        with psycopg.connect(settings.read_model_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(location)))
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(location + suffix).unlink(missing_ok=True)


@dataclass
class DevReport:
    position: int = 0
    diffs: list[TableDiff] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def rebuild_and_diff(settings: Settings, *, limit: int | None = 20) -> DevReport:
    """Rebuild the scratch generation with the projection code as loaded in this
    process, up to the live generation's position, and diff it against the live one."""
    started = time.monotonic()
    services = bootstrap(settings)
    try:
        live, position = _live_snapshot(services.read_models,
                                        [p.name for p in services.projections])
        drop_scratch(settings)
        store = open_read_models(settings.read_model_url, location=scratch_location(settings))
        try:
            projections = all_projections(settings.forum_did)
            for projection in projections:
                projection.attach(store)
            project_from_start(services.event_log, projections, store,
                               batch_size=settings.projection_batch_size, until=position)
            with store.read() as session:
                scratch = snapshot(session.query_dicts)
        finally:
            store.close()
    finally:
        services.close()
    diffs = diff_snapshots(live, scratch)
    lines = in_words(diffs, scratch, limit=limit) if diffs else ["no row differs"]
    return DevReport(position, diffs, lines, time.monotonic() - started)


def _live_snapshot(models: ReadModels, names: list[str]) -> tuple[Snapshot, int]:
    """The live generation's rows and the position they stand at: read again while live
    ingest moved it meanwhile (at most LIVE_READ_TRIES times, then as read)."""
    position_of = models.position
    rows: Snapshot = {}
    position = 0
    for _ in range(LIVE_READ_TRIES):
        position = min((position_of(name) for name in names), default=0)
        with models.read() as session:
            rows = snapshot(session.query_dicts)
        if min((position_of(name) for name in names), default=0) == position:
            break
    return rows, position


def _child(settings: Settings, connection: Connection) -> None:
    """The rebuild's own process: the code as it is on disk now."""
    try:
        report = rebuild_and_diff(settings)
        connection.send((report.position, report.lines, report.seconds, None))
    except BaseException:
        connection.send((0, [], 0.0, traceback.format_exc()))
    finally:
        connection.close()


@dataclass
class _Run:
    process: SpawnProcess
    receiver: Connection
    started: float


def watch(settings: Settings, on_report: Callable[[DevReport], None], *,
          stop: threading.Event, roots: Iterable[Path] = (PROJECTION_CODE,),
          poll_seconds: float = 0.5, max_runs: int | None = None,
          on_start: Callable[[list[Path]], None] | None = None) -> int:
    """Rebuild and diff at once, then on every change under ``roots``, until ``stop``
    (or ``max_runs`` reports); returns how many reports were made."""
    context = multiprocessing.get_context("spawn")
    folders = list(roots)
    seen = watched_files(folders)
    changed: list[Path] = []
    run: _Run | None = None
    reports = 0

    def start() -> _Run:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(settings, sender), daemon=True,
                                  name="atbb-dev-projection")
        process.start()
        sender.close()
        if on_start is not None:
            on_start(changed)
        return _Run(process, receiver, time.monotonic())

    try:
        run = start()
        while not stop.is_set() and (max_runs is None or reports < max_runs):
            now = watched_files(folders)
            if now != seen:
                changed = sorted(p for p in now.keys() | seen.keys()
                                 if now.get(p) != seen.get(p))
                seen = now
                if run is not None:
                    _end(run)
                run = start()
            if run is not None and run.receiver.poll(poll_seconds):
                try:
                    position, lines, seconds, error = run.receiver.recv()
                except EOFError:  # the process died before it could say why
                    position, lines, seconds, error = 0, [], 0.0, "the rebuild process died"
                _end(run)
                run = None
                reports += 1
                on_report(DevReport(position, [], lines, seconds, error))
            elif run is None:
                stop.wait(poll_seconds)
    finally:
        if run is not None:
            _end(run)
    return reports


def _end(run: _Run) -> None:
    if run.process.is_alive():
        run.process.terminate()
    run.process.join(10)
    run.receiver.close()
