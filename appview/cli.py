"""The `atbb` commands that need no web front end.

``web/cli.py`` adds the serving commands to this group and is the console script
(ADR 0001). Every command builds its services through ``appview.bootstrap``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
from tqdm import tqdm

from appview import cli_admin, cli_backfill, cli_rebuild, cli_replay
from appview.bootstrap import ReadModelsNotOurs, Services, bootstrap
from appview.ingest.appender import LineError
from appview.leader import LeaderLock
from appview.live import LiveIngest
from appview.settings import Settings, SettingsError, load_settings
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
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The XRPC client logs every request at INFO; that is noise in a terminal.
    logging.getLogger("httpx").setLevel(logging.WARNING)
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

    Lines that are not space.atbb.* records are counted and dropped; malformed lines are
    reported with their line number and the rest of the file is still appended.
    """
    with services_for(settings) as services:
        def report(error: LineError) -> None:
            click.echo(f"line {error.line}: {error.reason}", err=True)

        appender = services.appender(batch_size=batch_size, on_error=report)
        total = _file_size(source)
        with _progress(total, "B", "appending") as bar:
            for number, line in enumerate(source, start=1):
                bar.update(len(line))
                if not line.strip():
                    continue
                appender.feed(line, number)
            appender.flush()
        stats = appender.stats
    if as_json:
        click.echo(json.dumps(stats.as_dict(), indent=2))
    else:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_kind.items())) or "none"
        click.echo(f"{stats.lines} lines read: {kinds}")
        click.echo(
            f"stored {stats.result.appended} (invalid kept {stats.invalid}), "
            f"duplicates {stats.result.duplicates}, stale {stats.result.stale}, "
            f"not space.atbb.* {stats.ignored}, rejected lines {stats.errors}"
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
            if services.rebuilds is not None:
                services.rebuilds.rebuild_outdated()
        live = LiveIngest(services, project=not no_project, leader=LeaderLock(settings),
                          initial_cursor=0 if from_start else None)
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
            "event_log": {"url": _redact(settings.event_log_url), "head": head,
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


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


@cli.command()
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed of the seeded forum.")
@click.option("--size", type=click.Choice(["small", "large"]), default="small",
              show_default=True)
@click.option("--empty", is_flag=True, help="Start the network without a seeded forum.")
@click.option("--pds-hosts", type=int, default=1, show_default=True)
@click.option("--plc-port", type=int, default=0, help="0 picks a free port.")
@click.option("--jetstream-port", type=int, default=0, help="0 picks a free port.")
def devnet(seed: int, size: str, empty: bool, pds_hosts: int, plc_port: int,
           jetstream_port: int) -> None:
    """Run the local AT Protocol network alone (PLC, PDS hosts, Jetstream v1), print its
    URLs and the accounts' handles and app passwords, until Ctrl-C."""
    # Imported here: the devnet pulls in the atproto client (about 1.5 s), which every
    # other command (and each `atbb ingest` restart) does without.
    from appview.devnet.network import run_devnet

    run_devnet(
        seed=None if empty else seed,
        size="large" if size == "large" else "small",
        pds_hosts=pds_hosts,
        plc_port=plc_port,
        jetstream_port=jetstream_port,
        via="direct" if size == "large" else "xrpc",
    )


cli.add_command(cli_rebuild.rebuild)
cli.add_command(cli_rebuild.verify)
cli.add_command(cli_admin.admin)
cli.add_command(cli_backfill.backfill)
cli.add_command(cli_replay.replay_command)
events.add_command(cli_replay.export)
events.add_command(cli_replay.import_)
events.add_command(cli_replay.history)


def main() -> None:
    cli()
