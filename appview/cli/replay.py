"""`atbb events export|import|history` and `atbb replay`: the log moved, inspected and
replayed on a developer's machine."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from tqdm import tqdm

from appview.bootstrap import bootstrap
from appview.cli.storage import StandaloneCommand
from appview.replay import (
    NotAnExport,
    ReplayTargetNotEmpty,
    export_log,
    import_lines,
    replay,
)
from appview.settings import Settings
from events.ids import AtUri
from events.model import RecordEvent
from events.moments import describe, parse_moment


def _bar(total: int | None, desc: str) -> tqdm[Any]:
    return tqdm(total=total, unit="ev", desc=desc, disable=None, file=sys.stderr,
                dynamic_ncols=True, unit_scale=True)


def _text_lines(source: IO[bytes]) -> Any:
    for raw in source:
        yield raw.decode("utf-8", errors="replace")


@click.command("export")
@click.option("--since", type=int, default=0, show_default=True,
              help="Export events after this log position.")
@click.option("--until", type=int, help="Export events up to this position (inclusive).")
@click.option("-o", "--output", type=click.File("w"), default="-",
              help="Write to this file instead of stdout.")
@click.pass_obj
def export(settings: Settings, since: int, until: int | None, output: IO[str]) -> None:
    """Write the log (or the part between --since and --until) as JSON lines with every
    field of every event."""
    services = bootstrap(settings)
    try:
        head = services.event_log.head()
        with _bar(max(0, min(until or head, head) - since), "exporting") as bar:
            def progress(done: int) -> None:
                bar.n = done
                bar.refresh()

            written = export_log(services.event_log, output, forum_did=settings.forum_did,
                                 since=since, until=until, progress=progress)
    finally:
        services.close()
    click.echo(f"exported {written} events", err=True)


@click.command("import")
@click.argument("source", type=click.File("rb"))
@click.pass_obj
def import_(settings: Settings, source: IO[bytes]) -> None:
    """Append an exported log FILE to this appview's log (events it already holds are
    skipped)."""
    services = bootstrap(settings)
    try:
        report = import_lines(services.event_log, _text_lines(source),
                              on_error=lambda n, why: click.echo(f"line {n}: {why}", err=True))
    finally:
        services.close()
    click.echo(f"{report.events} events read: appended {report.result.appended}, "
               f"already held {report.result.duplicates}, bad lines {len(report.errors)}")
    if report.errors:
        sys.exit(1)


def _when(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="seconds")


@click.command("history")
@click.argument("uri")
@click.pass_obj
def history(settings: Settings, uri: str) -> None:
    """Every stored revision of one record (AT-URI): creates, edits and deletes, with
    positions, revs, sources, cursors and verdicts."""
    try:
        AtUri.parse(uri)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AT-URI") from None
    services = bootstrap(settings)
    try:
        entries = services.event_log.history(uri)
    finally:
        services.close()
    if not entries:
        raise click.ClickException(f"the log holds no revision of {uri}")
    click.echo(f"{len(entries)} revisions of {uri}:")
    for logged in entries:
        event = logged.event
        if not isinstance(event, RecordEvent):
            continue
        verdict = "valid" if event.valid else f"INVALID ({event.reason})"
        cursor = "-" if event.source_cursor is None else str(event.source_cursor)
        click.echo(f"  #{logged.position} {event.operation:<6} rev {event.rev} "
                   f"cid {event.cid or '-'} via {event.source} cursor {cursor} "
                   f"seen {_when(event.observed_at)} {verdict}")
        if event.record is not None:
            text = event.record.get("text") or event.record.get("name") or ""
            if isinstance(text, str) and text:
                click.echo(f"      {text[:100]!r}")


@click.command("replay", cls=StandaloneCommand)
@click.argument("source", type=click.File("rb"))
@click.option("--db", "db", type=click.Path(path_type=Path), required=True,
              help="A new directory for the replayed log and read models.")
@click.option("--until", type=int,
              help="Replay only up to this position of the exported log (the past state).")
@click.option("--at", "at_text", metavar="TIME",
              help="Replay the log as it stood at this time (ISO 8601, by the events'"
                   " observed times, e.g. 2026-12-01T14:05Z).")
@click.pass_context
def replay_command(ctx: click.Context, source: IO[bytes], db: Path,
                   until: int | None, at_text: str | None) -> None:
    """Build fresh read models from an exported log FILE into a new embedded database
    (serving nothing), then print its status. Browse it with
    `atbb --data-dir DB serve --no-ingest`. Exit status 1 when FILE is not an export
    (nothing is made) or when lines of it could not be read (each is reported)."""
    settings: Settings = ctx.obj
    try:
        at = None if at_text is None else parse_moment(at_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    try:
        replayed, report = replay(
            _text_lines(source), db, until=until, at=at,
            forum_did=settings.forum_did or None,
            on_error=lambda n, why: click.echo(f"line {n}: {why}", err=True))
    except ReplayTargetNotEmpty as exc:
        raise click.ClickException(str(exc)) from None
    except NotAnExport as exc:
        raise click.ClickException(f"{source.name}: {exc}; nothing was replayed") from None
    if not replayed.forum_did:
        click.echo("warning: no forum DID (none in the export, no FORUM_DID): forum-owned "
                   "records are not counted", err=True)
    if report.events == 0 and not report.errors and not report.beyond_until:
        click.echo("warning: the export holds no events", err=True)
    past = "" if until is None else f" up to position {until}"
    if at is not None:
        past += f" as the log stood at {describe(at)}"
    click.echo(f"replayed {report.events} events{past} into {db} "
               f"({report.beyond_until} later events left out, bad lines "
               f"{len(report.errors)})")
    # the same report as `atbb status`; imported here because the group's module imports us
    from appview.cli import status

    ctx.obj = replayed
    ctx.invoke(status, as_json=False)
    if report.errors:
        sys.exit(1)
