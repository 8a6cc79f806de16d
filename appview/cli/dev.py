"""`atbb dev projection`: the projection loop (``appview.dev_projection``)."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from appview.dev_projection import PROJECTION_CODE, DevReport, watch
from appview.settings import Settings


@click.group()
def dev() -> None:
    """Tools for developing the appview itself."""


@dev.command("projection")
@click.option("--watch", "roots", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Files or folders to watch (default: the projections package).")
@click.option("--poll", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              help="Seconds between looks at the files' modification times.")
@click.option("--once", is_flag=True, help="Rebuild and diff once, then stop.")
@click.pass_obj
def projection(settings: Settings, roots: tuple[Path, ...], poll: float, once: bool) -> None:
    """Rebuild a scratch generation from the local log with the projection code as it
    is on disk, on every change of it, and print what differs from the live generation
    (which keeps serving meanwhile). Ctrl-C stops."""
    stop = threading.Event()

    def started(changed: list[Path]) -> None:
        which = ", ".join(p.name for p in changed[:5]) if changed else "the code as it is"
        click.echo(f"rebuilding the scratch generation ({which})...")

    def report(result: DevReport) -> None:
        if result.error is not None:
            click.echo(f"the rebuild failed:\n{result.error}")
            return
        click.echo(f"at position {result.position}, in {result.seconds:.1f}s, the scratch "
                   "generation against the live one:")
        for line in result.lines:
            click.echo(line)
        if not once:
            click.echo("watching for changes; Ctrl-C stops")

    try:
        watch(settings, report, stop=stop, roots=roots or (PROJECTION_CODE,),
              poll_seconds=poll, max_runs=1 if once else None, on_start=started)
    except KeyboardInterrupt:
        stop.set()
