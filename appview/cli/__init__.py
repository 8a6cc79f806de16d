"""The `atbb` command group and the commands that need no web front end.

Each other module of this package holds a family of commands, added to the group at the
end of this one; ``web/cli.py`` adds the serving commands and is the console script
(ADR 0001). Every command builds its services through ``appview.bootstrap``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
from tqdm import tqdm

from appview.bootstrap import ReadModelsNotOurs, Services, bootstrap
from appview.cli import admin, backfill, dev, devnet, diff, forum, pull, rebuild, replay
from appview.cli.storage import StandaloneCommand, check_storage
from appview.ingest.appender import LineError
from appview.leader import LeaderLock
from appview.live import LiveIngest
from appview.logs import configure_logging
from appview.settings import Settings, SettingsError, load_settings
from appview.writer import WriterDuties
from events.store_postgres import redact
from projections.runner import follow, project_from_start


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Overrides DATA_DIR.")
@click.option("--database-url", help="Overrides DATABASE_URL.")
@click.option("--forum-did", help="Overrides FORUM_DID.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, database_url: str | None,
        forum_did: str | None) -> None:
    """atbb-appview: an event-sourced AT Protocol appview for a BB-style forum."""
    try:
        settings = load_settings().with_overrides(
            data_dir=data_dir, database_url=database_url, forum_did=forum_did
        )
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    command = cli.get_command(ctx, ctx.invoked_subcommand or "")
    if command is not None and not isinstance(command, StandaloneCommand):
        check_storage(settings)
    configure_logging(settings)
    ctx.obj = settings


@contextmanager
def services_for(settings: Settings) -> Iterator[Services]:
    services = bootstrap(settings)
    try:
        yield services
    finally:
        services.close()


def own_read_models(services: Services) -> None:
    """Refuse (exit 1, one line) to project into read models of another log."""
    try:
        services.ensure_own_read_models()
    except ReadModelsNotOurs as exc:
        raise click.ClickException(str(exc)) from None


def _progress(total: int | None, unit: str, desc: str) -> tqdm[Any]:
    # tqdm disables itself when stderr is not a terminal (disable=None).
    return tqdm(total=total, unit=unit, desc=desc, disable=None, file=sys.stderr,
                dynamic_ncols=True, unit_scale=True)


@cli.group()
def events() -> None:
    """Work with the event log."""


@events.command("append")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--batch-size", type=int, default=2000, show_default=True)
@click.option("--strict", is_flag=True, help="Exit 1 if any line was rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def events_append(settings: Settings, source: IO[bytes], batch_size: int, strict: bool,
                  as_json: bool) -> None:
    """Append Jetstream v1 JSON lines from SOURCE (a file, or - for stdin) to the log.

    Every line lands in one bucket of the report (they sum to the lines read). Lines
    that are not space.atbb.* records are counted and dropped; malformed lines are
    logged with their line number and the rest of the file is still appended. --json
    lists every malformed, duplicate or invalid line with its number and reason.
    """
    reported: list[LineError] = []
    with services_for(settings) as services:
        appender = services.appender(batch_size=batch_size, on_line=reported.append)
        total = _file_size(source)
        with _progress(total, "B", "appending") as bar:
            for number, line in enumerate(source, start=1):
                bar.update(len(line))
                appender.feed(line, number)
            appender.flush()
        stats = appender.stats
    if as_json:
        reported.sort(key=lambda entry: entry.line)
        listed = [{"line": e.line, "outcome": e.outcome, "reason": e.reason} for e in reported]
        click.echo(json.dumps({**stats.as_dict(), "reported": listed}, indent=2))
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_kind.items())) or "none"
        click.echo(f"{stats.lines} lines read: {kinds}")
        click.echo(
            f"stored {stats.stored} (invalid kept {stats.invalid}), "
            f"duplicates {stats.duplicates}, ignored {stats.ignored}, "
            f"held back {stats.held}, rejected lines {stats.errors}"
        )
    if strict and stats.errors:
        sys.exit(1)


def _file_size(source: IO[bytes]) -> int | None:
    name = getattr(source, "name", None)
    if not isinstance(name, str) or name == "<stdin>":
        return None
    try:
        return Path(name).stat().st_size
    except OSError:
        return None


@cli.command()
@click.option("--follow", "follow_log", is_flag=True, help="Keep projecting new events.")
@click.option("--batch-size", type=int, help="Overrides PROJECTION_BATCH_SIZE.")
@click.pass_obj
def project(settings: Settings, follow_log: bool, batch_size: int | None) -> None:
    """Run every projection up to the head of the log (and keep following with --follow)."""
    size = batch_size or settings.projection_batch_size
    with services_for(settings) as services:
        own_read_models(services)
        if services.rebuilds is not None:
            services.rebuilds.rebuild_outdated(background=False)
        head = services.event_log.head()
        start = min(p.position() for p in services.projections) if services.projections else 0
        with _progress(max(0, head - start), "ev", "projecting") as bar:
            def progress(done: int, _total: int) -> None:
                bar.n = done
                bar.refresh()

            applied = project_from_start(services.event_log, services.projections,
                                         services.read_models, batch_size=size,
                                         progress=progress, open_log=services.open_log)
        position = min((p.position() for p in services.projections), default=0)
        click.echo(f"applied {applied} events; projections at position {position}"
                   f" (log head {services.event_log.head()})")
        if follow_log:
            stop = threading.Event()
            click.echo("following the log; Ctrl-C to stop")
            try:
                follow(services.event_log, services.projections, stop=stop)
            except KeyboardInterrupt:
                stop.set()


@cli.command()
@click.option("--jetstream-url", help="Overrides JETSTREAM_URL.")
@click.option("--no-project", is_flag=True,
              help="Only append to the log; run `atbb project --follow` elsewhere.")
@click.option("--from-start", is_flag=True,
              help="With no stored cursor, replay all the host keeps instead of going live.")
@click.pass_obj
def ingest(settings: Settings, jetstream_url: str | None, no_project: bool,
           from_start: bool) -> None:
    """Follow the ingest source (INGEST_SOURCE: Jetstream or the firehose) into the event
    log (and project it) until SIGINT or SIGTERM.

    One process writes at a time: a second one waits for the leader lock and takes over
    when the first one dies."""
    settings = settings.with_overrides(jetstream_url=jetstream_url)
    with services_for(settings) as services:
        if not no_project:
            own_read_models(services)
        # the writer (while it leads) also rebuilds read models of an older version
        live = LiveIngest(services, project=not no_project, leader=LeaderLock(settings),
                          initial_cursor=0 if from_start else None,
                          duties=None if no_project else WriterDuties(services,
                                                                      backfill=False))
        click.echo(f"following {settings.ingest_url} once this process leads ingest",
                   err=True)
        asyncio.run(_until_signalled(live))


async def _until_signalled(live: LiveIngest) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await live.run(stop)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Print the log head, each projection's position and the read models' row counts."""
    with services_for(settings) as services:
        head = services.event_log.head()
        cursor = services.event_log.cursor(settings.ingest_cursor_source)
        data: dict[str, Any] = {
            "event_log": {"url": redact(settings.event_log_url), "head": head,
                          "events": services.event_log.count()},
            "cursor": None if cursor is None else {"source": cursor.source,
                                                   "value": cursor.value},
            "projections": {
                status.name: {"version": status.version, "built_version": status.built_version,
                              "generation": status.generation, "position": status.position,
                              "lag": status.lag}
                for status in services.projection_status()
            },
            "rows": services.read_models.row_counts(),
            "read_models_problem": services.read_models_problem,
        }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    log_info = data["event_log"]
    click.echo(f"event log: {log_info['url']}")
    click.echo(f"  head position {head}, {log_info['events']} events")
    click.echo(f"  {settings.ingest_cursor_source} cursor:"
               f" {'none' if cursor is None else cursor.value}")
    if services.read_models_problem is not None:
        click.echo(f"read models NOT USABLE: {services.read_models_problem}")
    click.echo("projections:")
    for name, info in data["projections"].items():
        click.echo(f"  {name} v{info['version']}: generation {info['generation']}, "
                   f"position {info['position']}, lag {info['lag']}")
    click.echo("rows:")
    for table, count in data["rows"].items():
        click.echo(f"  {table}: {count}")


cli.add_command(rebuild.rebuild)
cli.add_command(rebuild.verify)
cli.add_command(admin.admin)
cli.add_command(backfill.backfill)
cli.add_command(replay.replay_command)
cli.add_command(devnet.devnet)
cli.add_command(diff.diff_command)
cli.add_command(dev.dev)
cli.add_command(forum.forum)
cli.add_command(forum.init)
events.add_command(replay.export)
events.add_command(replay.import_)
events.add_command(replay.history)
events.add_command(pull.pull_command)


def main() -> None:
    """The process's entry point (``atbb``, ``python -m appview.cli``)."""
    # A process can start with SIGINT or SIGTERM blocked, in a mask inherited from its
    # parent; the handlers of serve, ingest, demo and devnet would then never run, and
    # SIGTERM would be ignored. They are this process's to handle.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    cli()
