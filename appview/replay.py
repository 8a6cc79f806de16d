"""Replaying the log elsewhere: export it, import it, rebuild read models from it.

A developer takes `atbb events export` from a production appview, then `atbb replay FILE
--db DIR [--until POS]` builds a fresh embedded appview in DIR from it (the log and new
read models) and serves nothing: the read models are what production had at that
position, to inspect with `atbb status`, queries, or `atbb --data-dir DIR serve
--no-ingest`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from appview.bootstrap import bootstrap
from appview.settings import Settings
from events.export import ExportError, ExportHeader, parse_header, parse_line, to_line
from events.log import AppendResult, EventLog
from events.model import LogEvent, Logged, originator_of
from projections.runner import project_from_start

IMPORT_BATCH = 2000


def export_log(log: EventLog, out: IO[str], *, forum_did: str, since: int = 0,
               until: int | None = None,
               progress: Callable[[int], None] | None = None) -> int:
    """Write the header and every event after ``since`` (up to ``until``); returns how
    many events were written. Streams page by page: the log never sits in memory."""
    out.write(ExportHeader(forum_did, since, until, log.head()).to_line() + "\n")
    written = 0
    for logged in log.iter_from(since, until):
        out.write(to_line(logged) + "\n")
        written += 1
        if progress is not None and written % 1000 == 0:
            progress(written)
    return written


@dataclass
class ImportReport:
    header: ExportHeader | None = None
    lines: int = 0
    events: int = 0
    beyond_until: int = 0
    result: AppendResult = field(default_factory=AppendResult)
    errors: list[tuple[int, str]] = field(default_factory=list)


def import_lines(log: EventLog, lines: Iterable[str], *, until: int | None = None,
                 at: int | None = None,
                 on_error: Callable[[int, str], None] | None = None,
                 batch_size: int = IMPORT_BATCH) -> ImportReport:
    """Append exported events to ``log`` in their exported order, in batches. Events past
    ``until`` (an exported position) are left out, and with ``at`` (unix microseconds)
    the first event observed after it and every later one (the log as it stood then,
    ``events.moments``); a bad line is reported with its number and skipped. Importing
    the same file twice adds nothing the second time."""
    report = ImportReport()
    past_moment = False
    batch: list[LogEvent] = []

    def flush() -> None:
        if batch:
            report.result.merge(log.append(batch))
            batch.clear()

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        report.lines += 1
        try:
            if report.lines == 1 and (header := parse_header(line)) is not None:
                report.header = header
                continue
            logged = _exported_event(line)
        except ExportError as exc:
            report.errors.append((number, str(exc)))
            if on_error is not None:
                on_error(number, str(exc))
            continue
        if at is not None and logged.event.observed_at > at:
            past_moment = True
        if past_moment or (until is not None and logged.position > until):
            report.beyond_until += 1
            continue
        report.events += 1
        batch.append(logged.event)
        if len(batch) >= batch_size:
            flush()
    flush()
    return report


def _exported_event(line: str) -> Logged:
    logged = parse_line(line)
    try:
        originator_of(logged.event)
    except ValueError as exc:  # a malformed rev: the store could not file it
        raise ExportError(f"cannot be stored: {exc}") from None
    return logged


class ReplayTargetNotEmpty(RuntimeError):
    """``--db`` already holds a log: a replay builds a new database."""


class NotAnExport(ValueError):
    """The file to replay does not open like an `atbb events export` file (empty, not
    JSON, Jetstream lines, ...): nothing was made. The message says why."""


def replay(lines: Iterable[str], db: Path, *, until: int | None, forum_did: str | None,
           on_error: Callable[[int, str], None] | None = None, at: int | None = None,
           ) -> tuple[Settings, ImportReport]:
    """Build a fresh embedded appview in ``db`` from exported ``lines``: import them (up
    to ``until``, or as the log stood at moment ``at``), project every read model. The
    forum DID comes from the export's header unless given. Raises NotAnExport, before
    ``db`` is made, unless the first line that is not blank is an export's header or
    event."""
    if (db / "events.sqlite3").exists():
        raise ReplayTargetNotEmpty(f"{db} already holds an event log; replay into a new "
                                   "directory")
    iterator = iter(lines)
    opening: list[str] = []
    for raw in iterator:
        opening.append(raw)
        if raw.strip():
            break
    else:
        raise NotAnExport("the file is empty; `atbb events export` writes a header line "
                          "and then one line per event")
    header = _opening_header(opening[-1], len(opening))
    did = forum_did or (header.forum_did if header else "")
    settings = Settings(data_dir=db, forum_did=did)
    services = bootstrap(settings)
    try:
        def with_opening() -> Iterable[str]:
            yield from opening
            yield from iterator

        report = import_lines(services.event_log, with_opening(), until=until, at=at,
                              on_error=on_error)
        project_from_start(services.event_log, services.projections, services.read_models,
                           batch_size=settings.projection_batch_size,
                           open_log=services.open_log, private=True)
    finally:
        services.close()
    return settings, report


def _opening_header(line: str, number: int) -> ExportHeader | None:
    """The header, if ``line`` (the first that is not blank) is one; None if it is an
    exported event. NotAnExport if it is neither."""
    try:
        header = parse_header(line)
        if header is None:
            parse_line(line)
    except ExportError as exc:
        hint = (" (a Jetstream event: `atbb events append` reads those)"
                if _is_jetstream(line) else "")
        raise NotAnExport(f"line {number} is neither the header nor an event of an "
                          f"`atbb events export` file: {exc}{hint}") from None
    return header


def _is_jetstream(line: str) -> bool:
    try:
        data = json.loads(line)
    except ValueError:
        return False
    return isinstance(data, dict) and "time_us" in data and data.get("kind") in (
        "commit", "identity", "account")
