"""`atbb rebuild` and `atbb verify`: a fresh generation of the read models from the log."""

from __future__ import annotations

import sys
from typing import Any

import click
from tqdm import tqdm

from appview.bootstrap import Services, bootstrap
from appview.rebuilds import RebuildInProgress, RebuildManager, RebuildRun, UnknownProjection
from appview.settings import Settings
from projections.rebuild import RebuildProgress

# Rows of a differing table printed by `atbb verify` before "... and N more".
SHOWN_ROWS = 10


def _bar(desc: str) -> tqdm[Any]:
    return tqdm(total=0, unit="ev", desc=desc, disable=None, file=sys.stderr,
                dynamic_ncols=True, unit_scale=True)


def _manager(services: Services) -> RebuildManager:
    if services.rebuilds is None:
        raise click.ClickException("these read models have no generations to rebuild")
    return services.rebuilds


@click.command()
@click.option("--projection", "name", help="Rebuild the generation for this projection "
              "(checked against the appview's projections).")
@click.pass_obj
def rebuild(settings: Settings, name: str | None) -> None:
    """Rebuild the read models into a new generation from the whole log, then switch
    every reader to it and drop the old one. The forum keeps serving meanwhile."""
    services = bootstrap(settings)
    try:
        manager = _manager(services)
        with _bar("rebuilding") as bar:
            def show(run: RebuildRun) -> None:
                bar.total = max(run.events_total, 1)
                bar.n = run.events_done
                bar.set_postfix_str(f"gen {run.generation} {run.phase}", refresh=False)
                bar.refresh()

            try:
                run = manager.run(name, on_progress=show)
            except (RebuildInProgress, UnknownProjection) as exc:
                raise click.ClickException(str(exc)) from None
        if run.status != "completed":
            raise click.ClickException(f"rebuild failed: {run.error}")
        click.echo(f"rebuilt generation {run.generation}: {run.events_done} events; "
                   "readers switched to it")
    finally:
        services.close()


@click.command()
@click.pass_obj
def verify(settings: Settings) -> None:
    """Rebuild into a scratch generation and compare it row for row with the live one.
    Exit status 0 when they are equal, 1 when they differ."""
    services = bootstrap(settings)
    try:
        manager = _manager(services)
        with _bar("verifying") as bar:
            def show(progress: RebuildProgress) -> None:
                bar.total = max(progress.events_total, 1)
                bar.n = progress.events_done
                bar.refresh()

            try:
                position, differences = manager.verify(on_progress=show)
            except RebuildInProgress as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        services.close()
    if not differences:
        click.echo(f"equal: the live read models match a rebuild at position {position}")
        return
    click.echo(f"DIFFERENT at position {position}:")
    for difference in differences:
        click.echo(f"  table {difference.table}: {len(difference.only_live)} rows only in "
                   f"the live generation, {len(difference.only_rebuilt)} only in the rebuild")
        for label, rows in (("live", difference.only_live),
                            ("rebuilt", difference.only_rebuilt)):
            for row in rows[:SHOWN_ROWS]:
                click.echo(f"    {label}: {row!r}")
            if len(rows) > SHOWN_ROWS:
                click.echo(f"    {label}: ... and {len(rows) - SHOWN_ROWS} more")
    sys.exit(1)
