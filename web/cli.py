"""The `atbb` console script: the appview's commands plus the ones that serve pages.

See ADR 0001: the commands needing no web front end live in ``appview.cli``; this module
adds ``serve`` and ``demo`` to that group.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click

from appview.bootstrap import bootstrap
from appview.cli import cli, own_read_models
from appview.cli import main as appview_main
from appview.cli.storage import StandaloneCommand
from appview.leader import LeaderLock
from appview.live import LiveIngest
from appview.settings import Settings
from events.moments import parse_moment
from web.app import create_app
from web.workers import (
    ServeOptions,
    Supervisor,
    serve_past,
    serve_process,
    serve_until_signalled,
)

if TYPE_CHECKING:  # the devnet's modules are imported by the demo alone (slow to import)
    from appview.devnet.seed import SeededForum


@cli.command()
@click.option("--host", help="Overrides HOST.")
@click.option("--port", type=int, help="Overrides PORT.")
@click.option("--no-ingest", is_flag=True, help="Serve only; do not follow Jetstream.")
@click.option("--no-backfill", is_flag=True,
              help="Skip gap detection (and resuming an interrupted backfill) at startup.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Web processes sharing the port (one of them, or another process on"
                   " the same database, is the writer).")
@click.option("--until", type=click.IntRange(min=0),
              help="Serve the forum as it was at this log position, read only.")
@click.option("--at", "at_text", metavar="TIME",
              help="Serve the forum as it was at this time (ISO 8601, e.g."
                   " 2026-12-01T14:05Z), read only.")
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, no_ingest: bool,
          no_backfill: bool, workers: int, until: int | None, at_text: str | None) -> None:
    """Serve the web pages and the JSON API, following Jetstream and projecting live.
    With --until or --at: the forum as it was then, read only, under a banner."""
    settings = settings.with_overrides(host=host, port=port)
    if until is not None or at_text is not None:
        _serve_past(settings, until, at_text, workers)
        return
    options = ServeOptions(no_ingest=no_ingest, no_backfill=no_backfill)

    def ready(bound: int) -> None:
        many = f" ({workers} workers)" if workers > 1 else ""
        click.echo(f"serving on http://{settings.host}:{bound}/{many}")

    if workers == 1:
        serve_process(settings, options, on_ready=ready, own_read_models=own_read_models)
        click.echo("stopping...")
        return
    # Read models of another log stop the command here, once, not each worker in turn.
    services = bootstrap(settings)
    try:
        own_read_models(services)
    finally:
        services.close()
    try:
        Supervisor(settings, options, workers).run(on_ready=ready)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from None
    click.echo("stopping...")


def _serve_past(settings: Settings, until: int | None, at_text: str | None,
                workers: int) -> None:
    if until is not None and at_text is not None:
        raise click.UsageError("give --until or --at, not both")
    if workers != 1:
        raise click.UsageError("the forum as it was is served by one process (no --workers)")
    try:
        at = None if at_text is None else parse_moment(at_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None

    def ready(bound: int, label: str) -> None:
        click.echo(f"serving the forum {label}, read only, on "
                   f"http://{settings.host}:{bound}/")

    click.echo("projecting the log up to then...", err=True)
    serve_past(settings, until=until, at=at, on_ready=ready)
    click.echo("stopping...")


@cli.command(cls=StandaloneCommand)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--size", type=click.Choice(["small", "large"]), default="small",
              show_default=True)
@click.pass_obj
def demo(settings: Settings, port: int, seed: int, size: str) -> None:
    """Start a local AT Protocol network with a seeded forum and the appview following it.

    The demo keeps its own embedded SQLite files under DATA_DIR/demo, started afresh each
    time, so it never mixes with a real forum's data. It prints the command that makes an
    admin token for it.
    """
    demo_dir = settings.data_dir / "demo"

    # The devnet pulls in the SDK's XRPC client (seconds to import): only the demo pays.
    from appview.devnet.avatars import give_avatars
    from appview.devnet.network import DevNetwork

    async def main() -> None:
        _reset(demo_dir)
        async with DevNetwork() as network:
            click.echo("seeding the forum on the local network...")
            # A large forum is written straight into the repos (seconds, not minutes); the
            # small one goes through XRPC like any client's writes.
            seeded = await network.seed(
                seed=seed, size="large" if size == "large" else "small",
                via="direct" if size == "large" else "xrpc",
            )
            # half the members have an avatar in their profile, which the appview
            # fetches from their PDS as it would anyone's; the others show initials
            give_avatars(network.pds, seeded.accounts[1:])
            demo_settings = settings.with_overrides(
                data_dir=demo_dir, forum_did=seeded.forum_did, port=port,
                jetstream_url=network.jetstream_url, plc_url=network.plc_url,
                relay_url=network.relay_url,
                handle_resolver_dev_urls=network.handle_resolver_dev_urls,
                database_url="",  # the demo always runs on the embedded SQLite default
                # members sign in offline: their handles resolve at the devnet's PDSs
                # (handle_resolver_dev_urls), and the loopback OAuth client redirects to
                # this very port
                public_url="",
            )
            services = bootstrap(demo_settings)
            try:
                # the Forum account's agent signs in by itself: moderation works at once
                owner = seeded.accounts[0]
                await services.forum_agent.login(seeded.forum_did, owner.app_password,
                                                 pds_url=owner.pds_url)
                # The appview joins after the seeding: it replays the network's history.
                live = LiveIngest(services, initial_cursor=0,
                                  leader=LeaderLock(demo_settings))
                app = create_app(services, live=live)
                await serve_until_signalled(app, demo_settings, on_ready=lambda _: click.echo(
                    f"the forum is running: open http://{demo_settings.host}:{port}/\n"
                    f"(local network: PLC {network.plc_url}, Jetstream "
                    f"{network.jetstream_url}; Ctrl-C stops everything)\n"
                    "an admin token for this demo (its Forum account, every permission; "
                    "valid until the demo restarts):\n"
                    f"  {demo_token_command(demo_settings)}\n"
                    + "\n".join(demo_accounts(seeded))))
                click.echo("stopping...")
            finally:
                services.close()

    asyncio.run(main())


def demo_accounts(seeded: SeededForum) -> list[str]:
    """What the demo prints so anyone can sign in as a member: each account's handle,
    password (for the PDS's OAuth approval page) and app password."""
    lines = ["sign in at /signin as any member (handle, password, app password):"]
    for account in seeded.accounts:
        lines.append(f"  {account.handle:<28} {account.password:<24} {account.app_password}")
    return lines


def demo_token_command(settings: Settings) -> str:
    """The command that makes an admin token for the demo running on ``settings``: its
    own data folder (not DATA_DIR), its embedded SQLite whatever DATABASE_URL says, and
    its Forum account, which holds every permission."""
    return shlex.join([
        "atbb", "--data-dir", str(settings.data_dir.resolve()), "--database-url", "",
        "--forum-did", settings.forum_did,
        "admin", "token", "create", "--did", settings.forum_did, "--label", "demo",
    ])


def _reset(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def main() -> None:
    """The console script: the group with the serving commands added."""
    appview_main()
